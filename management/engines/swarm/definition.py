"""The swarm service a :class:`Workload` becomes: its *definition* (what Docker's API
calls a ServiceSpec), made by a pure function, and :class:`Definition`, which reads one
by name and makes changed copies of it.

The definition carries a hash of everything in it but the replicas, the generation,
the keys secret and the revision (``moma.spec-hash``, a name older than "definition"
that running services carry), so that a deploy that changes nothing is recognised:
it is computed over the definition without those parts, which are added after it
into new dicts; nothing hashed changes afterwards.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from docker import types

from runtime import contract

from .. import LABEL_GENERATION, LABEL_IMAGE, LABEL_INSTALLATION, LABEL_ROLE, LABEL_SERVICE, Limits, Workload
from ..docker_host import STOP_SECONDS, TMP_BYTES
from ..environment import Placement, container_environment

PUBLISH_INGRESS, PUBLISH_HOST = "ingress", "host"
SCORING = "scoring"  # the tasks' moma.role
LABEL_REVISION = "moma.revision"
LABEL_DEFINITION_HASH = "moma.spec-hash"
LABEL_PUBLISH = "moma.publish"
LABEL_PORT = "moma.port"
NS = 1_000_000_000
HEALTH_TIMEOUT_S = 5
HEALTH_RETRIES = 3
# Swarm fills these in for each task of a host-mode service: the task's name and id.
TASK_NAME, TASK_ID = "{{.Task.Name}}", "{{.Task.ID}}"


@dataclass(frozen=True)
class SwarmSettings:
    """What an engine decides for all its services."""

    installation: str
    publish: str = PUBLISH_INGRESS  # or PUBLISH_HOST: the tasks use the node's network
    bind: str = "0.0.0.0"  # host mode: the address the tasks listen on
    health_interval: float = 2.0  # seconds between health checks of a task
    limits: Limits = Limits()


@dataclass(frozen=True)
class KeysSecret:
    id: str
    name: str


def service_definition(workload: Workload, settings: SwarmSettings, *, image: str, port: int | None,
                       keys: KeysSecret, revision: str) -> dict[str, Any]:
    """The definition that runs ``workload``: the tasks run ``image`` (the reference
    resolved for the nodes) with the keys of the secret ``keys``, labelled ``revision``;
    they are published on ``port`` (ingress: None lets swarm pick; host: required)."""
    core = _core(workload, settings, image, port)
    generation = str(workload.generation)
    container = core["TaskTemplate"]["ContainerSpec"]
    return {
        **core,
        "Labels": {**core["Labels"], LABEL_GENERATION: generation, LABEL_DEFINITION_HASH: definition_hash(core)},
        "Mode": replicated(workload.replicas),
        "TaskTemplate": {**core["TaskTemplate"], "ContainerSpec": {
            **container, "Labels": {**container["Labels"], LABEL_GENERATION: generation, LABEL_REVISION: revision},
            "Secrets": [keys_reference(keys)]}},
    }


def workload_labels(workload: Workload, installation: str) -> dict[str, str]:
    """The labels of everything the engine makes for a workload (service, tasks, secrets)."""
    return {**workload.labels, LABEL_SERVICE: workload.service_id, LABEL_INSTALLATION: installation}


def definition_hash(core: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:32]


def replicated(replicas: int) -> dict[str, Any]:
    return {"Replicated": {"Replicas": replicas}}


def keys_reference(secret: KeysSecret) -> dict[str, Any]:
    """How a task mounts the keys: at the contract's keys file, readable by the runtime's user."""
    uid = str(contract.UID)
    return dict(types.SecretReference(secret.id, secret.name, filename=contract.KEYS_FILE, uid=uid, gid=uid,
                                      mode=0o444))


def _core(workload: Workload, settings: SwarmSettings, image: str, port: int | None) -> dict[str, Any]:
    """Everything the hash covers."""
    host_mode = settings.publish == PUBLISH_HOST
    if host_mode and port is None:
        raise ValueError("a host-mode service needs its port chosen beforehand")
    labels = workload_labels(workload, settings.installation)
    placement = (Placement(instance=TASK_NAME, instance_id=TASK_ID, port=port, bind=settings.bind, reuse_port=True)
                 if host_mode else Placement())  # ingress: each task names itself after its host
    container = dict(types.ContainerSpec(
        image, env=container_environment(workload.env, placement), labels={**labels, LABEL_ROLE: SCORING},
        mounts=[types.Mount("/tmp", None, type="tmpfs", tmpfs_size=TMP_BYTES)], read_only=True,
        cap_drop=["ALL"], stop_grace_period=STOP_SECONDS * NS,
        healthcheck=types.Healthcheck(test=["CMD", *contract.HEALTHCHECK], interval=int(settings.health_interval * NS),
                                      timeout=HEALTH_TIMEOUT_S * NS, retries=HEALTH_RETRIES,
                                      start_period=int(workload.ready_seconds * NS)),
    ))
    container["Privileges"] = {"NoNewPrivileges": True}  # ignored by engines before API 1.4x
    template = dict(types.TaskTemplate(container, resources=_resources(workload, settings.limits) or None,
                                       restart_policy=types.RestartPolicy("on-failure", delay=2 * NS)))
    service_labels = {**labels, LABEL_PUBLISH: settings.publish, LABEL_IMAGE: workload.image}
    endpoint: dict[str, Any] | None = None
    if host_mode:
        template["Networks"] = [{"Target": "host"}]
        service_labels[LABEL_PORT] = str(port)
    else:
        published: dict[str, Any] = {"Protocol": "tcp", "TargetPort": contract.PORT, "PublishMode": "ingress"}
        if port:
            published["PublishedPort"] = port
        endpoint = {"Mode": "vip", "Ports": [published]}
    monitor = int((settings.health_interval * 4 + 5) * NS)  # long enough to see a task turn unhealthy
    return {
        "Name": workload.name, "Labels": service_labels, "TaskTemplate": template, "EndpointSpec": endpoint,
        "UpdateConfig": dict(types.UpdateConfig(parallelism=1, delay=0, failure_action="rollback", monitor=monitor,
                                                max_failure_ratio=0, order="start-first")),
        "RollbackConfig": dict(types.RollbackConfig(parallelism=1, delay=0, failure_action="pause", monitor=monitor,
                                                    max_failure_ratio=0, order="start-first")),
    }


def _resources(workload: Workload, limits: Limits) -> dict[str, Any]:
    """CPU and memory reserved and limited alike; the engine's pids limit, and its memory
    limit when the service reserves none (``Limits.Pids`` needs API 1.41)."""
    nano_cpus = int(workload.cpu * 1e9) if workload.cpu else None
    resources = dict(types.Resources(cpu_limit=nano_cpus, cpu_reservation=nano_cpus,
                                     mem_limit=limits.memory_for(workload), mem_reservation=workload.memory))
    if limits.pids:
        resources["Limits"] = {**resources.get("Limits", {}), "Pids": limits.pids}
    return resources


class Definition:
    """A service's definition as swarm holds it (``Service.attrs["Spec"]``), read by name;
    the ``with_`` methods return changed copies and never change it."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    @property
    def labels(self) -> Mapping[str, str]:
        return self.raw.get("Labels") or {}

    @property
    def container(self) -> Mapping[str, Any]:
        return self.raw["TaskTemplate"]["ContainerSpec"]

    @property
    def container_labels(self) -> Mapping[str, str]:
        return self.container.get("Labels") or {}

    @property
    def replicas(self) -> int:
        return int(((self.raw.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0))

    @property
    def revision(self) -> str:
        return self.container_labels.get(LABEL_REVISION, "")

    @property
    def generation(self) -> int:
        return int(self.labels.get(LABEL_GENERATION) or 0)

    @property
    def hash(self) -> str | None:
        return self.labels.get(LABEL_DEFINITION_HASH)

    @property
    def service_id(self) -> str:
        return self.labels[LABEL_SERVICE]

    @property
    def host_port(self) -> int | None:
        """The port of a host-mode service (None in ingress mode)."""
        if self.labels.get(LABEL_PUBLISH) != PUBLISH_HOST or not self.labels.get(LABEL_PORT):
            return None
        return int(self.labels[LABEL_PORT])

    @property
    def host_mode(self) -> bool:
        return self.labels.get(LABEL_PUBLISH) == PUBLISH_HOST

    @property
    def keys_secret(self) -> str | None:
        """The name of the secret mounted at the keys file."""
        for reference in self.container.get("Secrets") or []:
            if _mounts_keys(reference):
                return reference.get("SecretName")
        return None

    def with_replicas(self, replicas: int, generation: int | None = None) -> dict[str, Any]:
        labels = self.labels if generation is None else {**self.labels, LABEL_GENERATION: str(generation)}
        return {**self.raw, "Labels": labels, "Mode": replicated(replicas)}

    def with_keys(self, keys: KeysSecret, revision: str) -> dict[str, Any]:
        """Mount ``keys`` instead of the keys now mounted, as a new revision (a rolling update)."""
        others = [reference for reference in self.container.get("Secrets") or [] if not _mounts_keys(reference)]
        container = {**self.container, "Secrets": [*others, keys_reference(keys)],
                     "Labels": {**self.container_labels, LABEL_REVISION: revision}}
        return {**self.raw, "TaskTemplate": {**self.raw["TaskTemplate"], "ContainerSpec": container}}


def _mounts_keys(reference: Mapping[str, Any]) -> bool:
    return (reference.get("File") or {}).get("Name") == contract.KEYS_FILE
