"""The autoscaler for real: a slow service on a single-node swarm scales up under
concurrent load and back down to its minimum when the load stops."""

from __future__ import annotations

import threading

import pytest
import requests

from management.worker.autoscaler import Autoscaler
from tests.waiting import wait_for

from .conftest import PRIMARY

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SETTINGS = {"autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 3,
                           "refreshPeriodInSeconds": 0.5, "targetUtilization": 70},
            "maxConcurrentRequestsPerContainer": 1}


@pytest.fixture
def engine(swarm_engine):
    """Only the swarm engine here (``make_workload`` removes services through it)."""
    return swarm_engine


def _loop(stop: threading.Event, work) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            work()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_autoscaler_scales_up_under_load_and_back_down(engine, make_workload):
    workload = make_workload("autoscale", env={"ENGINE_TEST_VERSION": "v1", "ENGINE_TEST_RUN_SECONDS": "0.3",
                                       "MAX_CONCURRENT_REQUESTS": "1"})
    endpoint = engine.deploy(workload)
    recorded: list[int] = []
    scaler = Autoscaler(lambda service_id, replicas: recorded.append(replicas))
    stop_scaler, stop_load = threading.Event(), threading.Event()

    def observe() -> None:
        scaler.observe(workload.service_id, engine, SETTINGS, PRIMARY)
        stop_scaler.wait(0.1)

    def load() -> None:
        try:
            requests.post(f"{endpoint.base_url}/score", json={}, headers={"Authorization": f"Bearer {PRIMARY}"},
                          timeout=10)
        except requests.RequestException:
            pass  # replicas come and go; what matters here is the load

    threads = [_loop(stop_scaler, observe)] + [_loop(stop_load, load) for _ in range(4)]
    try:
        wait_for(lambda: engine.status(workload.service_id).running > 1, timeout=60, what="more replicas under load")
        peak = max(recorded)
        stop_load.set()
        wait_for(lambda: engine.status(workload.service_id).desired == 1, timeout=60, what="back to one replica")
    finally:
        stop_load.set()
        stop_scaler.set()
        for thread in threads:
            thread.join()

    assert peak > 1 and recorded[-1] == 1, recorded
    assert all(b - a == -1 for a, b in zip(recorded[recorded.index(peak):], recorded[recorded.index(peak) + 1:])), \
        f"down one step at a time: {recorded}"
    wait_for(lambda: engine.status(workload.service_id).running == 1, timeout=60, what="one running replica")
