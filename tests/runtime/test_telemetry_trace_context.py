"""A caller's W3C trace context, as a hostile client may send it, against a real gunicorn
with telemetry on and a receiver on 127.0.0.1: "not sampled" cannot hide a request
unless the service asked to follow the caller's sampling, a huge ``tracestate`` is cut,
a malformed one or a malformed ``traceparent`` starts a trace of our own."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from bench.runtime.otlp_receiver import OtlpReceiver, attributes
from runtime.errors import ConfigError
from runtime.telemetry.settings import TelemetrySettings
from runtime.telemetry.spans import TRACESTATE_LIMIT, bounded_tracestate

from .conftest import Server

pytestmark = pytest.mark.slow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
FAST = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100", "WORKERS": "1"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def traced(serve: Callable[..., Server], receiver: OtlpReceiver, **env: str) -> Server:
    return serve("telemetry_driver.py", AML_APP_INSIGHTS_ENABLED="true",
                 OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, **FAST, **env)


def score(server: Server, request_id: str, body: dict[str, Any] | None = None, **headers: str) -> None:
    answer = server.score(body or {"tag": request_id}, headers={"x-ms-request-id": request_id, **headers})
    assert answer.status_code == 200, server.stderr()[-2000:]


def span_of(receiver: OtlpReceiver, request_id: str) -> Any:
    (_, span), = receiver.wait_for(lambda r: [(resource, span) for resource, span in r.spans
                                              if attributes(span.attributes).get("moma.request_id") == request_id])
    return span


def test_a_caller_that_says_not_sampled_is_recorded_all_the_same(serve, receiver):
    server = traced(serve, receiver)
    score(server, "unsampled", {"tag": "unsampled", "otel": True},
          traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-00")
    span = span_of(receiver, "unsampled")
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == CALLER_SPAN
    assert span.flags & 0x01  # recorded: sampled, as the driver's context says too
    driver_span, = receiver.wait_for(lambda r: [s for _, s in r.spans if s.name == "driver-work"])
    assert driver_span.trace_id.hex() == TRACE_ID and driver_span.parent_span_id == span.span_id


def test_a_service_may_follow_the_callers_sampling(serve, receiver):
    server = traced(serve, receiver, OTEL_TRACES_SAMPLER="parentbased_always_on")
    score(server, "unsampled", {"tag": "unsampled", "otel": True},
          traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-00")
    score(server, "sampled", traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01")
    score(server, "no-parent")
    # one worker exports its spans in the order their requests ended
    assert span_of(receiver, "no-parent").trace_id.hex() != TRACE_ID
    recorded = {attributes(span.attributes).get("moma.request_id") for _, span in receiver.spans}
    assert "sampled" in recorded and "unsampled" not in recorded
    assert not [s for _, s in receiver.spans if s.name == "driver-work"]


def test_a_huge_tracestate_is_cut_and_malformed_context_starts_a_new_trace(serve, receiver):
    server = traced(serve, receiver)
    huge = ",".join([f"k{number}={'v' * 200}" for number in range(20)] + [f"s{number}=1" for number in range(12)])
    score(server, "huge", traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01", tracestate=huge)
    score(server, "bad-state", traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01", tracestate="not a tracestate,=")
    score(server, "bad-parent", traceparent=f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01")
    score(server, "zero-trace", traceparent=f"00-{'0' * 32}-{CALLER_SPAN}-01")

    kept = span_of(receiver, "huge").trace_state
    assert kept == ",".join(f"s{number}=1" for number in range(12))  # the long entries went first
    assert span_of(receiver, "bad-state").trace_state == ""
    for request_id in ("bad-parent", "zero-trace"):
        span = span_of(receiver, request_id)
        assert span.trace_id.hex() not in (TRACE_ID, "0" * 32) and not span.parent_span_id


def test_bounded_tracestate_keeps_whole_entries_from_the_left():
    short = "a=1,b=2"
    assert bounded_tracestate(short) == short and bounded_tracestate(" a=1 , ,b=2 ") == short
    entries = [f"k{number}={'v' * 60}" for number in range(20)]
    cut = bounded_tracestate(",".join(entries))
    assert len(cut) <= TRACESTATE_LIMIT and entries[0] in cut
    assert ",".join(entries).startswith(cut) and len(cut) + len(entries[0]) + 1 > TRACESTATE_LIMIT


def test_only_the_two_samplers_are_accepted():
    on = {"AML_APP_INSIGHTS_ENABLED": "true"}
    assert TelemetrySettings.load(on).follow_caller_sampling is False
    assert TelemetrySettings.load({**on, "OTEL_TRACES_SAMPLER": "always_on"}).follow_caller_sampling is False
    assert TelemetrySettings.load({**on, "OTEL_TRACES_SAMPLER": "parentbased_always_on"}).follow_caller_sampling
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER must be one of always_on, parentbased_always_on"):
        TelemetrySettings.load({**on, "OTEL_TRACES_SAMPLER": "traceidratio"})
