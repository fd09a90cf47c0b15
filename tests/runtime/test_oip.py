"""The Open Inference Protocol beside /score, through a real peer client: tritonclient's
InferenceServerClient (JSON tensors) against real gunicorn servers, for the iris example's
driver, a numpy-schema driver, a pandas-schema driver (type 3) and a raw-body driver;
answers equal /score's for the same rows. Keys, admission, timeouts, metrics and data
collection as for /score."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.waiting import wait_for

from .conftest import REPO, key_hash, prometheus_value
from .test_datacollection import MODEL_MAP, PREFIX, day_files, dc_env, read_csv, rows_in

IRIS_EXAMPLE = REPO / "examples" / "iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    """The iris example's model (trained on arrays, with target_names_)."""
    out = tmp_path_factory.mktemp("model")
    subprocess.run([sys.executable, str(IRIS_EXAMPLE / "train.py"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return (out / "model.pkl").read_bytes()


def client(server, **kwargs) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), **kwargs)


def infer_input(name: str, values, datatype: str = "FP64") -> triton.InferInput:
    array = np.asarray(values, dtype=object if datatype == "BYTES" else None)
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def wanted(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


@pytest.fixture(scope="module")
def iris(serve_shared, model_bytes):
    """examples/iris/score.py (raw body, answers species names), its model and map."""
    return serve_shared("ok.py", files={"score.py": (IRIS_EXAMPLE / "score.py").read_text(),
                                        "model.pkl": model_bytes,
                                        "model_config_map.json": MODEL_MAP})


def test_health_and_metadata_through_tritonclient(iris):
    with client(iris) as oip:
        assert oip.is_server_live() and oip.is_server_ready()
        assert oip.is_model_ready("iris") and oip.is_model_ready("iris", "3")
        assert not oip.is_model_ready("nope") and not oip.is_model_ready("iris", "4")
        assert oip.get_server_metadata() == {"name": "moma", "version": "0.1.0", "extensions": []}
        assert oip.get_model_metadata("iris") == {"name": "iris", "versions": ["3"],
                                                  "platform": "moma_python", "inputs": [],
                                                  "outputs": []}
        with pytest.raises(InferenceServerException) as caught:
            oip.get_model_metadata("nope")
        assert caught.value.status() == "404"
        assert caught.value.message() == "unknown model 'nope'; this service's model answers to 'iris'"
        with pytest.raises(InferenceServerException, match="model 'iris' has no version '4'"):
            oip.get_model_metadata("iris", "4")


def test_the_iris_example_answers_as_on_score(iris):
    with client(iris) as oip:
        result = oip.infer("iris", [infer_input("data", ROWS)], model_version="3",
                           outputs=wanted("predict"), request_id="r-42")
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("iris", "3", "r-42")
    assert response["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [2],
                                    "data": ["setosa", "virginica"]}]
    assert result.as_numpy("predict").tolist() == iris.score({"data": ROWS}).json()


@pytest.fixture(scope="module")
def numpy_driver(serve_shared, model_bytes):
    return serve_shared("numpy_score.py", files={
        "service_schema.json": (Path(__file__).parent / "fixtures" / "numpy_schema.json").read_text(),
        "model.pkl": model_bytes}, MOMA_SERVICE_NAME="flowers")


def test_a_numpy_schema_driver(numpy_driver):
    with client(numpy_driver) as oip:
        assert oip.get_model_metadata("flowers") == {
            "name": "flowers", "versions": [], "platform": "moma_python",
            "inputs": [{"name": "arr", "datatype": "FP64", "shape": [-1, 4]}], "outputs": []}
        result = oip.infer("flowers", [infer_input("arr", ROWS)])
        assert result.as_numpy("predict").tolist() == numpy_driver.score({"arr": ROWS}).json() == [0, 2]
        assert result.get_response()["outputs"][0]["datatype"] == "INT64"
        from_fp32 = oip.infer("flowers", [infer_input("arr", np.asarray(ROWS, dtype=np.float32), "FP32")])
        assert from_fp32.as_numpy("predict").tolist() == [0, 2]
        for tensor, message in ((infer_input("arr", [[True] * 4], "BOOL"),
                                 "input 'arr': datatype BOOL cannot feed the model's number input; send FP64"),
                                (infer_input("arr", ROWS[0]),
                                 "input 'arr': shape [4] has 1 dimension(s), the model's input has 2"),
                                (infer_input("rows", ROWS), "unknown input 'rows'; the model's inputs are ['arr']")):
            with pytest.raises(InferenceServerException) as caught:
                oip.infer("flowers", [tensor])
            assert caught.value.status() == "400" and message in caught.value.message()


@pytest.fixture(scope="module")
def pandas_driver(serve_shared, tmp_path_factory):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True)
    path = tmp_path_factory.mktemp("frame-model") / "model.pkl"
    joblib.dump(LogisticRegression(max_iter=1000).fit(frame.data, frame.target), path)
    return serve_shared("score.py", copy=("service_schema.json",),
                        files={"model.pkl": path.read_bytes(), "model_config_map.json": MODEL_MAP})


