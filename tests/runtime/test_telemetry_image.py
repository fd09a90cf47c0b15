"""Telemetry from a real built service container (``appInsightsEnabled``): a receiver on
the Docker bridge's gateway (reachable from the container, nothing leaves the machine)
gets the spans, log records and metrics over OTLP/HTTP, decoded with
``opentelemetry-proto``, or Azure Monitor's envelopes at the ingestion endpoint a
connection string names."""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterator

import pytest
import requests

from bench.runtime.otlp_receiver import OtlpReceiver, attributes
from tests.bridge import bridge_gateway
from tests.integration.conftest import (  # noqa: F401
    RunningImage,
    build_driver_image,
    builder,
    builder_config,
    labels,
    moma_home,
    run_image,
)
from tests.runtime.conftest import FIXTURES, prometheus_value
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
FAST = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000", "WORKERS": "1"}


@pytest.fixture(scope="module")
def image(builder, labels, tmp_path_factory) -> str:  # noqa: F811
    return build_driver_image(builder, labels, tmp_path_factory.mktemp("telem"), FIXTURES / "telemetry_driver.py",
                              "telem", model="weights")


@pytest.fixture(scope="module")
def gateway(docker_client, test_run_id: str) -> str:
    """The bridge network's address on this host: containers reach a receiver bound there."""
    return bridge_gateway(docker_client, test_run_id)


@pytest.fixture
def receiver(gateway: str) -> Iterator[OtlpReceiver]:
    with OtlpReceiver(host=gateway) as receiver:
        yield receiver


def serve(run_image: Callable[..., RunningImage], image: str, **env: str) -> RunningImage:  # noqa: F811
    service = run_image(image, **env)
    assert service.wait_until_answering("/readyz").status_code == 200, service.logs()
    return service


