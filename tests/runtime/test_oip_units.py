"""The Open Inference Protocol's pieces in process: request tensors and their checks
(the bad-input table), tensors -> the 2017 driver's arguments, run()'s value -> output
tensors, model names, paths."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runtime
from runtime.errors import BadInput, BadOutput, NotFound
from runtime.model_map import MappedModel, ModelMap, load_model_map
from runtime.oip.inputs import InputMapping
from runtime.oip.names import ModelNames
from runtime.oip.routes import INFER, LIVE, MODEL, MODEL_READY, SERVER, Match, Router, match
from runtime.oip.tensors import output_tensors, parse_request
from runtime.schema import load_schema, parse_schema

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROW = [5.1, 3.5, 1.4, 0.2]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def request(*inputs: dict, **fields) -> bytes:
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def tensor(name="x", shape=(1,), datatype="FP64", data=(1.0,), **extra) -> dict:
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data), **extra}


# -- requests: the bad-input table -------------------------------------------------------------
@pytest.mark.parametrize("datatype, good, bad, wanted", [
    ("BOOL", [True, False], [True, 1], "true or false"),
    ("UINT8", [0, 255], [0, 256], "an integer from 0 to 255"),
    ("UINT16", [65535], [0, -1], "an integer from 0 to 65535"),
    ("UINT32", [2 ** 32 - 1], [1, 2 ** 32], "an integer from 0 to 4294967295"),
    ("UINT64", [2 ** 64 - 1], [1, 1.5], "an integer from 0 to 18446744073709551615"),
    ("INT8", [-128, 127], [0, 128], "an integer from -128 to 127"),
    ("INT16", [-32768], [1, True], "an integer from -32768 to 32767"),
    ("INT32", [2 ** 31 - 1], [1, "1"], "an integer from -2147483648 to 2147483647"),
    ("INT64", [-2 ** 63], [0, 2 ** 63], "an integer from"),
    ("FP32", [1, 2.5], [1, "2.5"], "a number"),
    ("FP64", [0.1], [0.1, None], "a number"),
    ("BYTES", ["a", "{}"], ["a", 1], "a string"),
])
def test_every_datatype_takes_its_values_and_refuses_others(datatype, good, bad, wanted):
    parsed = parse_request(request(tensor(shape=[len(good)], datatype=datatype, data=good)))
    assert parsed.inputs[0].values == good
    with pytest.raises(BadInput) as caught:
        parse_request(request(tensor(shape=[len(bad)], datatype=datatype, data=bad)))
    assert caught.value.message.startswith("input 'x': value 1 (")
    assert f"is not {datatype}: {wanted}" in caught.value.message


@pytest.mark.parametrize("encoded", [
    lambda text: text.encode("utf-8"), lambda text: text.encode("utf-8-sig"),
    lambda text: text.encode("utf-16"), lambda text: text.encode("utf-16-le"),
    lambda text: text.encode("utf-32-be"), lambda text: text.encode("utf-32-le"),
])
def test_a_body_in_any_json_encoding_is_read(encoded):
    for name, values in (("modèle", ["é", "x"]), ("ascii", ["a", "b"])):
        text = json.dumps({"inputs": [tensor(name, [2], "BYTES", values)]}, ensure_ascii=False)
        parsed = parse_request(encoded(text))
        assert (parsed.inputs[0].name, parsed.inputs[0].values) == (name, values)


@pytest.mark.parametrize("body, message", [
    (b"not json", "the request body is not valid JSON"),
    (b'{"inputs": "\xff"}', "the request body is not valid JSON"),
    (b"[1, 2]", "the request body must be a JSON object"),
    (b"[" * 100000 + b"]" * 100000, "JSON nested too deeply"),
    (request(), '"inputs" must be a non-empty list'),
    (json.dumps({"inputs": {"x": 1}}).encode(), '"inputs" must be a non-empty list'),
    (request(tensor(datatype="FP16")), "input 'x': FP16 has no JSON form"),
    (request(tensor(datatype="BF16")), "input 'x': BF16 has no JSON form"),
    (request(tensor(datatype="FLOAT")), "input 'x': unknown datatype 'FLOAT'; one of BOOL"),
    (request(tensor(shape=[2, 2], data=[1, 2, 3])), "shape [2, 2] holds 4 values, \"data\" has 3"),
    (request(tensor(shape=[1], data=[[1, 2]])), "shape [1] holds 1 values, \"data\" has 2"),
    (request(tensor(shape=[2 ** 40, 2 ** 40], data=[1])), "shape [1099511627776, 1099511627776] "
                                                          "holds 1208925819614629174706176 values"),
    (request(tensor(shape=[2 ** 64])), "\"shape\" must be a list of integers from 0 to 2^64-1"),
    (request(tensor(shape=[-1])), "\"shape\" must be a list of integers"),
    (request(tensor(shape="1")), "\"shape\" must be a list of integers"),
    (request({**tensor(), "data": "1"}), "input 'x': \"data\" must be a list"),
    (request({"shape": [1], "datatype": "FP64", "data": [1]}), "inputs[0] has no \"name\""),
    (request(tensor(), tensor()), "input 'x' is given twice"),
    (request(tensor(), id=42), '"id" must be a string'),
    (request(tensor(), parameters=[1]), '"parameters" of the request must be an object'),
    (request(tensor(parameters="pd")), "\"parameters\" of input 'x' must be an object"),
    (request(tensor(), outputs=["predict"]), '"outputs" must be a list of objects with a "name"'),
])
def test_bad_requests_are_bad_input_naming_what(body, message):
    with pytest.raises(BadInput) as caught:
        parse_request(body)
    assert message in caught.value.message


def test_a_huge_shape_is_refused_before_anything_is_allocated():
    import tracemalloc

    body = request(tensor(shape=[10 ** 12, 10 ** 12], data=[1.0]))
    tracemalloc.start()
    try:
        with pytest.raises(BadInput):
            parse_request(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_tensor_data_nested_or_flat_is_the_same_tensor():
    flat = parse_request(request(tensor(shape=[2, 2], data=[1, 2, 3, 4])))
    nested = parse_request(request(tensor(shape=[2, 2], data=[[1, 2], [3, 4]])))
    assert flat.inputs[0].values == nested.inputs[0].values == [1, 2, 3, 4]
    assert flat.inputs[0].nested() == [[1, 2], [3, 4]]
    cube = parse_request(request(tensor(shape=[2, 1, 2], data=list(range(4)))))
    assert cube.inputs[0].nested() == [[[0, 1]], [[2, 3]]]
    scalar = parse_request(request(tensor(shape=[], data=[7])))
    assert scalar.inputs[0].nested() == 7
    empty = parse_request(request(tensor(shape=[0, 4], data=[])))
    assert empty.inputs[0].nested() == []


def test_id_parameters_and_requested_outputs_are_kept():
    parsed = parse_request(request(tensor(), id="42", parameters={"content_type": "pd"},
                                   outputs=[{"name": "predict", "parameters": {"binary_data": False}}]))
    assert (parsed.id, parsed.parameters, parsed.outputs) == ("42", {"content_type": "pd"}, ("predict",))


# -- tensors -> run() ----------------------------------------------------------------------------
def test_a_raw_body_driver_gets_the_2017_json_body():
    mapping = InputMapping(None)
    parsed = parse_request(request(tensor("data", [1, 4], data=ROW), tensor("flag", [], "BOOL", [True])))
    (args, kwargs), scored = mapping.arguments(parsed)
    assert json.loads(args[0]) == {"data": [ROW], "flag": True} and kwargs == {}
    assert scored == args[0]
    assert mapping.metadata_inputs() == [] and mapping.metadata_parameters() is None


@pytest.fixture(scope="module")
def pandas_mapping():
    return InputMapping(load_schema(str(FIXTURES / "service_schema.json")))


def columns(rows: list[list[float]], datatype: str = "FP64") -> list[dict]:
    return [tensor(name, [len(rows)], datatype, [row[at] for row in rows])
            for at, name in enumerate(COLUMNS)]


def test_a_pandas_input_from_columns_or_json_rows(pandas_mapping):
    assert pandas_mapping.metadata_inputs() == [{"name": name, "datatype": "FP64", "shape": [-1]}
                                                for name in COLUMNS]
    assert pandas_mapping.metadata_parameters() == {"content_type": "pd"}
    rows = [ROW, [7.7, 3.0, 6.1, 2.3]]
    (args, kwargs), document = pandas_mapping.arguments(
        parse_request(request(*columns(rows), parameters={"content_type": "pd"})))
    expected = pd.DataFrame(rows, columns=COLUMNS)
    pd.testing.assert_frame_equal(kwargs["input_df"], expected)
    assert document == {"input_df": [dict(zip(COLUMNS, row)) for row in rows]}
    as_json = [json.dumps(dict(zip(COLUMNS, row))) for row in rows]
    (_, from_rows), _ = pandas_mapping.arguments(
        parse_request(request(tensor("input_df", [2], "BYTES", as_json))))
    pd.testing.assert_frame_equal(from_rows["input_df"], expected)
    whole = json.dumps([dict(zip(COLUMNS, row)) for row in rows])
    (_, from_array), _ = pandas_mapping.arguments(
        parse_request(request(tensor("input_df", [1], "BYTES", [whole]))))
    pd.testing.assert_frame_equal(from_array["input_df"], expected)
    (_, from_ints), _ = pandas_mapping.arguments(parse_request(request(*columns([[5, 3, 1, 0]], "INT64"))))
    assert list(from_ints["input_df"].dtypes) == ["float64"] * 4


@pytest.mark.parametrize("inputs, message", [
    (columns([ROW])[:3], "missing input 'petal width (cm)'; the model's inputs are the columns"),
    ([*columns([ROW]), tensor("extra")], "unknown input 'extra'; the model's inputs are the columns"),
    (columns([[True] * 4], "BOOL"), "input 'sepal length (cm)': datatype BOOL cannot feed the model's "
                             "number input; send FP64"),
    ([*columns([ROW])[:3], tensor("petal width (cm)", [2], data=[1.0, 2.0])],
     "the columns have different lengths"),
    ([*columns([ROW])[:3], tensor("petal width (cm)", [1, 2], data=[1.0, 2.0])],
     "a column's shape is [rows] or [rows, 1]"),
    ([tensor("input_df", [1], "FP64", [1.0])], "input 'input_df' takes rows: BYTES"),
    ([tensor("input_df", [1], "BYTES", ["{nope"])], "input 'input_df': value 0 is not JSON"),
    ([tensor("input_df", [1], "BYTES", ['{"sepal length (cm)": "x"}'])],
     "input_df/0/sepal length (cm): 'x' is not of type 'number'"),
])
def test_bad_pandas_inputs_name_the_input(pandas_mapping, inputs, message):
    with pytest.raises(BadInput) as caught:
        pandas_mapping.arguments(parse_request(request(*inputs)))
    assert message in caught.value.message


NUMPY_SCHEMA = {"input": {
    "arr": {"type": 1, "swagger": {"type": "array", "items": {"type": "array", "items": {
        "type": "number", "format": "float"}}, "example": [ROW]}},
    "k": {"type": 0, "swagger": {"type": "integer"}},
    "meta": {"type": 0, "swagger": {"type": "object", "properties": {"a": {"type": "string"}}}},
    "rows": {"type": 3, "swagger": {"type": "array", "items": {"type": "object", "properties": {
        "a": {"type": "number"}}}}}}}


def test_typed_inputs_scalars_objects_and_rows_of_a_several_input_schema():
    mapping = InputMapping(parse_schema(NUMPY_SCHEMA))
    assert mapping.metadata_inputs() == [
        {"name": "arr", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "k", "datatype": "INT64", "shape": [1]},
        {"name": "meta", "datatype": "BYTES", "shape": [1]},
        {"name": "rows", "datatype": "BYTES", "shape": [-1]}]
    (_, kwargs), _ = mapping.arguments(parse_request(request(
        tensor("arr", [1, 4], "FP64", ROW), tensor("k", [1], "INT32", [3]),
        tensor("meta", [1], "BYTES", ['{"a": "b"}']), tensor("rows", [1], "BYTES", ['{"a": 1}']))))
    assert kwargs["arr"].dtype == np.float32 and kwargs["arr"].shape == (1, 4)
    assert kwargs["k"] == 3 and kwargs["meta"] == {"a": "b"}
    pd.testing.assert_frame_equal(kwargs["rows"], pd.DataFrame({"a": [1.0]}))


@pytest.mark.parametrize("inputs, message", [
    ([tensor("arr", [4], "FP64", ROW)], "input 'arr': shape [4] has 1 dimension(s), the model's "
                                        "input has 2 ([-1, 4])"),
    ([tensor("arr", [1, 4], "BYTES", ["a"] * 4)], "input 'arr': datatype BYTES cannot feed the "
                                                   "model's number input; send FP32"),
    ([tensor("k", [2], "INT64", [1, 2])], "input 'k': the model's input is one value, the tensor "
                                          "holds 2"),
    ([tensor("k", [1], "FP64", [1.5])], "input 'k': datatype FP64 cannot feed the model's "
                                        "integer input; send INT64"),
    ([tensor("nope")], "unknown input 'nope'; the model's inputs are ['arr', 'k', 'meta', 'rows']"),
    ([tensor("arr", [1, 4], "FP64", ROW)], "missing input 'k'"),
])
def test_bad_typed_inputs_name_the_input(inputs, message):
    mapping = InputMapping(parse_schema(NUMPY_SCHEMA))
    full = {"arr": tensor("arr", [1, 4], "FP64", ROW), "k": tensor("k", [1], "INT64", [1]),
            "meta": tensor("meta", [1], "BYTES", ["{}"]), "rows": tensor("rows", [0], "BYTES", [])}
    if not message.startswith(("unknown", "missing")):
        full.update({entry["name"]: entry for entry in inputs})
        inputs = list(full.values())
    with pytest.raises(BadInput) as caught:
        mapping.arguments(parse_request(request(*inputs)))
    assert message in caught.value.message


def test_the_schema_example_becomes_an_inference_request(pandas_mapping):
    example = pandas_mapping.example_request(load_schema(str(FIXTURES / "service_schema.json")).example)
    assert example == {"parameters": {"content_type": "pd"},
                       "inputs": [tensor(name, [1], "FP64", [value]) for name, value in zip(COLUMNS, ROW)]}
    mapping = InputMapping(parse_schema(NUMPY_SCHEMA))
    assert mapping.example_request({"arr": [ROW], "k": 1, "meta": {"a": "b"}, "rows": [{"a": 1}]}) == {
        "inputs": [tensor("arr", [1, 4], "FP32", [ROW]), tensor("k", [1], "INT64", [1]),
                   tensor("meta", [1], "BYTES", ['{"a": "b"}']), tensor("rows", [1], "BYTES", ['{"a": 1}'])]}
    assert mapping.example_request({"arr": [ROW]}) is None


# -- run()'s value -> outputs ---------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ([0, 2], [("predict", "INT64", [2], [0, 2])]),
    (json.dumps([0, 2]), [("predict", "INT64", [2], [0, 2])]),  # the 2017 json.dumps habit
    (["setosa"], [("predict", "BYTES", [1], ["setosa"])]),
    ([[0.5, 1], [2, 3]], [("predict", "FP64", [2, 2], [0.5, 1, 2, 3])]),
    ([True], [("predict", "BOOL", [1], [True])]),
    ([], [("predict", "FP64", [0], [])]),
    (3, [("predict", "INT64", [1], [3])]),
    ("plain text", [("predict", "BYTES", [1], ["plain text"])]),
    (None, [("predict", "BYTES", [1], ["null"])]),
    ([[1, 2], [3]], [("predict", "BYTES", [2], ["[1, 2]", "[3]"])]),  # ragged
    ([{"a": 1}, {"a": 2}], [("predict", "BYTES", [2], ['{"a": 1}', '{"a": 2}'])]),
    ([2 ** 70], [("predict", "FP64", [1], [2 ** 70])]),
    (np.array([[1, 2], [3, 4]], dtype=np.int32), [("predict", "INT32", [2, 2], [1, 2, 3, 4])]),
    (np.array([0.5], dtype=np.float32), [("predict", "FP32", [1], [0.5])]),
    (np.array([0.5], dtype=np.float16), [("predict", "FP32", [1], [0.5])]),
    (np.array([1], dtype=np.uint8), [("predict", "UINT8", [1], [1])]),
    (np.array([True, False]), [("predict", "BOOL", [2], [True, False])]),
    (np.array(["a", "b"]), [("predict", "BYTES", [2], ["a", "b"])]),
    (np.float32(0.5), [("predict", "FP32", [1], [0.5])]),
    ([np.int64(1), np.int64(2)], [("predict", "INT64", [2], [1, 2])]),
    (pd.Series([1.5, 2.5]), [("predict", "FP64", [2], [1.5, 2.5])]),
    ({"label": ["a"], "score": np.array([0.9])},
     [("label", "BYTES", [1], ["a"]), ("score", "FP64", [1], [0.9])]),
])
def test_outputs_are_inferred_from_what_run_returned(value, expected):
    outputs = output_tensors(value)
    assert [(o["name"], o["datatype"], o["shape"], o["data"]) for o in outputs] == expected


def test_a_dataframe_is_one_output_per_column_and_unencodable_values_are_bad_output():
    outputs = output_tensors(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert outputs == [
        {"name": "a", "datatype": "INT64", "shape": [2], "data": [1, 2], "parameters": {"content_type": "pd"}},
        {"name": "b", "datatype": "BYTES", "shape": [2], "data": ["x", "y"], "parameters": {"content_type": "pd"}}]
    with pytest.raises(BadOutput):
        output_tensors(object())
    with pytest.raises(BadOutput):
        output_tensors(np.array([1 + 2j]))


# -- names and paths -------------------------------------------------------------------------------
def test_model_names_from_the_map_and_the_service(tmp_path):
    (tmp_path / "model_config_map.json").write_text(json.dumps(
        {"models": {"iris": {"id": "m1", "version": 3}}, "accountContext": {"accountName": "a"}}))
    model_map = load_model_map(str(tmp_path))
    assert model_map == ModelMap((MappedModel("iris", "m1", "3"),), {"accountName": "a"})
    names = ModelNames(model_map, "svc")
    assert names.names == ["iris", "svc"]
    assert names.find("iris", "3").versions == ["3"] and names.find("svc", None).version == "3"
    with pytest.raises(NotFound, match="unknown model 'nope'; this service's model answers to 'iris', 'svc'"):
        names.find("nope", None)
    with pytest.raises(NotFound, match=r"model 'iris' has no version '4' \(only version '3'\)"):
        names.find("iris", "4")
    several = ModelNames(ModelMap((MappedModel("a", None, "1"), MappedModel("b", None, "2"))), "svc")
    assert several.find("svc", None).version is None and several.find("b", "2").version == "2"
    with pytest.raises(NotFound, match="has no version '1' \\(no versions\\)"):
        several.find("svc", "1")
    assert ModelNames(ModelMap(), None).names == ["model"]
    (tmp_path / "model_config_map.json").write_text("{not json")
    assert load_model_map(str(tmp_path)) == ModelMap()


@pytest.mark.parametrize("path, route, name, version", [
    ("/v2", SERVER, None, None), ("/v2/", SERVER, None, None), ("/v2/health/live", LIVE, None, None),
    ("/v2/models/iris", MODEL, "iris", None), ("/v2/models/iris/versions/1", MODEL, "iris", "1"),
    ("/v2/models/iris/ready", MODEL_READY, "iris", None),
    ("/v2/models/iris/versions/1/infer", INFER, "iris", "1"),
    ("/v2/models/a b/infer", INFER, "a b", None),
    ("/v2/models/mod\xc3\xa8le/infer", INFER, "modèle", None),  # PEP 3333: UTF-8 bytes as latin-1
    ("/v2/models/iris/predict", None, "iris", None), ("/v2/models/", None, None, None),
    ("/v2/repository/index", None, None, None),
])
def test_paths_are_matched_to_routes(path, route, name, version):
    found = match(path)
    assert (found.route, found.name, found.version) == (route, name, version)
    served = Router([("iris", "1"), ("modèle", None), ("a b", None)])
    assert served.match(path) == found and Router([]).match(path) == found


def test_the_router_looks_up_the_served_models_paths_and_matches_the_rest():
    router = Router([("iris", "1"), ("modèle", None)])
    assert "/v2/models/iris/versions/1/infer" in router.known
    assert "/v2/models/mod\xc3\xa8le/ready" in router.known  # as WSGI gives it
    assert "/v2/models/modèle/ready" not in router.known
    assert router.match("/v2/models/other/infer") == match("/v2/models/other/infer")
    assert router.match("/v2/models/iris/versions/2/infer") == Match(INFER, "iris", "2")
    assert [router.match(path) for path in ("/score", "/v2x", "/", "/v20/models")] == [None] * 4


def test_the_runtime_version_is_momas():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert runtime.__version__ == pyproject["project"]["version"]


def test_a_spark_input_takes_rows_as_a_pandas_one_does():
    schema = parse_schema({"input": {"df": {"type": 2, "swagger": {"type": "array", "items": {
        "type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}}}},
        spark=lambda spec: (lambda rows: ("spark rows of", spec.name, rows)))
    mapping = InputMapping(schema)
    assert mapping.metadata_inputs() == [{"name": "id", "datatype": "INT64", "shape": [-1]},
                                         {"name": "name", "datatype": "BYTES", "shape": [-1]}]
    (_, kwargs), _ = mapping.arguments(parse_request(request(
        tensor("id", [2], "INT64", [1, 2]), tensor("name", [2], "BYTES", ["a", "b"]))))
    assert kwargs["df"] == ("spark rows of", "df", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