def test_a_pandas_schema_driver_from_columns_or_json_rows(pandas_driver):
    on_score = json.loads(pandas_driver.score({"input_df": [dict(zip(COLUMNS, row)) for row in ROWS]}).json())
    with client(pandas_driver) as oip:
        metadata = oip.get_model_metadata("iris")
        assert metadata["inputs"] == [{"name": name, "datatype": "FP64", "shape": [-1]} for name in COLUMNS]
        assert metadata["parameters"] == {"content_type": "pd"}
        columns = [infer_input(name, [row[at] for row in ROWS]) for at, name in enumerate(COLUMNS)]
        by_columns = oip.infer("iris", columns, parameters={"content_type": "pd"})
        rows = [json.dumps(dict(zip(COLUMNS, row))) for row in ROWS]
        by_rows = oip.infer("iris", [infer_input("input_df", rows, "BYTES")], outputs=wanted("predict"))
        with pytest.raises(InferenceServerException, match="missing input 'petal width"):
            oip.infer("iris", columns[:3])
    assert by_columns.as_numpy("predict").tolist() == by_rows.as_numpy("predict").tolist() == on_score == [0, 2]


def test_a_raw_body_driver_gets_the_2017_body_and_the_answer_keeps_id_and_parameters(serve):
    server = serve("ok.py")
    body = {"id": "7", "parameters": {"trace": True},
            "inputs": [{"name": "data", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]},
                       {"name": "flag", "shape": [], "datatype": "BOOL", "data": [True]}],
            "outputs": [{"name": "raw"}, {"name": "init_calls"}]}
    answer = server.request("POST", "/v2/models/model/infer", json_body=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ms-run-function-failed"] == "False"
    assert float(answer.headers["x-ms-scoring-time-ms"]) >= 0
    document = answer.json()
    assert (document["model_name"], document["id"], document["parameters"]) == ("model", "7", {"trace": True})
    assert "model_version" not in document, "a model without versions names none"
    raw, calls = document["outputs"]
    assert json.loads(raw["data"][0]) == {"data": [[1, 2], [3, 4]], "flag": True}
    assert (calls["name"], calls["datatype"], calls["data"]) == ("init_calls", "INT64", [1])
    unknown = server.request("POST", "/v2/models/model/infer", json_body={**body, "outputs": [{"name": "x"}]})
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "unknown output 'x'; the model returned "
                                       "['raw', 'input', 'pid', 'cwd', 'init_calls']"}
    no_id = server.request("POST", "/v2/models/model/infer", json_body={"inputs": body["inputs"]})
    assert no_id.json()["id"] == no_id.headers["x-ms-request-id"], "no id: the request's own"


def test_a_failed_driver_is_not_ready_on_v2_and_says_why(serve):
    server = serve("raises_in_init.py", wait="/livez")
    server.wait("/readyz", 503)
    assert server.get("/v2/health/live").json() == {"live": True}
    ready = server.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    model_ready = server.get("/v2/models/model/ready")
    assert (model_ready.status_code, model_ready.json()) == (503, {"name": "model", "ready": False})
    for answer in (server.get("/v2/models/model"),
                   server.request("POST", "/v2/models/model/infer", json_body=sleep_request(0, "x"))):
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"] == server.get("/readyz").json()["message"]


