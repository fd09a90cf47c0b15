"""The OTLP bytes of request spans, written directly (``runtime/telemetry/wire.py``),
decoded with ``opentelemetry-proto``: every attribute as the request left it, and the
fast attribute writer byte for byte the same as the plain one."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.runtime.otlp_receiver import attributes as decoded
from runtime.telemetry.spans import RequestSpan, Route, SharedAttributes, request_attributes
from runtime.telemetry.wire import FEW_VALUES, AttributeWriter, SpanEncoder, attributes

SCORE, OIP = Route("/score", False), Route("/v2/models/{name}/infer", True)


def span(route: Route = SCORE, path: str = "/score", **slots: Any) -> RequestSpan:
    made = RequestSpan(route, "POST", path, slots.pop("request_id", "req-1"))
    made.trace_id, made.span_id, made.trace_flags = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1
    made.start_ns, made.end_ns, made.status = 1_700_000_000_000_000_000, 1_700_000_000_002_000_000, 200
    for name, value in slots.items():
        setattr(made, name, value)
    return made


SPANS = [
    span(admission="admitted", queue_wait_s=0.00025),
    span(status=500, admission="admitted", queue_wait_s=0.0, error_type="RuntimeError",
         error_message="refused ✗ why", request_id="req-é"),
    span(OIP, "/v2/models/iris/versions/3/infer", model="iris", model_version="3", status=400),
    span(status=429, admission="queue_full", body=b'{"data": [[1, 2]]}' + b"x" * 9000),
    span(path="/score", request_id="r" * 300, parent_id=0x1234, trace_state="vendor=abc"),
]


@pytest.mark.parametrize("made", SPANS)
def test_the_fast_writer_writes_the_same_bytes(made: RequestSpan):
    values = request_attributes(made)
    assert AttributeWriter(9).write(values, FEW_VALUES) == attributes(9, values)
    writer = AttributeWriter(9)
    writer.write(values, FEW_VALUES)
    assert writer.write(values, FEW_VALUES) == attributes(9, values)  # from what it remembered


def test_spans_decode_with_every_attribute():
    shared = SharedAttributes({"moma.service.id": "svc", "container.id": None},
                              {"moma.model.name": "iris", "moma.model.version": "3"})
    encoder = SpanEncoder({"service.name": "iris"}, "moma.runtime", "1", shared)
    for made in SPANS:
        encoder.encode(made)
    request = ExportTraceServiceRequest.FromString(encoder.request(SPANS))
    (resource_spans,) = request.resource_spans
    assert decoded(resource_spans.resource.attributes) == {"service.name": "iris"}
    found = list(resource_spans.scope_spans[0].spans)
    assert len(found) == len(SPANS)
    for made, wire in zip(SPANS, found):
        expected = {**shared.of(made), **request_attributes(made)}
        assert decoded(wire.attributes) == {key: value for key, value in expected.items() if value is not None}
        assert wire.name == made.name and wire.trace_id == made.trace_id.to_bytes(16, "big")
        assert wire.status.code == (2 if made.status >= 500 else 0)
        assert wire.trace_state == made.trace_state
    assert decoded(found[1].events[0].attributes)["exception.message"] == "refused ✗ why"


def test_what_it_remembers_is_bounded():
    writer = AttributeWriter(9)
    for number in range(AttributeWriter.CACHED * 3):
        values = {"url.path": f"/v2/models/m{number}/infer"}
        assert writer.write(values, FEW_VALUES) == attributes(9, values)
    assert len(writer._seen) == AttributeWriter.CACHED
