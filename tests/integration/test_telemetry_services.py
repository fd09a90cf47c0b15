"""``appInsightsEnabled`` end to end: a real `moma serve` whose telemetry default is a
receiver on the Docker bridge's gateway, the iris image built through the API, a
service created with the CLI's ``--enable-app-insights true``; the worker tells the
container where to send, and a caller's trace arrives there with the service's id. The
API and the worker send theirs too: request → operation → build or deploy steps."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Iterator

import pytest
import requests

from bench.api_flow import create_image, register_iris, wait_operation
from bench.moma_server import MOMA, MomaServer
from bench.runtime.otlp_receiver import OtlpReceiver, attributes
from tests.bridge import bridge_gateway
from tests.conftest import TEST_RUN_LABEL
from tests.integration.conftest import EXAMPLE, train
from tests.services_flow import ROW

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def receiver(docker_client, test_run_id: str) -> Iterator[OtlpReceiver]:
    gateway = bridge_gateway(docker_client, test_run_id)
    with OtlpReceiver(host=gateway) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_run_id: str, receiver: OtlpReceiver) -> Iterator[MomaServer]:
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "1", "MOMA_SERVICE_READY_SECONDS": "90",
           "MOMA_TELEMETRY_OTLP_ENDPOINT": receiver.url, "MOMA_TELEMETRY_MANAGEMENT": "true"}
    server = MomaServer(tmp_path_factory.mktemp("telemetry-home"), env).start()
    yield server
    server.delete_services_and_stop()


def cli(server: MomaServer, *args: str) -> str:
    env = {"MOMA_HOME": str(server.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run([MOMA, "--url", server.url, *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_service_with_app_insights_sends_its_requests_spans_to_the_servers_collector(server, receiver,
                                                                                        tmp_path):
    project = tmp_path / "iris"
    project.mkdir()
    for name in ("score.py", "requirements.txt"):
        shutil.copy(EXAMPLE / name, project / name)
    train(project)
    client = server.client()
    operation = wait_operation(client, create_image(client, register_iris(client, project, "iris")["manifest"]["id"],
                                                    "iris"), timeout=600)
    assert operation["state"] == "Succeeded", operation
    image_id = operation["resourceLocation"].rsplit("/", 1)[-1]

    cli(server, "service", "create", "realtime", "-n", "traced", "--image-id", image_id,
        "--enable-app-insights", "true")
    service, = client.pages("/services", {"serviceName": "traced"})
    assert service["state"] == "Succeeded" and service["appInsightsEnabled"] is True
    assert re.search(r"^App insights:\s+True$", cli(server, "service", "show", "-i", service["id"]), re.M)

    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    answer = requests.post(service["scoringUri"], json=ROW, timeout=15, headers={
        "Authorization": f"Bearer {key}", "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"})
    assert answer.status_code == 200

    def traced(receiver: OtlpReceiver) -> list[tuple[dict[str, Any], Any]]:
        return [(resource, span) for resource, span in receiver.spans if span.trace_id.hex() == TRACE_ID]
    (resource, span), = receiver.wait_for(traced, timeout=60)
    assert attributes(span.attributes)["moma.service.id"] == resource["moma.service.id"] == service["id"]
    assert resource["service.name"] == "traced" and attributes(span.attributes)["moma.model.name"] == "iris"


def test_the_api_and_the_worker_trace_request_operation_and_steps(server, receiver):
    client = server.client()
    service, = client.pages("/services", {"serviceName": "traced"})  # the test above made it

    def named(receiver: OtlpReceiver, name: str, **wanted: Any) -> list[Any]:
        return [span for _, span in receiver.spans if span.name == name
                and all(attributes(span.attributes).get(key) == value for key, value in wanted.items())]
    operation, = receiver.wait_for(lambda r: named(r, "Service operation", **{"moma.resource.id": service["id"]}))
    request, = [span for _, span in receiver.spans if span.span_id == operation.parent_span_id]
    assert request.name.startswith("POST /api/subscriptions/<sub>/") and request.name.endswith("/services")
    assert attributes(request.attributes)["http.response.status_code"] == 202 and request.kind == 2
    assert request.trace_id == operation.trace_id
    operation_id = attributes(operation.attributes)["moma.operation.id"]
    assert client.call("GET", f"/operations/{operation_id}").json()["state"] == "Succeeded"
    steps = {span.name: span for _, span in receiver.spans if span.parent_span_id == operation.span_id}
    assert {"deploy: workload", "deploy: engine"} <= set(steps)
    assert steps["deploy: engine"].start_time_unix_nano >= steps["deploy: workload"].end_time_unix_nano

    build_operation = receiver.wait_for(lambda r: named(r, "Image operation"))[0]
    build, = [span for _, span in receiver.spans if span.parent_span_id == build_operation.span_id]
    assert build.name == "build" and any("manifest" in event.name for event in build.events)