@pytest.mark.parametrize("path, method, headers, body, status, message", [
    ("/v2/models/model/infer", "POST", {}, b"{not json", 400, "the request body is not valid JSON"),
    ("/v2/models/model/infer", "POST", {"Inference-Header-Content-Length": "10"}, b"{}", 400,
     "binary tensor data (Inference-Header-Content-Length) is not supported"),
    ("/v2/models/model/infer", "POST", {"Content-Encoding": "gzip"}, b"{}", 415,
     "Content-Encoding gzip is not supported"),
    ("/v2/models/model/infer", "GET", {}, None, 405, "GET is not allowed on /v2/models/model/infer: POST only"),
    ("/v2/models/model", "POST", {}, b"{}", 405, "POST is not allowed on /v2/models/model: GET only"),
    ("/v2/models/model/explain", "GET", {}, None, 404, "no Open Inference Protocol route"),
    ("/v2/models/other/infer", "POST", {}, b"{}", 404, "unknown model 'other'"),
])
def test_errors_on_v2_routes_are_the_protocols(serve_shared, path, method, headers, body, status, message):
    server = serve_shared("ok.py")
    answer = server.request(method, path, data=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]
    if status == 405:
        assert answer.headers["Allow"] in ("GET", "POST")


def test_a_big_body_is_413_in_the_protocols_shape(serve):
    server = serve("ok.py", MOMA_MAX_BODY_BYTES="1000")
    answer = server.request("POST", "/v2/models/model/infer", data=b"[" + b" " * 2000 + b"]")
    assert answer.status_code == 413 and set(answer.json()) == {"error"}


