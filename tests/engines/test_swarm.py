"""What only the swarm engine does: replicas behind one port, scaling, how its tasks
are confined, and refusing an engine that is not a swarm manager."""

from __future__ import annotations

from dataclasses import replace

import docker
import pytest

from management.engines import KEYS_FILE, LABEL_SERVICE, EngineUnavailable, ServiceSpec
from management.engines.swarm import SwarmEngine, _kernel_has_ipvs, _secret_name

from .conftest import PRIMARY, instances, score, wait_for


@pytest.fixture
def engine(swarm_engine):
    """Only the swarm engine here (``make_spec`` removes services through it)."""
    return swarm_engine


@pytest.mark.docker
@pytest.mark.slow
def test_scale_up_and_down_and_the_port_spreads_over_replicas(engine, make_spec, docker_client):
    spec = make_spec("scale")
    endpoint = engine.deploy(spec)
    assert len(instances(endpoint.base_url, tries=5)) == 1

    engine.scale(spec.service_id, 3)
    wait_for(lambda: engine.status(spec.service_id).running == 3, timeout=60, what="3 running replicas")
    wait_for(lambda: len(instances(endpoint.base_url)) == 3, timeout=30, what="3 instances answering")
    status = engine.status(spec.service_id)
    assert (status.desired, status.generation, status.endpoint) == (3, 1, endpoint)
    assert all(score(endpoint.base_url, PRIMARY).status_code == 200 for _ in range(20))

    engine.scale(spec.service_id, 1)
    wait_for(lambda: engine.status(spec.service_id).running == 1, timeout=60, what="1 running replica")
    wait_for(lambda: len(instances(endpoint.base_url)) == 1, timeout=30, what="1 instance answering")
    assert engine.deploy(spec) == endpoint, "scaling left the spec alone: nothing to update"

    [first] = wait_for(lambda: len(found := docker_client.containers.list(
        filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})) == 1 and found, what="the stopped replicas to go")
    assert engine.deploy(replace(spec, generation=2, replicas=2)) == endpoint
    status = engine.status(spec.service_id)
    assert (status.generation, status.running, status.desired) == (2, 2, 2)
    running = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})
    assert first.id in {container.id for container in running}, "a generation that only scales keeps the tasks"


