"""What the console makes of a scoring container's ``/metrics`` (``management/console/scoring.py``):
``snapshot`` over the Prometheus text the runtime's own code renders (``runtime.metrics``
over a real shared memory and real admission slots), and the service page's
``metrics.json``, which asks the container with the service's key.

Rates and the p50/p99 latencies come from the difference of two snapshots, in the
page's script (``quantile`` in ``static/console.js``), not in Python: no test here."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from management.console.scoring import SCORING_ROUTES, snapshot
from runtime.admission import Admission
from runtime.errors import Overloaded
from runtime.metrics import ROUTE_INDEX, Metrics, new_shared_memory
from tests.waiting import wait_for

from .conftest import Pages, built_image, deployed_service

DEFAULT = "/accounts/default/default/default"
SCORE = ROUTE_INDEX["/score"]
# (status, seconds) of the /score requests answered; one more is refused with 429 below
SCORED = [(200, 0.003), (200, 0.004), (200, 0.02), (200, 0.2), (500, 3.0), (503, 0.0002), (504, 20.0)]
# requests that are not scoring: counted by the runtime, left out of the console's charts
INFER = ROUTE_INDEX["/v2/models/{name}/infer"]  # an Open Inference Protocol call is a scoring call too
# requests that are not scoring: counted by the runtime, left out of the console's charts (a
# 503 from a readiness check while the container starts is not an error of the service)
NOT_SCORING = [("/livez", 200, 0.0001)] * 3 + [("/metrics", 200, 0.5)] * 2 + [
    ("/readyz", 200, 0.0001), ("/readyz", 503, 0.0001), ("/v2/health/ready", 503, 0.0001),
    ("/v2/models/{name}", 200, 0.001), ("/swagger.json", 200, 0.001), ("/", 200, 0.001)]


@contextlib.contextmanager
def busy_container(tmp_path: Path) -> Iterator[Metrics]:
    """A container's metrics as its workers record them (``MAX_CONCURRENT_REQUESTS=2``,
    ``MAX_QUEUE=1``): the requests above answered, two run() calls holding both slots,
    one request queued for a slot, and one refused with 429 because the queue is full."""
    memory = new_shared_memory(str(tmp_path), limit=2, max_queue=1)
    metrics = Metrics(memory, instance="test")
    admission = Admission(memory.admission, limit=2, max_queue=1, max_wait_ms=60_000)
    for status, seconds in SCORED:
        metrics.request_started()
        metrics.request_finished(SCORE, status, seconds)
    metrics.request_started()
    metrics.request_finished(INFER, 200, 0.004)
    for route, status, seconds in NOT_SCORING:
        metrics.request_started()
        metrics.request_finished(ROUTE_INDEX[route], status, seconds)
    for _ in range(2):
        metrics.request_started()
        assert admission.acquire() == 0.0
    metrics.request_started()
    queued = threading.Thread(target=admission.acquire)
    queued.start()
    try:
        wait_for(lambda: memory.admission.totals()[1] == 1, timeout=10, interval=0.005,
                 what="the third request to wait in the queue")
        metrics.request_started()
        with pytest.raises(Overloaded) as refused:
            admission.acquire()
        assert refused.value.reason == "queue_full"
        metrics.rejected("queue_full")
        metrics.request_finished(SCORE, 429, 0.0003)
        yield metrics
    finally:
        admission.release()  # the queued request takes the freed slot
        queued.join(10)
        memory.close()


def test_a_snapshot_has_the_scoring_requests_429s_5xx_in_flight_queue_and_latency(tmp_path: Path):
    with busy_container(tmp_path) as metrics:
        text = metrics.render().decode()
    assert "moma_requests_in_flight 3.0" in text  # two holding slots and one queued: not what "In flight" charts
    assert 'moma_rejections_total{reason="queue_full"} 1.0' in text
    seen = snapshot(text)
    assert seen == {
        "requests": 9.0,  # the 7 answered on /score, the v2 infer and the 429; no health check, /metrics...
        "throttled": 1.0,
        "errors": 3.0,  # 500, 503, 504 of /score; not /readyz's 503
        "inFlight": 2.0,  # run() calls holding a slot (moma_scoring_in_flight)
        "queueDepth": 1.0,
        # scoring calls' latency histogram, cumulative, by upper bound (None: +Inf), health checks left out
        "latency": [[0.0005, 2.0], [0.001, 2.0], [0.0025, 2.0], [0.005, 5.0], [0.01, 5.0], [0.025, 6.0],
                    [0.05, 6.0], [0.1, 6.0], [0.25, 7.0], [0.5, 7.0], [1.0, 7.0], [2.5, 7.0], [5.0, 8.0],
                    [10.0, 8.0], [None, 9.0]],
    }


def test_the_scoring_routes_are_the_runtimes():
    from runtime.oip.routes import INFER as RUNTIME_INFER

    assert SCORING_ROUTES == ("/score", RUNTIME_INFER)


def test_a_fresh_container_has_nothing_to_chart(tmp_path: Path):
    memory = new_shared_memory(str(tmp_path))
    try:
        text = Metrics(memory).render().decode()
    finally:
        memory.close()
    assert snapshot(text) == {"requests": 0.0, "throttled": 0.0, "errors": 0.0, "inFlight": 0.0, "queueDepth": 0.0,
                              "latency": []}


@contextlib.contextmanager
def container_metrics(text: str, key: str) -> Iterator[tuple[int, list[str]]]:
    """A scoring container's ``/metrics`` on 127.0.0.1: ``text`` to a request with ``key``, 401
    to any other. Its port and the Authorization headers it was sent."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            allowed = self.path == "/metrics" and seen[-1] == f"Bearer {key}"
            body = text.encode() if allowed else b'{"message": "a valid key is required"}'
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_service_page_reads_the_containers_metrics_with_the_services_key(pages: Pages, tmp_path: Path):
    with busy_container(tmp_path) as metrics:
        text = metrics.render().decode()
    service_id = deployed_service(pages, built_image(pages, "measured")["id"], "measured")
    key = pages.api().call("GET", f"/services/{service_id}/keys")["primaryKey"]
    pages.sign_in()
    with container_metrics(text, key) as (port, seen):
        pages.app.extensions["moma.store"].services.mark(service_id, "Succeeded", None, scoring_port=port)
        answer = pages.client.get(f"/ui{DEFAULT}/services/{service_id}/metrics.json",
                                  headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.get_json() == snapshot(text)
    assert answer.get_json()["latency"][-1] == [None, 9.0]  # +Inf as null, for the script
    assert seen == [f"Bearer {key}"]
    gone = pages.client.get(f"/ui{DEFAULT}/services/{service_id}/metrics.json", headers={"Accept": "application/json"})
    assert gone.status_code == 502 and "did not answer" in gone.get_json()["message"]
