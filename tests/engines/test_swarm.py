"""What only the swarm engine does: replicas behind one port, scaling, how its tasks
are confined, and refusing an engine that is not a swarm manager."""

from __future__ import annotations

from dataclasses import replace

import docker
import pytest

from management.engines import LABEL_SERVICE, EngineUnavailable
from management.engines.swarm import SwarmEngine
from management.engines.swarm.key_secrets import secret_name
from runtime.contract import KEYS_FILE
from tests.waiting import wait_for

from .conftest import PRIMARY, instances, score


@pytest.fixture
def engine(swarm_engine):
    """Only the swarm engine here (``make_workload`` removes services through it)."""
    return swarm_engine


@pytest.mark.docker
@pytest.mark.slow
def test_scale_up_and_down_and_the_port_spreads_over_replicas(engine, make_workload, docker_client):
    workload = make_workload("scale")
    endpoint = engine.deploy(workload)
    assert len(instances(endpoint.base_url, tries=5)) == 1

    engine.scale(workload.service_id, 3)
    wait_for(lambda: engine.status(workload.service_id).running == 3, timeout=60, what="3 running replicas")
    wait_for(lambda: len(instances(endpoint.base_url)) == 3, timeout=30, what="3 instances answering")
    status = engine.status(workload.service_id)
    assert (status.desired, status.generation, status.endpoint) == (3, 1, endpoint)
    assert all(score(endpoint.base_url, PRIMARY).status_code == 200 for _ in range(20))

    engine.scale(workload.service_id, 1)
    wait_for(lambda: engine.status(workload.service_id).running == 1, timeout=60, what="1 running replica")
    wait_for(lambda: len(instances(endpoint.base_url)) == 1, timeout=30, what="1 instance answering")
    assert engine.deploy(workload) == endpoint, "scaling left the workload alone: nothing to update"

    [first] = wait_for(lambda: len(found := docker_client.containers.list(
        filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})) == 1 and found, what="the stopped replicas to go")
    assert engine.deploy(replace(workload, generation=2, replicas=2)) == endpoint
    status = engine.status(workload.service_id)
    assert (status.generation, status.running, status.desired) == (2, 2, 2)
    running = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
    assert first.id in {container.id for container in running}, "a generation that only scales keeps the tasks"


@pytest.mark.docker
@pytest.mark.slow
def test_tasks_are_confined_and_get_their_keys_from_a_secret(engine, make_workload, docker_client):
    workload = make_workload("confined", cpu=0.5, memory=256 * 1024 * 1024)
    engine.deploy(workload)

    [container] = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 * 1024 * 1024
    assert container.attrs["Config"]["User"] in ("", "10001:10001")  # the image's user
    assert container.exec_run("id -u").output.strip() == b"10001"
    assert container.exec_run("touch /probe").exit_code != 0 and container.exec_run("touch /tmp/probe").exit_code == 0
    assert container.exec_run(f"stat -c %a {KEYS_FILE}").output.strip() == b"444"
    [secret] = docker_client.secrets.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
    assert secret.name == secret_name(workload.service_id, workload.key_hashes)
    service = docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})[0]
    update = service.attrs["Spec"]["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == ("start-first", "rollback", 1)
    resources = service.attrs["Spec"]["TaskTemplate"]["Resources"]
    assert resources["Reservations"] == resources["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 256 << 20}


@pytest.mark.docker
@pytest.mark.slow
def test_a_task_killed_behind_its_back_is_replaced(engine, make_workload, docker_client):
    workload = make_workload("killed")
    endpoint = engine.deploy(workload)
    [container] = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
    container.remove(force=True)

    assert engine.deploy(workload) == endpoint
    assert score(endpoint.base_url, PRIMARY).status_code == 200


class _NotAManager:
    def info(self):
        return {"Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False}}


def test_an_engine_outside_a_swarm_is_unavailable_with_the_fix(monkeypatch):
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: _NotAManager())
    with pytest.raises(EngineUnavailable, match="docker swarm init"):
        SwarmEngine.from_env("127.0.0.1")
