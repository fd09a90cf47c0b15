"""The swarm service a workload becomes, on plain dicts (no Docker): the definition, its
hash, reading and changing one, and the keys secret's name."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from management.engines import LABEL_SERVICE, Limits, Workload
from management.engines.swarm.definition import (
    LABEL_DEFINITION_HASH,
    LABEL_REVISION,
    Definition,
    KeysSecret,
    SwarmSettings,
    definition_hash,
    service_definition,
)
from management.engines.swarm.key_secrets import secret_labels, secret_name
from management.engines.swarm.publishing import bind_address, kernel_has_ipvs
from runtime import contract

WORKLOAD = Workload(service_id="a" * 32, name="moma-x", image="registry.example/x:1", generation=3, replicas=2,
                    cpu=0.5, memory=1 << 28, env={"A": "1", "MOMA_INSTANCE": "pinned", "PORT": "80"},
                    key_hashes=("1" * 64,), labels={"moma.account": "acc"}, port=31000, ready_seconds=30)
KEYS = KeysSecret("secret-id", "moma-keys-x")


def define(workload: Workload = WORKLOAD, publish: str = "ingress", keys: KeysSecret = KEYS, revision: str = "r1",
           image: str = "registry.example/x:1", **settings) -> dict:
    return service_definition(workload, SwarmSettings("inst", publish, bind="127.0.0.1", **settings), image=image,
                              port=31000, keys=keys, revision=revision)


def environment(definition: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in definition["TaskTemplate"]["ContainerSpec"]["Env"])


@pytest.mark.parametrize("publish", ["ingress", "host"])
def test_the_definition(publish):
    definition = define(publish=publish, limits=Limits(pids=64))

    container = definition["TaskTemplate"]["ContainerSpec"]
    env = environment(definition)
    assert container["Image"] == "registry.example/x:1"
    assert env["A"] == "1" and env["MOMA_KEYS_FILE"] == contract.KEYS_FILE
    if publish == "ingress":
        assert "MOMA_INSTANCE" not in env and "PORT" not in env, "replicas name themselves after their host name"
        assert definition["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": contract.PORT,
                                                        "PublishedPort": 31000, "PublishMode": "ingress"}]
        assert "Networks" not in definition["TaskTemplate"]
    else:
        assert (env["MOMA_INSTANCE"], env["MOMA_INSTANCE_ID"]) == ("{{.Task.Name}}", "{{.Task.ID}}")
        assert (env["PORT"], env["REUSE_PORT"], env["MOMA_BIND"]) == ("31000", "true", "127.0.0.1")
        assert definition["TaskTemplate"]["Networks"] == [{"Target": "host"}] and definition["EndpointSpec"] is None
        assert definition["Labels"]["moma.port"] == "31000"
    assert container["ReadOnly"] is True and container["CapabilityDrop"] == ["ALL"]
    assert container["Privileges"] == {"NoNewPrivileges": True}
    assert [(m["Target"], m["Type"]) for m in container["Mounts"]] == [("/tmp", "tmpfs")]
    uid = str(contract.UID)
    assert container["Secrets"] == [{"SecretID": "secret-id", "SecretName": "moma-keys-x",
                                     "File": {"Name": contract.KEYS_FILE, "UID": uid, "GID": uid, "Mode": 0o444}}]
    assert container["Healthcheck"]["Test"] == ["CMD", *contract.HEALTHCHECK], "the image's own health check"
    assert container["Healthcheck"]["StartPeriod"] == 30 * 10**9
    assert definition["Mode"] == {"Replicated": {"Replicas": 2}}
    update = definition["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == ("start-first", "rollback", 1)
    assert update["Monitor"] > container["Healthcheck"]["Interval"] * 3
    assert definition["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
    assert definition["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 1 << 28, "Pids": 64},
        "Reservations": {"NanoCPUs": 500_000_000, "MemoryBytes": 1 << 28}}
    for labels in (definition["Labels"], container["Labels"]):
        assert labels["moma.account"] == "acc" and labels[LABEL_SERVICE] == "a" * 32
        assert labels["moma.installation"] == "inst" and labels["moma.generation"] == "3"
    assert container["Labels"][LABEL_REVISION] == "r1" and definition["Labels"]["moma.image"] == WORKLOAD.image


def test_the_same_inputs_make_the_same_definition():
    assert define() == define(), "no revision, time or Docker call inside"


def test_the_hash_covers_all_but_replicas_generation_keys_and_revision():
    first = Definition(define()).hash
    assert first and Definition(define(revision="r2")).hash == first
    assert Definition(define(replace(WORKLOAD, generation=4))).hash == first, "nothing new to run"
    assert Definition(define(replace(WORKLOAD, replicas=5))).hash == first, "replicas are not the definition"
    assert Definition(define(keys=KeysSecret("other", "moma-keys-y"))).hash == first, "keys are compared apart"
    assert Definition(define(replace(WORKLOAD, env={"A": "2"}))).hash != first
    assert Definition(define(image="registry.example/x@sha256:" + "0" * 64)).hash != first
    assert Definition(define(health_interval=1.0)).hash != first


def test_the_hash_is_of_the_definition_as_sent_less_what_it_leaves_out():
    """Nothing the hash covers changes after it is computed."""
    definition = define()
    core = copy.deepcopy(definition)
    del core["Mode"]
    core["Labels"] = {k: v for k, v in core["Labels"].items() if k not in ("moma.generation", LABEL_DEFINITION_HASH)}
    container = core["TaskTemplate"]["ContainerSpec"]
    del container["Secrets"]
    container["Labels"] = {k: v for k, v in container["Labels"].items() if k not in ("moma.generation", LABEL_REVISION)}
    assert definition_hash(core) == definition["Labels"][LABEL_DEFINITION_HASH]


def test_host_mode_needs_its_port():
    with pytest.raises(ValueError, match="port"):
        service_definition(WORKLOAD, SwarmSettings("inst", "host"), image="x", port=None, keys=KEYS, revision="r")


def test_a_definition_is_read_by_name_and_changed_into_copies():
    raw = define(publish="host")
    raw["TaskTemplate"]["ContainerSpec"]["Secrets"].append({"SecretName": "other", "File": {"Name": "/run/other"}})
    before = copy.deepcopy(raw)
    definition = Definition(raw)
    assert (definition.replicas, definition.generation, definition.revision) == (2, 3, "r1")
    assert (definition.keys_secret, definition.host_mode, definition.host_port) == ("moma-keys-x", True, 31000)
    assert definition.service_id == "a" * 32

    rekeyed = Definition(definition.with_keys(KeysSecret("id-2", "moma-keys-z"), "r2"))
    assert (rekeyed.keys_secret, rekeyed.revision, rekeyed.replicas) == ("moma-keys-z", "r2", 2)
    assert [ref["SecretName"] for ref in rekeyed.container["Secrets"]] == ["other", "moma-keys-z"]
    scaled = Definition(definition.with_replicas(5, generation=4))
    assert (scaled.replicas, scaled.generation, scaled.revision, scaled.hash) == (5, 4, "r1", definition.hash)
    assert Definition(definition.with_replicas(1)).generation == 3
    assert raw == before, "the definition read is never changed"


def test_an_ingress_definition_has_no_host_port():
    assert Definition(define()).host_port is None and not Definition(define()).host_mode


def test_key_secrets_are_named_by_service_and_content():
    first = secret_name("a" * 32, ("1" * 64, "2" * 64))
    assert first == secret_name("a" * 32, ("1" * 64, "2" * 64))
    assert first != secret_name("a" * 32, ("3" * 64, "2" * 64))
    assert first.startswith("moma-keys-" + "a" * 32) and len(first) <= 64


def test_secrets_carry_the_services_labels_but_not_the_deployments():
    labels = Definition(define()).container_labels
    assert secret_labels(labels) == {"moma.account": "acc", LABEL_SERVICE: "a" * 32, "moma.installation": "inst"}


def test_host_mode_listens_on_loopback_only_when_services_are_announced_there():
    assert bind_address("127.0.0.1") == bind_address("localhost") == "127.0.0.1"
    assert bind_address("10.1.2.3") == bind_address("scoring.example") == "0.0.0.0"


def test_ipvs_detection_answers_for_this_kernel():
    assert kernel_has_ipvs() in (True, False, None)
