"""The ``/v2`` JSON codec: orjson where it reads and writes what ``json`` would, ``json``
for everything else, with the same documents and errors either way."""

from __future__ import annotations

import json
import math

import pytest

from runtime.errors import BadInput
from runtime.oip import codec
from runtime.oip.inputs import InputMapping
from runtime.oip.tensors import parse_request

ORJSON_READS = [
    b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}',
    b'{"a" : 1, "a": 2, "b": [true, false, null], "c": "\\u00e9\\ud83d\\ude00\xc3\xa9"}',
    b'[-0, -0.0, 1E5, 5e-324, 1.7976931348623157e308, 123456789012345678, -922337203685477580]',
    b'\t [1] \r\n', b'"\\u0000"',
]
JSON_READS = [  # orjson refuses these, or would read them differently
    b"[NaN, Infinity, -Infinity]", b"[1e400]", b'["\\ud800"]', b"\xef\xbb\xbf[1]",
    b"[18446744073709551616, -9223372036854775809, 1234567890123456789]",
    "[1, \"é\"]".encode("utf-16"), "[1]".encode("utf-32-le"),
]


@pytest.fixture(params=["orjson", "json only"])
def installed(request, monkeypatch):
    if request.param == "json only":
        monkeypatch.setattr(codec, "orjson", None)
    return request.param


@pytest.mark.parametrize("raw", ORJSON_READS)
def test_orjson_reads_what_it_reads_as_json_does(raw, installed):
    document, read_by_orjson = codec.loads(raw)
    assert repr(document) == repr(json.loads(raw)) and read_by_orjson == (installed == "orjson")
    assert json.loads(codec.dumps(document, read_by_orjson)) == document


@pytest.mark.parametrize("raw", JSON_READS)
def test_json_reads_the_rest_with_the_same_result(raw, installed):
    document, read_by_orjson = codec.loads(raw)
    assert repr(document) == repr(json.loads(raw)) and not read_by_orjson
    assert codec.dumps(document, read_by_orjson) == json.dumps(document)


@pytest.mark.parametrize("raw", [b"", b"[1,]", b'{"a": 1}x', b'["\xff"]', b"[Nan]"])
def test_a_body_neither_reads_fails_with_jsons_error(raw, installed):
    with pytest.raises(ValueError) as caught:
        codec.loads(raw)
    with pytest.raises(ValueError) as expected:
        json.loads(raw)
    assert str(caught.value) == str(expected.value)


def test_nesting_past_orjsons_limit_is_jsons_recursion_error(installed):
    with pytest.raises(RecursionError):
        codec.loads(b"[" * 5000 + b"]" * 5000)


def test_integers_past_64_bits_stay_whole_and_nan_reaches_the_driver(installed):
    big = 2 ** 64 - 1
    tensor = parse_request(json.dumps({"inputs": [
        {"name": "x", "shape": [2], "datatype": "UINT64", "data": [big, 1]}]}).encode()).inputs[0]
    assert tensor.values == [big, 1] and type(tensor.values[0]) is int
    with pytest.raises(BadInput, match="is not UINT64"):
        parse_request(json.dumps({"inputs": [
            {"name": "x", "shape": [1], "datatype": "UINT64", "data": [big + 1]}]}).encode())
    request = parse_request(b'{"inputs": [{"name": "data", "shape": [1, 2], "datatype": "FP64", '
                            b'"data": [NaN, 1.5]}]}')
    (text,), _ = InputMapping(None).arguments(request)[0]
    assert text == '{"data": [[NaN, 1.5]]}'


@pytest.mark.parametrize("document, by_json", [
    ({"outputs": [{"data": [0, 1.5, "x", True]}], "id": "a"}, False),
    ({"outputs": [{"data": [math.nan, 1.0]}]}, True),  # NaN as /score writes it
    ({"outputs": [{"data": [math.inf]}]}, True),
    ({"outputs": [{"data": [None]}]}, True),
    ({"outputs": [{"data": [2 ** 64]}]}, True),
    ({"model_name": "null"}, True),
])
def test_an_answer_is_written_as_json_would_write_it(document, by_json, installed):
    body = codec.dumps_answer(document)
    expected = json.dumps(document).encode()
    if by_json or installed == "json only":
        assert body == expected
    else:
        assert b" " not in body and json.loads(body) == json.loads(expected)


@pytest.mark.parametrize("depth", [300, 990, 1020])
def test_a_body_nested_past_what_orjson_writes_is_read_by_json(depth, installed):
    """json refuses deep bodies (RecursionError: a 400) where orjson would read them."""
    raw = (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": '
           + b"[" * depth + b"1.5" + b"]" * depth + b"}]}")
    try:
        expected = json.loads(raw)
    except RecursionError:
        with pytest.raises(RecursionError):
            codec.loads(raw)
    else:
        assert codec.loads(raw) == (expected, False)


def test_a_value_nested_past_what_orjson_writes_is_written_by_json(installed):
    """A shallow body whose shape nests the 2017 body 260 levels deep."""
    request = parse_request(json.dumps({"inputs": [
        {"name": "x", "shape": [1] * 260, "datatype": "FP32", "data": [1.5]}]}).encode())
    (text,), _ = InputMapping(None).arguments(request)[0]
    assert text == json.dumps({"x": json.loads("[" * 259 + "[1.5]" + "]" * 259)})