def score(service: RunningImage, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(service.url + "/score", json=body, headers=headers, timeout=10)


def spans_of(receiver: OtlpReceiver, request_id: str) -> list[tuple[dict[str, Any], Any]]:
    return [(resource, span) for resource, span in receiver.spans
            if attributes(span.attributes).get("moma.request_id") == request_id]


def test_spans_logs_and_metrics_reach_an_otlp_collector(run_image, image, receiver):  # noqa: F811
    service = serve(run_image, image, AML_APP_INSIGHTS_ENABLED="true",
                    OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, MOMA_SERVICE_ID="svc-17",
                    MOMA_SERVICE_NAME="telem", **FAST)
    answer = score(service, {"tag": "t1", "otel": True}, **{
        "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "x-ms-request-id": "req-ok"})
    assert answer.status_code == 200, service.logs()
    failed = score(service, {"tag": "secret-input", "fail": "why"}, **{"x-ms-request-id": "req-bad"})
    assert failed.status_code == 500

    (resource, span), = receiver.wait_for(lambda r: spans_of(r, "req-ok"))
    found = attributes(span.attributes)
    assert span.name == "POST /score" and span.kind == 2  # SERVER
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == CALLER_SPAN
    assert found["http.route"] == "/score" and found["http.response.status_code"] == 200
    assert found["moma.model.name"] == "telem" and found["moma.model.version"] == "3"
    assert found["moma.service.id"] == "svc-17" and found["moma.admission"] == "admitted"
    assert found["moma.queue_wait_ms"] >= 0 and span.end_time_unix_nano > span.start_time_unix_nano
    container_id = service.container.get_wrapped_container().id
    assert found["container.id"] == resource["container.id"] == container_id
    assert resource["service.name"] == "telem" and resource["moma.service.id"] == "svc-17"

    # the driver's own span is a child of the request's, in the caller's trace
    driver_span = receiver.wait_for(lambda r: [s for _, s in r.spans if s.name == "driver-work"])[0]
    assert driver_span.trace_id == span.trace_id and driver_span.parent_span_id == span.span_id
    assert attributes(driver_span.attributes) == {"driver.tag": "t1"}

    # its print and its logging: log records tied to the span
    def records(receiver: OtlpReceiver) -> list[Any]:
        bodies = {record.body.string_value: record for _, record in receiver.logs}
        return [bodies.get("driver printed t1"), bodies.get("driver logged t1")] \
            if {"driver printed t1", "driver logged t1"} <= set(bodies) else []
    for record in receiver.wait_for(records):
        assert record.trace_id == span.trace_id and record.span_id == span.span_id

    # a driver error: the exception's type and message, never the request body
    (_, bad), = receiver.wait_for(lambda r: spans_of(r, "req-bad"))
    assert bad.status.code == 2 and attributes(bad.attributes)["error.type"] == "RuntimeError"
    assert attributes(bad.attributes)["http.response.status_code"] == 500
    event, = bad.events
    assert event.name == "exception"
    assert attributes(event.attributes) == {"exception.type": "RuntimeError", "exception.message": "refused why"}
    assert "secret-input" not in str(bad)

    # metrics: the worker's counters as OTel metrics (count, duration, in flight, 429s, 5xx)
    metrics = receiver.wait_for(lambda r: {m.name: m for _, m in r.metrics} or None)
    assert {"moma.requests", "moma.request.duration", "moma.requests.active", "moma.requests.rejected",
            "moma.requests.server_errors"} <= set(metrics)
    assert metrics["moma.request.duration"].WhichOneof("data") == "histogram"
    exported = requests.get(service.url + "/metrics", timeout=10).text
    assert prometheus_value(exported, "moma_telemetry_exported_total", {"signal": "spans"}) >= 2


def test_a_dead_collector_costs_requests_nothing_and_drops_are_counted(run_image, image, gateway):  # noqa: F811
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind((gateway, 0))
        port = closed.getsockname()[1]
    service = serve(run_image, image, AML_APP_INSIGHTS_ENABLED="true",
                    OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{gateway}:{port}", **FAST)
    assert all(score(service, {"tag": str(n)}).status_code == 200 for n in range(20))

    def dropped() -> float:
        text = requests.get(service.url + "/metrics", timeout=10).text
        return prometheus_value(text, "moma_telemetry_dropped_total",
                                {"signal": "spans", "reason": "export_failed"})
    # each batch dropped once its export failed, or while the exporter backs off
    wait_for(lambda: dropped() >= 20, what="20 spans dropped as export_failed")
    assert prometheus_value(requests.get(service.url + "/metrics", timeout=10).text,
                            "moma_telemetry_exported_total", {"signal": "spans"}) == 0


def test_off_nothing_exported_and_no_opentelemetry_imported(run_image, image, receiver):  # noqa: F811
    service = serve(run_image, image, AML_APP_INSIGHTS_ENABLED="false",
                    OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, **FAST)
    assert score(service, {"modules": True}).json() == []
    assert score(service, {"tag": "off"}).status_code == 200
    service.container.get_wrapped_container().stop(timeout=20)  # leaving, a worker exports what it queued
    assert receiver.requests == {}


def test_azure_monitor_sends_to_the_connection_strings_ingestion_endpoint(run_image, image, receiver):  # noqa: F811
    key = "00000000-0000-4000-8000-000000000017"
    service = serve(run_image, image, AML_APP_INSIGHTS_ENABLED="true", **FAST,
                    APPLICATIONINSIGHTS_CONNECTION_STRING=f"InstrumentationKey={key};"
                                                          f"IngestionEndpoint={receiver.url}/")
    assert score(service, {"tag": "az"}, **{"x-ms-request-id": "req-az",
                                           "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}).status_code == 200

    def request_envelopes(receiver: OtlpReceiver) -> list[dict[str, Any]]:
        return [e for e in receiver.envelopes if e["data"]["baseType"] == "RequestData"]
    envelope, = receiver.wait_for(request_envelopes)
    assert envelope["iKey"] == key
    assert envelope["tags"]["ai.operation.id"] == TRACE_ID
    data = envelope["data"]["baseData"]
    assert data["responseCode"] == "200" and data["properties"]["moma.request_id"] == "req-az"
    messages = receiver.wait_for(lambda r: [e for e in r.envelopes if e["data"]["baseType"] == "MessageData"
                                            and e["data"]["baseData"]["message"] == "driver printed az"])
    assert messages[0]["tags"]["ai.operation.id"] == TRACE_ID
