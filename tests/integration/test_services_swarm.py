"""Realtime services on a single-node Docker Swarm, end to end: a real `moma serve` whose
worker deploys, updates, scales and autoscales swarm services, real HTTP to them.

The swarm comes from ``tests/engines/conftest.py`` (``docker swarm init`` when the
engine is in none, left again at the end)."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any, Callable, Iterator

import pytest
import requests

from management.client import ApiClient
from management.engines import LABEL_SERVICE
from tests.api_flow import create_image, register_iris, wait_operation
from tests.conftest import TEST_RUN_LABEL
from tests.engines.conftest import swarm  # noqa: F401  (the fixture)
from tests.integration.conftest import EXAMPLE, train
from tests.server import MomaServer
from tests.services_flow import ContinuousClient, create_service, operation_id, score

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SWARM = "cluster"
RUN_SECONDS = 0.1  # how long the slow image's run() takes: load the autoscaler can see
SLOW_DRIVER = f'''
import time

{(EXAMPLE / "score.py").read_text()}

_predict = run


def run(raw_data):
    time.sleep({RUN_SECONDS})
    return _predict(raw_data)
'''


@pytest.fixture(scope="module")
def server(swarm, tmp_path_factory, test_run_id: str) -> Iterator[MomaServer]:  # noqa: F811
    # passes of the reconciler as far apart as by default: the autoscaler runs between them
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "5", "MOMA_SERVICE_READY_SECONDS": "60"}
    server = MomaServer(tmp_path_factory.mktemp("swarm-services-home"), env).start()
    added = server.client().call("POST", "/computes", json={"name": SWARM, "type": "swarm"}).json()
    assert added["type"] == "swarm"
    yield server
    server.delete_services_and_stop()


@pytest.fixture(scope="module")
def images(server: MomaServer, tmp_path_factory) -> dict[str, str]:
    """The iris example, and the same with a run() that takes RUN_SECONDS longer."""
    client, built = server.client(), {}
    for name, driver in (("iris", None), ("slow", SLOW_DRIVER)):
        project = tmp_path_factory.mktemp(name)
        for file in ("score.py", "requirements.txt"):
            shutil.copy(EXAMPLE / file, project / file)
        if driver:
            (project / "score.py").write_text(driver)
        train(project)
        operation = wait_operation(client, create_image(client, register_iris(client, project, name)["manifest"]["id"],
                                                        name))
        assert operation["state"] == "Succeeded", operation
        built[name] = operation["resourceLocation"].rsplit("/", 1)[-1]
    return built


def service_of(client: ApiClient, operation: dict[str, Any]) -> dict[str, Any]:
    assert operation["state"] == "Succeeded", operation
    return client.call("GET", f"/services/{operation['resourceLocation'].rsplit('/', 1)[-1]}").json()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.5)
    return value


def swarm_replicas(docker_client, service_id: str) -> tuple[int, int]:
    """(desired, running) of the service's swarm service, as the engine sees it."""
    [service] = docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={service_id}"})
    running = [task for task in service.tasks() if task["Status"]["State"] == "running"
               and task["DesiredState"] == "running"]
    return service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"], len(running)


def instances(scoring_uri: str, tries: int = 30) -> set[str]:
    """The replicas answering behind the one published port, each asked on a new connection."""
    base = scoring_uri.rsplit("/", 1)[0]
    return {requests.get(f"{base}/readyz", timeout=5, headers={"Connection": "close"}).json()["instance"]
            for _ in range(tries)}


def test_replicas_update_with_no_failed_request_scale_and_delete(server, images, docker_client):
    client = server.client()
    service = service_of(client, create_service(client, images["iris"], "replicated", compute=SWARM,
                                                numReplicas=2))
    assert service["numReplicas"] == 2 and service["autoScaler"]["autoscaleEnabled"] is False
    assert service["scoringUri"].startswith("http://127.0.0.1:") and service["scoringUri"].endswith("/score")
    keys = client.call("GET", f"/services/{service['id']}/keys").json()
    assert score(service["scoringUri"], None).status_code == 401
    assert score(service["scoringUri"], keys["primaryKey"]).json() == ["setosa"]
    assert swarm_replicas(docker_client, service["id"]) == (2, 2)
    assert len(instances(service["scoringUri"])) == 2, "the engine spreads connections over both replicas"

    with ContinuousClient(service["scoringUri"], keys["secondaryKey"]) as scoring:
        operation = wait_operation(client, operation_id(client.call(
            "PUT", f"/services/{service['id']}", json={"imageId": images["slow"]})), timeout=180)
    assert operation["state"] == "Succeeded", operation
    assert scoring.failures == 0 and scoring.counts["200"] > 20, scoring.counts
    updated = client.call("GET", f"/services/{service['id']}").json()
    assert (updated["scoringUri"], updated["image"]["id"]) == (service["scoringUri"], images["slow"])
    deployments = client.call("GET", "/deployments", params={"serviceId": service["id"]}).json()
    assert [d["imageId"] for d in deployments] == [images["iris"], images["slow"]]

    operation = wait_operation(client, operation_id(client.call(
        "PUT", f"/services/{service['id']}", json={"numReplicas": 3})), timeout=120)
    assert operation["state"] == "Succeeded", operation
    assert client.call("GET", f"/services/{service['id']}").json()["numReplicas"] == 3
    assert swarm_replicas(docker_client, service["id"]) == (3, 3)
    assert len(instances(service["scoringUri"])) == 3

    assert client.call("DELETE", f"/services/{service['id']}").status_code == 200
    selector = {"label": f"{LABEL_SERVICE}={service['id']}"}
    wait_for(lambda: not (docker_client.services.list(filters=selector) or docker_client.secrets.list(filters=selector)
                          or docker_client.containers.list(all=True, filters=selector)),
             timeout=90, what="the swarm service, its secrets and its containers to go")


def test_autoscaler_scales_up_under_load_and_back_down(server, images, docker_client):
    client = server.client()
    service = service_of(client, create_service(
        client, images["slow"], "autoscaled", compute=SWARM, maxConcurrentRequestsPerContainer=1,
        autoScaler={"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 3, "refreshPeriodInSeconds": 1,
                    "targetUtilization": 70}))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    assert service["numReplicas"] == 1 and swarm_replicas(docker_client, service["id"]) == (1, 1)

    def replicas() -> int:
        return client.call("GET", f"/services/{service['id']}").json()["numReplicas"]

    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                score(service["scoringUri"], key, session=session)
            except requests.RequestException:
                session = requests.Session()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: replicas() == 3, timeout=60, what="the autoscaler to reach maxReplicas under load")
        wait_for(lambda: swarm_replicas(docker_client, service["id"]) == (3, 3), timeout=60,
                 what="three running replicas")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    wait_for(lambda: replicas() == 1, timeout=60, what="the autoscaler to come back down to minReplicas")
    wait_for(lambda: swarm_replicas(docker_client, service["id"]) == (1, 1), timeout=60, what="one running replica")
    assert score(service["scoringUri"], key).json() == ["setosa"]
    client.call("DELETE", f"/services/{service['id']}")