@pytest.mark.docker
@pytest.mark.slow
def test_tasks_are_confined_and_get_their_keys_from_a_secret(engine, make_spec, docker_client):
    spec = make_spec("confined", cpu=0.5, memory=256 * 1024 * 1024)
    engine.deploy(spec)

    [container] = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 * 1024 * 1024
    assert container.attrs["Config"]["User"] in ("", "10001:10001")  # the image's user
    assert container.exec_run("id -u").output.strip() == b"10001"
    assert container.exec_run("touch /probe").exit_code != 0 and container.exec_run("touch /tmp/probe").exit_code == 0
    assert container.exec_run(f"stat -c %a {KEYS_FILE}").output.strip() == b"444"
    [secret] = docker_client.secrets.list(filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})
    assert secret.name == _secret_name(spec.service_id, spec.key_hashes)
    service = docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})[0]
    update = service.attrs["Spec"]["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == ("start-first", "rollback", 1)
    resources = service.attrs["Spec"]["TaskTemplate"]["Resources"]
    assert resources["Reservations"] == resources["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 256 << 20}


@pytest.mark.docker
@pytest.mark.slow
def test_a_task_killed_behind_its_back_is_replaced(engine, make_spec, docker_client):
    spec = make_spec("killed")
    endpoint = engine.deploy(spec)
    [container] = docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={spec.service_id}"})
    container.remove(force=True)

    assert engine.deploy(spec) == endpoint
    assert score(endpoint.base_url, PRIMARY).status_code == 200


class _NotAManager:
    def info(self):
        return {"Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False}}


def test_an_engine_outside_a_swarm_is_unavailable_with_the_fix(monkeypatch):
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: _NotAManager())
    with pytest.raises(EngineUnavailable, match="docker swarm init"):
        SwarmEngine.from_env("127.0.0.1")


def test_key_secrets_are_named_by_service_and_content():
    first = _secret_name("a" * 32, ("1" * 64, "2" * 64))
    assert first == _secret_name("a" * 32, ("1" * 64, "2" * 64))
    assert first != _secret_name("a" * 32, ("3" * 64, "2" * 64))
    assert first.startswith("moma-keys-" + "a" * 32) and len(first) <= 64


def test_ipvs_detection_answers_for_this_kernel():
    assert _kernel_has_ipvs() in (True, False, None)


class _NoImages:
    def get(self, reference):
        raise docker.errors.ImageNotFound(reference)


class _RegistryOnlyClient:
    images = _NoImages()


class _Secret:
    id, name = "secret-id", "moma-keys-x"


@pytest.mark.parametrize("publish", ["ingress", "host"])
def test_the_swarm_service_spec(publish):
    engine = SwarmEngine(_RegistryOnlyClient(), "127.0.0.1", "inst", publish=publish)
    spec = ServiceSpec(service_id="a" * 32, name="moma-x", image="registry.example/x:1", generation=3, replicas=2,
                       cpu=0.5, memory=1 << 28, env={"A": "1", "MOMA_INSTANCE": "pinned"}, key_hashes=("1" * 64,),
                       labels={"moma.account": "acc"}, port=31000, ready_seconds=30)

    body = engine._service_spec(spec, _Secret(), 31000)

    container = body["TaskTemplate"]["ContainerSpec"]
    env = dict(item.split("=", 1) for item in container["Env"])
    assert container["Image"] == "registry.example/x:1", "not here: the nodes pull it"
    assert env["A"] == "1" and env["MOMA_KEYS_FILE"] == KEYS_FILE
    if publish == "ingress":
        assert "MOMA_INSTANCE" not in env, "replicas name themselves after their host name"
        assert body["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 5001, "PublishedPort": 31000,
                                                  "PublishMode": "ingress"}]
        assert "Networks" not in body["TaskTemplate"]
    else:
        assert env["MOMA_INSTANCE"] == "{{.Task.Name}}"
        assert (env["PORT"], env["REUSE_PORT"], env["MOMA_BIND"]) == ("31000", "true", "127.0.0.1")
        assert body["TaskTemplate"]["Networks"] == [{"Target": "host"}] and body["EndpointSpec"] is None
        assert body["Labels"]["moma.port"] == "31000"
    assert container["ReadOnly"] is True and container["CapabilityDrop"] == ["ALL"]
    assert container["Privileges"] == {"NoNewPrivileges": True}
    assert [(m["Target"], m["Type"]) for m in container["Mounts"]] == [("/tmp", "tmpfs")]
    assert container["Secrets"] == [{"SecretID": "secret-id", "SecretName": "moma-keys-x",
                                     "File": {"Name": KEYS_FILE, "UID": "10001", "GID": "10001", "Mode": 0o444}}]
    assert container["Healthcheck"]["StartPeriod"] == 30 * 10**9
    assert body["Mode"] == {"Replicated": {"Replicas": 2}}
    update = body["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == ("start-first", "rollback", 1)
    assert update["Monitor"] > container["Healthcheck"]["Interval"] * 3
    assert body["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
    assert body["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 1 << 28},
        "Reservations": {"NanoCPUs": 500_000_000, "MemoryBytes": 1 << 28}}
    for labels in (body["Labels"], container["Labels"]):
        assert labels["moma.account"] == "acc" and labels[LABEL_SERVICE] == "a" * 32
        assert labels["moma.installation"] == "inst" and labels["moma.generation"] == "3"

    again = engine._service_spec(spec, _Secret(), 31000)
    assert again["Labels"]["moma.spec-hash"] == body["Labels"]["moma.spec-hash"], "same spec, same hash"
    assert again["TaskTemplate"]["ContainerSpec"]["Labels"]["moma.revision"] != container["Labels"]["moma.revision"]
    regenerated = engine._service_spec(replace(spec, generation=4), _Secret(), 31000)
    assert regenerated["Labels"]["moma.spec-hash"] == body["Labels"]["moma.spec-hash"], "nothing new to run"
    scaled = engine._service_spec(replace(spec, replicas=5), _Secret(), 31000)
    assert scaled["Labels"]["moma.spec-hash"] == body["Labels"]["moma.spec-hash"], "replicas are not the spec"
    changed = engine._service_spec(replace(spec, env={"A": "2"}), _Secret(), 31000)
    assert changed["Labels"]["moma.spec-hash"] != body["Labels"]["moma.spec-hash"]
