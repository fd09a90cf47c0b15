"""Realtime services on the local engine, end to end: a real `moma serve`, the real
Docker engine, real HTTP to the scoring containers."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import docker.errors
import pytest

from bench.api_flow import create_image, register_iris, wait_operation
from bench.moma_server import MomaServer
from management.client import ServerError
from tests.conftest import TEST_RUN_LABEL
from tests.services_flow import (
    ContinuousClient,
    create_service,
    operation_id,
    score,
    service_containers,
    wait_until_it_scores,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_run_id: str, docker_client) -> Iterator[MomaServer]:
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "1", "MOMA_SERVICE_READY_SECONDS": "40"}
    server = MomaServer(tmp_path_factory.mktemp("services-home"), env).start()
    yield server
    server.delete_services_and_stop()


@pytest.fixture(scope="module")
def images(server: MomaServer, tmp_path_factory) -> dict[str, str]:
    """Two images of the iris example (models trained differently) and a broken one."""
    import shutil

    from tests.integration.conftest import EXAMPLE, train

    client, built = server.client(), {}
    for name, c in (("iris-a", 1.0), ("iris-b", 0.05)):
        project = tmp_path_factory.mktemp(name)
        for file in ("score.py", "requirements.txt"):
            shutil.copy(EXAMPLE / file, project / file)
        train(project, c)
        operation = wait_operation(client, create_image(client, register_iris(client, project, name)["manifest"]["id"],
                                                        name))
        assert operation["state"] == "Succeeded", operation
        built[name] = operation["resourceLocation"].rsplit("/", 1)[-1]
    broken = tmp_path_factory.mktemp("broken")
    shutil.copy(EXAMPLE / "requirements.txt", broken / "requirements.txt")
    (broken / "score.py").write_text("def init():\n    raise RuntimeError('the model file is corrupt')\n\n"
                                     "def run(data):\n    return data\n")
    train(broken)
    operation = wait_operation(client, create_image(client, register_iris(client, broken, "broken")["manifest"]["id"],
                                                    "broken"))
    built["broken"] = operation["resourceLocation"].rsplit("/", 1)[-1]
    return built


def service_of(server: MomaServer, operation: dict[str, Any]) -> dict[str, Any]:
    return server.client().call("GET", f"/services/{operation['resourceLocation'].rsplit('/', 1)[-1]}").json()


def test_minimal_create_scores_with_a_key(server, images, docker_client):
    client = server.client()
    started = time.monotonic()
    operation = create_service(client, images["iris-a"], "minimal")
    assert operation["state"] == "Succeeded", operation
    service = service_of(server, operation)
    assert time.monotonic() - started < 30
    assert service["scoringUri"].startswith("http://127.0.0.1:") and service["scoringUri"].endswith("/score")
    assert service["swaggerUri"].endswith("/swagger.json")
    assert service["numReplicas"] == 1 and service["autoScaler"]["autoscaleEnabled"] is False
    keys = client.call("GET", f"/services/{service['id']}/keys").json()
    assert len(keys["primaryKey"]) >= 43 and keys["primaryKey"] != keys["secondaryKey"]

    unauthorized = score(service["scoringUri"], None)
    assert unauthorized.status_code == 401 and unauthorized.headers["WWW-Authenticate"].startswith("Bearer")
    assert score(service["scoringUri"], "wrong").status_code == 401
    assert score(service["scoringUri"], keys["primaryKey"]).json() == ["setosa"]
    assert score(service["scoringUri"], keys["secondaryKey"]).json() == ["setosa"]

    container = next(c for c in service_containers(docker_client, service['id'])
                     if c.labels["moma.role"] == "scoring")
    host_config = container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] and host_config["CapDrop"] == ["ALL"]
    assert (host_config["PidsLimit"], host_config["Memory"]) == (2048, 2 * 2**30), "the default limits"
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.attrs["Config"]["User"] == "10001:10001"
    holder = next(c for c in service_containers(docker_client, service['id'])
                  if c.labels["moma.role"] == "port-holder")
    assert holder.attrs["HostConfig"]["PortBindings"]["5001/tcp"][0]["HostIp"] == "127.0.0.1"


def test_name_conflict_and_local_limits(server, images):
    client = server.client()
    create_service(client, images["iris-a"], "taken")
    body = {"imageId": images["iris-a"], "name": "taken", "computeResource": {"id": "local", "type": "Cluster"}}
    with pytest.raises(ServerError) as conflict:
        client.call("POST", "/services", json=body)
    assert conflict.value.status == 409
    for extra, fragment in (({"numReplicas": 3}, "needs a swarm compute"),
                            ({"autoScaler": {"autoscaleEnabled": True}}, "autoscaling needs a swarm compute"),
                            ({"containerResourceReservation": {"cpu": "lots"}}, "not a Kubernetes CPU quantity"),
                            ({"containerResourceReservation": {"memory": "1Gb"}}, "not a Kubernetes memory"),
                            ({"dataCollection": {"eventHubEnabled": True}}, "not supported")):
        with pytest.raises(ServerError) as refused:
            client.call("POST", "/services", json={**body, "name": "other", **extra})
        assert refused.value.status == 400 and fragment in refused.value.message


def test_reservations_become_limits(server, images, docker_client):
    operation = create_service(server.client(), images["iris-a"], "limited",
                               containerResourceReservation={"cpu": "500m", "memory": "512Mi"})
    service = service_of(server, operation)
    container = next(c for c in service_containers(docker_client, service['id'])
                     if c.labels["moma.role"] == "scoring")
    assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert container.attrs["HostConfig"]["Memory"] == 512 * 2**20
    assert service["containerResourceReservation"] == {"cpu": "500m", "memory": "512Mi"}


def test_keys_rotate_while_a_client_scores(server, images):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "rotating"))
    old = client.call("GET", f"/services/{service['id']}/keys").json()
    with ContinuousClient(service["scoringUri"], old["secondaryKey"]) as scoring:
        new = client.call("POST", f"/services/{service['id']}/regenerateKeys", json={"keyType": "Primary"}).json()
        assert new["secondaryKey"] == old["secondaryKey"] and new["primaryKey"] != old["primaryKey"]
        # each gunicorn worker picks up the new key hashes on its own next check: wait
        # until several requests in a row (spread over the workers) agree
        deadline = time.monotonic() + 10
        while not (all(score(service["scoringUri"], new["primaryKey"]).status_code == 200 for _ in range(6))
                   and all(score(service["scoringUri"], old["primaryKey"]).status_code == 401 for _ in range(6))):
            assert time.monotonic() < deadline, "the new key did not take effect in every worker"
            time.sleep(0.2)
    assert scoring.failures == 0 and scoring.counts["200"] > 10, scoring.counts


def test_image_update_keeps_serving_and_the_uri(server, images):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "updated"))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    with ContinuousClient(service["scoringUri"], key) as scoring:
        operation = wait_operation(client, operation_id(client.call(
            "PUT", f"/services/{service['id']}", json={"imageId": images["iris-b"]})), timeout=120)
    assert operation["state"] == "Succeeded", operation
    updated = client.call("GET", f"/services/{service['id']}").json()
    assert updated["scoringUri"] == service["scoringUri"]
    assert updated["image"]["id"] == images["iris-b"]
    assert client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"] == key
    assert scoring.failures == 0 and scoring.counts["200"] > 10, scoring.counts
    deployments = client.call("GET", "/deployments", params={"serviceId": service["id"]}).json()
    assert [d["imageId"] for d in deployments] == [images["iris-a"], images["iris-b"]]
    assert "expiredAt" in deployments[0] and "expiredAt" not in deployments[1]


def test_broken_image_fails_with_its_log_and_the_old_one_keeps_serving(server, images):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "guarded"))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    operation = wait_operation(client, operation_id(client.call(
        "PUT", f"/services/{service['id']}", json={"imageId": images["broken"]})), timeout=120)
    assert operation["state"] == "Failed"
    assert "the model file is corrupt" in operation["error"]["message"] + str(operation["error"].get("details"))
    assert score(service["scoringUri"], key).json() == ["setosa"], "the previous generation still serves"


def test_a_service_that_never_gets_ready_fails(server, images):
    operation = create_service(server.client(), images["broken"], "never-ready")
    assert operation["state"] == "Failed"
    details = " ".join(d["message"] for d in operation["error"].get("details", []))
    assert "RuntimeError: the model file is corrupt" in details


def test_container_removed_behind_our_back_comes_back(server, images, docker_client):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "resilient"))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    for container in service_containers(docker_client, service['id']):
        container.remove(force=True)
    wait_until_it_scores(client, service, key)
    assert client.call("GET", f"/services/{service['id']}").json()["scoringUri"] == service["scoringUri"]


def test_containers_removed_while_the_reconciler_redeploys_come_back(server, images, docker_client):
    """What made the test above fail on a loaded machine: the reconciler saw the scoring
    container gone and redeployed into the port holder that was being removed next;
    that redeploy failed, and a failed redeploy was never tried again."""
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "raced"))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]

    def scoring() -> list:
        containers = docker_client.containers.list(all=True, ignore_removed=True,  # the worker removes some
                                                   filters={"label": f"moma.service-id={service['id']}"})
        return [c for c in containers if c.labels["moma.role"] == "scoring"]

    first = scoring()[0]
    first.remove(force=True)
    deadline = time.monotonic() + 30
    while not [c for c in scoring() if c.id != first.id]:
        assert time.monotonic() < deadline, "the reconciler did not start a new container"
        time.sleep(0.05)
    for container in docker_client.containers.list(all=True, ignore_removed=True,
                                                   filters={"label": f"moma.service-id={service['id']}"}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)

    wait_until_it_scores(client, service, key, timeout=90)
    deadline = time.monotonic() + 10  # the worker records the redeploy just after it answers
    while (state := client.call("GET", f"/services/{service['id']}").json())["state"] != "Succeeded":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_delete_leaves_nothing(server, images, docker_client):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "doomed"))
    assert client.call("DELETE", f"/services/{service['id']}").status_code == 200
    assert client.call("DELETE", f"/services/{service['id']}").status_code == 204
    with pytest.raises(ServerError) as gone:
        client.call("GET", f"/services/{service['id']}")
    assert gone.value.status == 404
    deadline = time.monotonic() + 30
    while service_containers(docker_client, service['id'], stopped=True):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert not (server.home / "services" / service["id"]).exists()


def test_restart_of_moma_loses_no_service(server, images):
    client = server.client()
    service = service_of(server, create_service(client, images["iris-a"], "durable"))
    key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
    server.stop()
    assert score(service["scoringUri"], key).status_code == 200, "services outlive the management server"
    server.start()
    assert server.client().call("GET", f"/services/{service['id']}").json()["state"] == "Succeeded"
    assert score(service["scoringUri"], key).json() == ["setosa"]
