"""Realtime services on a single-node Docker Swarm, end to end: a real `moma serve` whose
worker deploys, updates, scales and autoscales swarm services, real HTTP to them.

The swarm comes from ``tests/engines/conftest.py`` (``docker swarm init`` when the
engine is in none, left again at the end)."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
import requests

from bench.api_flow import create_image, register_iris, wait_operation
from bench.moma_server import MomaServer
from management.client import ApiClient
from management.config import SUPPORTED_API_VERSIONS
from management.engines import LABEL_SERVICE
from tests.conftest import TEST_RUN_LABEL
from tests.engines.conftest import swarm  # noqa: F401  (the fixture)
from tests.engines.docker_proxy import DockerProxy
from tests.integration.conftest import EXAMPLE, train
from tests.services_flow import (
    ContinuousClient,
    create_service,
    operation_id,
    score,
    service_containers,
    wait_until_it_scores,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SWARM = "cluster"
DEADLINE_S = 2.0  # of an API request's engine call
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
           "MOMA_RECONCILE_SECONDS": "5", "MOMA_SERVICE_READY_SECONDS": "60",
           "MOMA_ENGINE_DEADLINE_SECONDS": str(DEADLINE_S)}
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
                          or docker_client.containers.list(ignore_removed=True, all=True, filters=selector)),
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


def test_a_hanging_docker_host_slows_only_its_own_services(server, images, docker_client):
    """/logs of a service whose Docker host (a swarm manager, here behind a proxy that
    stops passing requests on) hangs answers 504 within the deadline while /logs of a
    local one keeps answering at once, and the reconciler goes on with the local
    services meanwhile."""
    client = server.client()
    with DockerProxy() as hanging:
        client.call("POST", "/computes", json={"name": "hanging", "type": "swarm", "dockerHost": hanging.url})
        remote = service_of(client, create_service(client, images["iris"], "far", compute="hanging"))
        local = service_of(client, create_service(client, images["iris"], "near"))
        key = client.call("GET", f"/services/{local['id']}/keys").json()["primaryKey"]
        assert logs_call(server, remote["id"])[0] == 200, "the host answers before it hangs"
        hanging.stall()

        with ThreadPoolExecutor(8) as pool:
            stalled = [pool.submit(logs_call, server, remote["id"]) for _ in range(6)]
            calm = [logs_call(server, local["id"]) for _ in range(10)]
            stalled_answers = [future.result() for future in stalled]
        print(f"\n/logs on the hanging host: {stalled_answers}\n/logs on the local engine: {calm}")
        assert all(status == 200 and seconds < 1.0 for status, _, seconds in calm), calm
        assert all(status == 504 and code == "EngineTimeout" and seconds < DEADLINE_S + 1.5
                   for status, code, seconds in stalled_answers), stalled_answers

        for container in service_containers(docker_client, local['id']):
            container.remove(force=True)
        wait_until_it_scores(client, local, key)

        hanging.resume()
        deadline = time.monotonic() + 30
        while logs_call(server, remote["id"])[0] != 200:
            assert time.monotonic() < deadline, "/logs did not answer again once the host did"
            time.sleep(0.5)
        deleted = client.call("DELETE", f"/services/{remote['id']}").headers["Operation-Location"]
        assert wait_operation(client, deleted.rsplit("/", 1)[-1], timeout=120)["state"] == "Succeeded"


def logs_call(server: MomaServer, service_id: str) -> tuple[int, str, float]:
    """GET .../logs on a connection of its own: (status, error code, seconds)."""
    started = time.monotonic()
    answer = requests.get(f"{server.url}{server.client().scope.path}/services/{service_id}/logs",
                          params={"api-version": SUPPORTED_API_VERSIONS[0], "tail": "5"},
                          headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    code = answer.json().get("code", "") if answer.status_code >= 400 else ""
    return answer.status_code, code, round(time.monotonic() - started, 2)