def test_keys_guard_v2_routes_but_its_health(serve, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(key_hash("k") + "\n")
    server = serve("ok.py", MOMA_KEYS_FILE=str(keys))
    with client(server) as oip:
        assert oip.is_server_live() and oip.is_server_ready()
        assert not oip.is_model_ready("model")
        with pytest.raises(InferenceServerException) as caught:
            oip.infer("model", [infer_input("data", ROWS)])
        assert caught.value.status() == "401"
        assert caught.value.message() == "a valid key is required: Authorization: Bearer <key>"
        with pytest.raises(InferenceServerException, match="401"):
            oip.get_server_metadata()
        authorised = {"Authorization": "Bearer k"}
        assert oip.is_model_ready("model", headers=authorised)
        result = oip.infer("model", [infer_input("data", ROWS)], headers=authorised, outputs=wanted("init_calls"))
        assert result.as_numpy("init_calls").tolist() == [1]
    refused = server.request("POST", "/v2/models/model/infer", data=b"{}")
    assert refused.headers["WWW-Authenticate"] == "Bearer"


def sleep_request(seconds: float, tag: str) -> dict:
    return {"inputs": [{"name": "sleep", "shape": [], "datatype": "FP64", "data": [seconds]},
                       {"name": "tag", "shape": [], "datatype": "BYTES", "data": [tag]}]}


@pytest.mark.slow
def test_admission_and_timeout_hold_for_v2_calls(serve, tmp_path):
    server = serve("slow.py", MAX_CONCURRENT_REQUESTS="1", MAX_QUEUE="0", SCORING_TIMEOUT_MS="400",
                   SLOW_STATE_DIR=str(tmp_path))
    started = time.monotonic()
    timed_out = server.request("POST", "/v2/models/model/infer", json_body=sleep_request(3, "long"))
    assert timed_out.status_code == 504 and time.monotonic() - started < 2.5
    assert timed_out.json() == {"error": "run() did not finish within 400 ms"}
    assert timed_out.headers["x-ms-run-function-failed"] == "True"
    # the timed-out run() still holds the only slot: the next call, /score or v2, is refused
    refused = server.request("POST", "/v2/models/model/infer", json_body=sleep_request(0, "refused"))
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert set(refused.json()) == {"error"}
    assert server.score({"sleep": 0}).status_code == 429
    text = server.get("/metrics").text
    assert prometheus_value(text, "moma_driver_errors_total", {"kind": "timeout"}) == 1
    assert prometheus_value(text, "moma_rejections_total", {"reason": "queue_full"}) == 2
    events = (tmp_path / "events.log").read_text()
    assert '"refused"' not in events, "429 never runs run()"


def test_metrics_count_v2_routes_by_template(serve):
    server = serve("ok.py")
    with client(server) as oip:
        for _ in range(3):
            oip.infer("model", [infer_input("data", ROWS)])
        assert oip.is_server_live() and oip.is_model_ready("model")
        with pytest.raises(InferenceServerException):
            oip.infer("model", [infer_input("data", ROWS, "FP64")], model_version="9")
    server.request("POST", "/v2/models/model/infer", data=b"nope")
    text = server.get("/metrics").text
    count = lambda route, status: prometheus_value(  # noqa: E731
        text, "moma_requests_total", {"route": route, "status": status})
    assert count("/v2/models/{name}/infer", "200") == 3
    assert count("/v2/models/{name}/infer", "400") == 1
    assert count("/v2/models/{name}/infer", "404") == 1
    assert count("/v2/health/live", "200") == 1 and count("/v2/models/{name}/ready", "200") == 1
    assert prometheus_value(text, "moma_request_duration_seconds_count",
                            {"route": "/v2/models/{name}/infer"}) == 5


def test_data_collection_rows_of_v2_calls_are_those_of_score(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_schema.py", copy=("service_schema.json",),
                   files={"model_config_map.json": MODEL_MAP}, **dc_env(out))
    rows = [dict(zip(COLUMNS, row)) for row in ROWS]
    assert server.score({"input_df": rows}, headers={"x-ms-client-request-id": "c-score"}).status_code == 200
    with client(server) as oip:
        columns = [infer_input(name, [row[at] for row in ROWS]) for at, name in enumerate(COLUMNS)]
        oip.infer("iris", columns, headers={"x-ms-client-request-id": "c-v2"})
    wait_for(lambda: len(rows_in(out, "prediction")) == 4)
    header, inputs = read_csv(day_files(out, "inputs")[0])
    assert header[3:] == COLUMNS
    by_call = {call: [row[3:] for row in inputs if row[1] == call] for call in ("c-score", "c-v2")}
    assert by_call["c-v2"] == by_call["c-score"] == [["5.1", "3.5", "1.4", "0.2"], ["7.7", "3.0", "6.1", "2.3"]]
    predictions = rows_in(out, "prediction")
    assert [row[3] for row in predictions if row[1] == "c-v2"] == \
        [row[3] for row in predictions if row[1] == "c-score"] == ["1", "1"]
    assert PREFIX in str(day_files(out, "inputs")[0])


def test_swagger_lists_the_v2_routes_with_an_example_request(pandas_driver):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV2SpecValidator

    document = pandas_driver.get("/swagger.json").json()
    validate(document, cls=OpenAPIV2SpecValidator)
    assert {"/v2/health/live", "/v2/models/{model_name}/infer",
            "/v2/models/{model_name}/versions/{model_version}/infer"} <= set(document["paths"])
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["parameters"][0]["enum"] == ["iris"]
    example = document["definitions"]["InferenceRequest"]["example"]
    answer = requests.post(pandas_driver.url + "/v2/models/iris/infer", json=example, timeout=10)
    assert answer.json()["outputs"][0]["data"] == [0]


class ServiceApi:
    """A hand-written stand-in for the management API client: one running service."""

    def __init__(self, service: dict, keys: dict) -> None:
        self.answers = {"/services/s1": service, "/services/s1/keys": keys}

    def call(self, method: str, path: str, **_: object) -> requests.Response:
        answer = requests.Response()
        answer.status_code, answer._content = 200, json.dumps(self.answers[path]).encode()
        return answer


def test_moma_service_usage_shows_an_oip_curl_line_that_scores(serve, tmp_path):
    from management.cli.context import CliContext
    from management.cli.service_scoring import usage_of
    from management.client import Scope

    keys = tmp_path / "keys"
    keys.write_text(key_hash("primary") + "\n")
    server = serve("dc_schema.py", copy=("service_schema.json",), MOMA_KEYS_FILE=str(keys),
                   MOMA_SERVICE_NAME="life")
    service = {"id": "s1", "name": "life", "state": "Succeeded", "scoringUri": server.url + "/score",
               "swaggerUri": server.url + "/swagger.json"}
    context = CliContext("http://127.0.0.1:1", None, Scope(), _client=ServiceApi(service, {"primaryKey": "primary"}))
    usage = usage_of(context, "s1")
    assert usage["inferUri"] == server.url + "/v2/models/life/infer"
    answers = [json.loads(subprocess.run(shlex.split(usage[line]), check=True, capture_output=True,
                                         text=True, timeout=30).stdout) for line in ("curl", "oipCurl")]
    assert answers[1]["model_name"] == "life"
    assert answers[1]["outputs"][0]["data"] == json.loads(answers[0]) == [1]
