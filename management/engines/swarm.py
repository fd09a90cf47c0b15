"""The ``swarm`` engine: a moma service is one Docker Swarm service.

Swarm runs the replicas, restarts failed tasks, spreads connections and rolls
updates; this adapter only translates a :class:`ServiceSpec` into a swarm service
spec and waits for swarm to converge on it.

- **Replicas and updates.** ``spec.replicas`` tasks; updates are rolling,
  ``start-first``, one task at a time, ``failure_action=rollback``: a new task must
  pass its health check (the runtime's ``/readyz``) before swarm stops an old one, so
  the service keeps answering through an update. Every update stamps the task
  template with a new *revision* label; ``deploy`` returns once every running task
  carries it, no task of an older revision runs any more, and ``/readyz`` answers
  200 through the published port. When the new revision fails (the driver's
  ``init()`` raised, the task crashes, or it is not ready in ``spec.ready_seconds``)
  the engine puts the previous spec back (the old tasks never stopped) and raises
  EngineError with the failing tasks' last log lines. A deploy whose spec did not
  change (same spec hash, same keys) updates nothing: the reconciler may repeat it.
  Neither replicas nor the generation are part of that hash: a new generation that
  only changes the replicas scales the service and relabels it, and its tasks keep
  running (``status().generation`` then comes from the service's label).
- **Publishing.** ``ingress``: target port 5001 published in ingress mode on
  ``spec.port`` when given (else swarm picks one), on every node and every
  interface; swarm's routing mesh (IPVS) balances connections over the replicas.
  ``host``: for nodes whose kernel has no IPVS (the routing mesh needs it: without
  it a published port accepts nothing): the tasks use the node's network and
  every replica listens on the same port with SO_REUSEPORT (``REUSE_PORT=true``),
  so the kernel spreads connections, as the local engine does for its two
  generations; the port is bound to 127.0.0.1 when the scoring host is a loopback
  address. ``from_env(publish="auto")`` picks ``ingress`` unless the local kernel
  lacks IPVS. In ``host`` mode each task is named by ``MOMA_INSTANCE={{.Task.Name}}``
  (the host name is the node's) and told apart by the opaque
  ``MOMA_INSTANCE_ID={{.Task.ID}}`` that its ``/readyz`` shows; the health check asks
  ``/readyz`` until its own instance answers.
- **Keys** travel in a Docker secret holding the key-hash file, named after the
  service id and a hash of its content, mounted at ``KEYS_FILE`` (mode 0444, owned
  by the runtime's uid). New keys = a new secret and a rolling update to it (the
  unchanged key keeps working throughout); secrets no task uses any more are then
  removed. ``set_keys`` with the keys already mounted changes nothing.
- **Security.** The image's non-root user, read-only root file system, a tmpfs at
  /tmp, all capabilities dropped, CPU and memory reserved *and* limited; a pids limit,
  and the engine's default memory limit (not reserved) when the service sets none
  (:class:`Limits`; ``Limits.Pids`` needs API 1.41, Docker 20.10). Docker 20.10
  (API 1.41) applies ``CapabilityDrop`` to service tasks but ignores
  ``Privileges.NoNewPrivileges`` (newer engines apply it; it is always sent).
  Dropping every capability empties the bounding set, so a set-uid binary still
  gains no capability.
- **Images** are referenced by their registry digest when they have one, else (on a
  single-node swarm) by id, resolved from the service's reference at each deploy: swarm
  uses them as they are instead of pulling a tag, and a tag moved later changes nothing
  that runs (``moma.image`` keeps the reference).

Docker SDK errors leave every method through ``docker_errors`` as EngineError, the cause kept.
"""

from __future__ import annotations

import copy
from contextlib import suppress
import gzip
import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import docker
import docker.errors
import requests
from docker import types

from . import (KEYS_FILE, LABEL_GENERATION, LABEL_IMAGE, LABEL_INSTALLATION, LABEL_ROLE, LABEL_SERVICE, Endpoint,
               EngineError, EngineStatus, EngineUnavailable, Limits, ServiceSpec)
from .clients import WORKER_TIMEOUT, docker_client, on_this_machine
from .docker_errors import docker_errors, explain

log = logging.getLogger("moma.engines")

PUBLISH_INGRESS, PUBLISH_HOST = "ingress", "host"
CONTAINER_PORT = 5001
SCORING, KEYS = "scoring", "keys"
LABEL_REVISION = "moma.revision"
LABEL_SPEC_HASH = "moma.spec-hash"
LABEL_PUBLISH = "moma.publish"
LABEL_PORT = "moma.port"
MIGRATE_SYSCTL = "net.ipv4.tcp_migrate_req"
RUNTIME_UID = "10001"  # the user the image templates create
STOP_SECONDS = 35  # longer than the runtime's graceful shutdown
TMP_BYTES = 256 * 1024 * 1024
NS = 1_000_000_000
POLL_SECONDS = 0.25
REMOVE_SECONDS = STOP_SECONDS + 15
ROLLBACK_SECONDS = 60.0
FAILED_TASKS_LIMIT = 3  # new tasks that may fail before the deploy gives up
LOG_LINES = 30
ACTIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")

# The health check, run inside each task: exit 0 when this task's own runtime answers
# /readyz with 200. Other replicas may share the port (host mode), so it asks with new
# connections until its own instance answers, and prints the answer for the engine.
HEALTH_CHECK = """\
import http.client, json, os, sys, time
port = int(os.environ.get("PORT") or 5001)
me = os.environ.get("MOMA_INSTANCE_ID")
end = time.monotonic() + 3
while time.monotonic() < end:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        answer = connection.getresponse()
        body = answer.read()
    except (OSError, http.client.HTTPException):
        time.sleep(0.1)
        continue
    finally:
        connection.close()
    try:
        state = json.loads(body)
    except ValueError:
        state = {}
    if me is None or state.get("instance") in (me, os.environ.get("MOMA_INSTANCE")):  # older images: the name
        print(body.decode(errors="replace")[:2000])
        sys.exit(0 if answer.status == 200 else 1)
sys.exit(1)
"""


class SwarmEngine:
    def __init__(self, client: docker.DockerClient, scoring_host: str = "127.0.0.1", installation: str = "default",
                 publish: str = PUBLISH_INGRESS, health_interval: float = 2.0, local_docker: bool = True,
                 limits: Limits = Limits()) -> None:
        if publish not in (PUBLISH_INGRESS, PUBLISH_HOST):
            raise ValueError(f"publish must be {PUBLISH_INGRESS} or {PUBLISH_HOST}, got {publish!r}")
        self.client = client
        self.host = scoring_host
        self.installation = installation
        self.publish = publish
        self.health_interval = health_interval
        self.local_docker = local_docker
        self.limits = limits
        self.keys_seconds = 120.0  # how long set_keys waits for the rolling update
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_env(cls, scoring_host: str, docker_host: str = "", installation: str = "default",
                 publish: str = "auto", limits: Limits = Limits(), tls: Mapping[str, Any] | None = None,
                 timeout: float = WORKER_TIMEOUT) -> "SwarmEngine":
        """The engine for the swarm whose manager ``docker_host`` (default: the local
        engine; see :func:`docker_client`) is; EngineUnavailable when it is not a swarm manager."""
        client = docker_client(docker_host, tls, timeout)
        with docker_errors(f"swarm engine at {docker_host or 'the local socket'}"):
            swarm = client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            where = docker_host or "the local Docker engine"
            raise EngineUnavailable(
                f"{where} is not a swarm manager (swarm state: {swarm.get('LocalNodeState') or 'unknown'}); run "
                "`docker swarm init` on it, or point the compute at a manager node of the swarm")
        local = on_this_machine(docker_host or os.environ.get("DOCKER_HOST", ""))
        if publish == "auto":
            publish = PUBLISH_HOST if local and _kernel_has_ipvs() is False else PUBLISH_INGRESS
            if publish == PUBLISH_HOST:
                log.warning("this kernel has no IPVS, which swarm's routing mesh needs: swarm services publish their "
                            "port on the node's network (SO_REUSEPORT) instead of the ingress network")
        if publish == PUBLISH_HOST and local and _sysctl(MIGRATE_SYSCTL) == "0":
            log.warning("%s is 0 on this node: connections queued on a replica's socket when it stops are reset "
                        "(a few failed requests per update under load); `sysctl -w %s=1` moves them to the other "
                        "replicas", MIGRATE_SYSCTL, MIGRATE_SYSCTL)
        return cls(client, scoring_host, installation, publish=publish, local_docker=local, limits=limits)

    # -- the Engine protocol ------------------------------------------------------------

    def deploy(self, spec: ServiceSpec) -> Endpoint:
        with self._lock(spec.service_id), self._errors(f"cannot deploy service {spec.service_id}"):
            deadline = time.monotonic() + spec.ready_seconds
            secret = self._keys_secret(spec.service_id, spec.key_hashes, _secret_labels(self._labels(spec)))
            service = self._service(spec.service_id)
            if service is None:
                return self._create(spec, secret, deadline)
            return self._update(spec, service, secret, deadline)

    def remove(self, service_id: str) -> None:
        with self._lock(service_id), self._errors(f"cannot remove service {service_id}"):
            self._remove(service_id)

    def status(self, service_id: str) -> EngineStatus:
        with self._errors(f"cannot read the state of service {service_id}"):
            service = self._service(service_id)
            if service is None:
                return EngineStatus(present=False)
            tasks = self._tasks(service)
        running = [task for task in tasks if _running(task)]
        generations = [int(_task_label(task, LABEL_GENERATION) or 0) for task in running]
        if any(_task_label(task, LABEL_REVISION) == _revision(service.attrs["Spec"]) for task in running):
            generations.append(int(service.attrs["Spec"]["Labels"].get(LABEL_GENERATION) or 0))  # see _update
        update = service.attrs.get("UpdateStatus") or {}
        message = update.get("Message", "") if update.get("State") not in (None, "completed") else ""
        if len(running) < _replicas(service.attrs["Spec"]):
            errors = [task["Status"].get("Err") for task in _newest_first(tasks) if task["Status"].get("Err")]
            message = message or (errors[0] if errors else "")
        return EngineStatus(present=True, running=len(running), desired=_replicas(service.attrs["Spec"]),
                            generation=max(generations) if generations else None, endpoint=self._endpoint(service),
                            message=message)

    def logs(self, service_id: str, tail: int = 50) -> str:
        with self._errors(f"cannot read the logs of service {service_id}"):
            service = self._service(service_id)
            if service is None:
                return ""
            return b"".join(service.logs(stdout=True, stderr=True, tail=tail, follow=False)).decode(errors="replace")

    def close(self) -> None:
        self.client.close()

    def scale(self, service_id: str, replicas: int) -> None:
        """Change the number of replicas and nothing else; returns once swarm has the
        new number (``status().running`` follows as tasks start or stop)."""
        if replicas < 1:
            raise EngineError(f"a service needs at least one replica, not {replicas}; delete it instead")

        def change(spec: dict[str, Any]) -> dict[str, Any] | None:
            if _replicas(spec) == replicas:
                return None
            spec["Mode"] = {"Replicated": {"Replicas": replicas}}
            return spec

        with self._errors(f"cannot scale service {service_id}"):
            if not self._change(service_id, change):
                raise EngineError(f"no swarm service runs service {service_id}")

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...], generation: int) -> None:
        """Mount a secret with exactly these key hashes, by a rolling update; nothing
        happens when the service already mounts them (or does not exist yet: deploy
        creates the secret with the service)."""
        with self._lock(service_id), self._errors(f"cannot change the keys of {service_id}"):
            service = self._service(service_id)
            if service is None or _keys_secret_name(service.attrs["Spec"]) == _secret_name(service_id, key_hashes):
                return
            container = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            secret = self._keys_secret(service_id, key_hashes, _secret_labels(container.get("Labels") or {}))
            revision = _new_revision()

            def swap(spec: dict[str, Any]) -> dict[str, Any]:
                container_spec = spec["TaskTemplate"]["ContainerSpec"]
                others = [ref for ref in container_spec.get("Secrets") or [] if ref.get("File", {}).get("Name")
                          != KEYS_FILE]
                container_spec["Secrets"] = others + [_secret_reference(secret)]
                container_spec.setdefault("Labels", {})[LABEL_REVISION] = revision
                return spec

            self._change(service_id, swap)
            self._converge(service_id, revision, time.monotonic() + self.keys_seconds)
            self._collect_secrets(service_id, keep=secret.name)

    def service_ids(self) -> set[str]:
        """Services this engine runs for moma, and those whose key secrets are left."""
        with self._errors("cannot list the services"):
            mine = {"label": [LABEL_SERVICE, f"{LABEL_INSTALLATION}={self.installation}"]}
            services = self.client.services.list(filters=mine)
            secrets = self.client.secrets.list(filters=mine)
        return ({s.attrs["Spec"]["Labels"][LABEL_SERVICE] for s in services}
                | {s.attrs["Spec"]["Labels"][LABEL_SERVICE] for s in secrets})

    # -- deploying ----------------------------------------------------------------------

    def _create(self, spec: ServiceSpec, secret: Any, deadline: float) -> Endpoint:
        if self.publish == PUBLISH_HOST:  # tasks of a service removed behind our back may still hold its port
            self._await_no_containers(spec.service_id, min(deadline, time.monotonic() + REMOVE_SECONDS))
        body = self._service_spec(spec, secret, self._port_for_new(spec.port))
        try:
            self._create_service(body)
        except docker.errors.APIError as exc:
            if not spec.port or "in use" not in explain(exc):
                raise
            log.warning("port %s of service %s is taken; publishing on another one", spec.port, spec.service_id)
            body = self._service_spec(spec, secret, self._port_for_new(None))
            self._create_service(body)
        try:
            return self._converge(spec.service_id, _revision(body), deadline)
        except EngineError:
            self._remove(spec.service_id)  # it never served: leave nothing behind
            raise

    def _update(self, spec: ServiceSpec, service: Any, secret: Any, deadline: float) -> Endpoint:
        previous = service.attrs["Spec"]
        port = self._endpoint(service).port if self._endpoint(service) else self._port_for_new(spec.port)
        body = self._service_spec(spec, secret, port)
        same = (previous.get("Labels", {}).get(LABEL_SPEC_HASH) == body["Labels"][LABEL_SPEC_HASH]
                and _keys_secret_name(previous) == secret.name)
        if same:  # a new generation that changes only the replicas keeps the tasks
            generation = str(spec.generation)
            if _replicas(previous) != spec.replicas or previous["Labels"].get(LABEL_GENERATION) != generation:
                self._change(spec.service_id, lambda current: {
                    **current, "Labels": {**current["Labels"], LABEL_GENERATION: generation},
                    "Mode": {"Replicated": {"Replicas": spec.replicas}}})
            return self._converge(spec.service_id, _revision(previous), deadline)
        self._change(spec.service_id, lambda current: body)
        try:
            endpoint = self._converge(spec.service_id, _revision(body), deadline)
        except EngineError:
            self._roll_back(spec.service_id, previous, _revision(body))
            raise
        self._collect_secrets(spec.service_id, keep=secret.name)
        return endpoint

    def _service_spec(self, spec: ServiceSpec, secret: Any, port: int | None) -> dict[str, Any]:
        """The swarm service spec (API shape) for ``spec``, with a hash of everything but
        the keys and the revision, so that an unchanged spec is recognised."""
        env = {key: value for key, value in spec.env.items() if key not in ("MOMA_INSTANCE", "MOMA_INSTANCE_ID")}
        env["MOMA_KEYS_FILE"] = KEYS_FILE
        if self.publish == PUBLISH_HOST:
            assert port is not None
            env.update(PORT=str(port), REUSE_PORT="true", MOMA_BIND=self._bind_address(),
                       MOMA_INSTANCE="{{.Task.Name}}", MOMA_INSTANCE_ID="{{.Task.ID}}")
        container = types.ContainerSpec(
            self._image(spec.image), env=env,
            labels={**self._labels(spec), LABEL_GENERATION: str(spec.generation), LABEL_ROLE: SCORING},
            mounts=[types.Mount("/tmp", None, type="tmpfs", tmpfs_size=TMP_BYTES)], read_only=True,
            cap_drop=["ALL"], stop_grace_period=STOP_SECONDS * NS,
            healthcheck=types.Healthcheck(test=["CMD", "python", "-c", HEALTH_CHECK],
                                          interval=int(self.health_interval * NS), timeout=5 * NS, retries=3,
                                          start_period=int(spec.ready_seconds * NS)),
        )
        container["Privileges"] = {"NoNewPrivileges": True}  # ignored by engines before API 1.4x
        nano_cpus = int(spec.cpu * 1e9) if spec.cpu else None
        resources = types.Resources(cpu_limit=nano_cpus, cpu_reservation=nano_cpus,
                                    mem_limit=self.limits.memory_for(spec), mem_reservation=spec.memory)
        if self.limits.pids:
            resources.setdefault("Limits", {})["Pids"] = self.limits.pids
        template: dict[str, Any] = dict(types.TaskTemplate(
            container, resources=resources or None,
            restart_policy=types.RestartPolicy("on-failure", delay=2 * NS)))
        labels = {**self._labels(spec), LABEL_GENERATION: str(spec.generation), LABEL_PUBLISH: self.publish,
                  LABEL_IMAGE: spec.image}
        endpoint: dict[str, Any] | None = None
        if self.publish == PUBLISH_HOST:
            template["Networks"] = [{"Target": "host"}]
            labels[LABEL_PORT] = str(port)
        else:
            published: dict[str, Any] = {"Protocol": "tcp", "TargetPort": CONTAINER_PORT, "PublishMode": "ingress"}
            if port:
                published["PublishedPort"] = port
            endpoint = {"Mode": "vip", "Ports": [published]}
        monitor = int((self.health_interval * 4 + 5) * NS)  # long enough to see a task turn unhealthy
        body: dict[str, Any] = {
            "Name": spec.name, "Labels": labels, "Mode": {"Replicated": {"Replicas": spec.replicas}},
            "TaskTemplate": template, "EndpointSpec": endpoint,
            "UpdateConfig": dict(types.UpdateConfig(parallelism=1, delay=0, failure_action="rollback",
                                                    monitor=monitor, max_failure_ratio=0, order="start-first")),
            "RollbackConfig": dict(types.RollbackConfig(parallelism=1, delay=0, failure_action="pause",
                                                        monitor=monitor, max_failure_ratio=0, order="start-first")),
        }
        identity = copy.deepcopy({key: value for key, value in body.items() if key != "Mode"})
        for identity_labels in (identity["Labels"], identity["TaskTemplate"]["ContainerSpec"]["Labels"]):
            identity_labels.pop(LABEL_GENERATION)
        labels[LABEL_SPEC_HASH] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
        container["Secrets"] = [_secret_reference(secret)]
        container["Labels"][LABEL_REVISION] = _new_revision()
        return body

    def _converge(self, service_id: str, revision: str, deadline: float) -> Endpoint:
        """Wait until every running task is of ``revision``, as many as desired, none of
        another revision still runs, and /readyz answers through the published port."""
        while True:
            service = self._service(service_id)
            if service is None:
                raise EngineError(f"the swarm service of {service_id} disappeared while it was being deployed")
            if _revision(service.attrs["Spec"]) != revision:
                raise EngineError(f"swarm rolled the update of {service.name} back or another update replaced it",
                                  self._failure_logs(service, revision))
            tasks = self._tasks(service)
            new = [task for task in tasks if _task_label(task, LABEL_REVISION) == revision]
            self._raise_if_failing(service, new)
            ready = [task for task in new if _running(task)]
            stale = [task for task in tasks
                     if _task_label(task, LABEL_REVISION) != revision and task["Status"]["State"] in ACTIVE]
            endpoint = self._endpoint(service)
            if endpoint and len(ready) >= _replicas(service.attrs["Spec"]) and not stale and _ready(endpoint):
                return endpoint
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"swarm service {service.name} was not ready in time: {len(ready)} of "
                    f"{_replicas(service.attrs['Spec'])} new tasks running, {len(stale)} old ones left",
                    self._failure_logs(service, revision))
            time.sleep(POLL_SECONDS)

    def _raise_if_failing(self, service: Any, new: list[dict[str, Any]]) -> None:
        update = service.attrs.get("UpdateStatus") or {}
        if update.get("State") == "paused":
            raise EngineError(f"swarm paused the update of {service.name}: {update.get('Message', '')}",
                              self._failure_logs(service, _revision(service.attrs["Spec"])))
        rejected = [task for task in new if task["Status"]["State"] == "rejected"]
        failed = [task for task in new if task["Status"]["State"] in ("failed", "rejected")]
        if rejected or len(failed) >= FAILED_TASKS_LIMIT:
            reason = (rejected or failed)[0]["Status"].get("Err") or "task failed"
            raise EngineError(f"tasks of {service.name} fail: {reason}", self._failure_logs(service,
                                                                                            _revision(service.attrs["Spec"])))
        for task in new:
            answer = self._health_answer(task)
            if answer.get("state") == "failed":
                raise EngineError(f"the service failed to start: {answer.get('message', '')}",
                                  self._failure_logs(service, _revision(service.attrs["Spec"])))

    def _health_answer(self, task: dict[str, Any]) -> dict[str, Any]:
        """What the last health check of a starting task on this node saw on /readyz."""
        container_id = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if task["Status"]["State"] != "starting" or not container_id or not self.local_docker:
            return {}
        try:
            health = self.client.api.inspect_container(container_id)["State"].get("Health") or {}
        except docker.errors.NotFound:
            return {}
        for entry in reversed(health.get("Log") or []):
            try:
                return json.loads((entry.get("Output") or "").strip().splitlines()[0])
            except (ValueError, IndexError):
                continue
        return {}

    def _roll_back(self, service_id: str, previous: dict[str, Any], failed_revision: str) -> None:
        """Put the previous spec back (its tasks still run: updates start new tasks
        first) unless swarm already did, and wait until the failed tasks are gone."""
        try:
            with self._errors(f"cannot roll service {service_id} back"):
                self._change(service_id, lambda current: previous if _revision(current) == failed_revision else None)
                deadline = time.monotonic() + ROLLBACK_SECONDS
                while time.monotonic() < deadline:
                    service = self._service(service_id)
                    if service is None or not any(_task_label(task, LABEL_REVISION) == failed_revision and
                                                  task["Status"]["State"] in ACTIVE for task in self._tasks(service)):
                        return
                    time.sleep(POLL_SECONDS)
            log.warning("tasks of the failed update of %s are still running after the rollback", service_id)
        except EngineError:
            log.exception("rolling service %s back failed", service_id)

    def _failure_logs(self, service: Any, revision: str) -> str:
        """The last log lines of the tasks of ``revision`` (else of the service), with
        swarm's own word on each failed task."""
        tasks = [task for task in _newest_first(self._tasks(service))
                 if _task_label(task, LABEL_REVISION) == revision][:3]
        parts: list[str] = []
        for task in tasks:
            error = task["Status"].get("Err")
            if error:
                parts.append(f"task {task['ID'][:12]}: {task['Status']['State']}: {error}")
            container_id = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
            if container_id and self.local_docker:
                try:
                    parts.append(self.client.api.logs(container_id, tail=LOG_LINES).decode(errors="replace"))
                    break
                except docker.errors.NotFound:
                    continue
        if not any("\n" in part for part in parts):
            with suppress(EngineError), self._errors(f"cannot read the logs of {service.name}"):
                parts.append(b"".join(service.logs(stdout=True, stderr=True, tail=LOG_LINES, follow=False))
                             .decode(errors="replace"))
        return "\n".join(part.rstrip("\n") for part in parts if part)

    # -- removing -----------------------------------------------------------------------

    def _remove(self, service_id: str) -> None:
        for service in self._services(service_id):
            try:
                service.remove()
            except docker.errors.NotFound:
                pass
        deadline = time.monotonic() + REMOVE_SECONDS
        self._await_no_containers(service_id, deadline)
        for container in self._containers(service_id):  # swarm did not in time
            _ignore_missing(lambda: self.client.api.remove_container(container["Id"], force=True))
        while not self._collect_secrets(service_id, keep=None) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def _await_no_containers(self, service_id: str, deadline: float) -> None:
        """Until swarm has stopped and removed the service's containers on this node."""
        while self.local_docker and self._containers(service_id) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def _containers(self, service_id: str) -> list[dict[str, Any]]:
        # the low-level list: the high-level one inspects each container, and these are going away
        return self.client.api.containers(all=True, filters=self._selector(service_id))

    def _collect_secrets(self, service_id: str, keep: str | None) -> bool:
        """Remove the service's key secrets but ``keep``; False while some are in use."""
        done = True
        for secret in self.client.secrets.list(filters=self._selector(service_id)):
            if secret.name == keep:
                continue
            try:
                secret.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "in use" not in explain(exc):
                    raise
                done = False
        return done

    # -- the pieces ---------------------------------------------------------------------

    def _keys_secret(self, service_id: str, key_hashes: tuple[str, ...], labels: dict[str, str]) -> Any:
        name = _secret_name(service_id, key_hashes)
        for secret in self.client.secrets.list(filters={"name": name}):
            if secret.name == name:
                return secret
        content = "".join(f"{digest}\n" for digest in key_hashes).encode()
        try:
            secret = self.client.secrets.create(name=name, data=content, labels={**labels, LABEL_ROLE: KEYS})
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            return self.client.secrets.get(name)  # created by a concurrent call
        return self.client.secrets.get(secret.id)

    def _create_service(self, body: dict[str, Any]) -> None:
        self.client.api.create_service(
            task_template=body["TaskTemplate"], name=body["Name"], labels=body["Labels"], mode=body["Mode"],
            update_config=body["UpdateConfig"], rollback_config=body["RollbackConfig"],
            endpoint_spec=body["EndpointSpec"])

    def _change(self, service_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
        """Update the service to ``change(its spec)``; retried when another update came
        between reading and writing. False when there is no such service."""
        for attempt in range(6):
            services = self._services(service_id)
            if not services:
                return False
            service = services[0]
            spec = change(copy.deepcopy(service.attrs["Spec"]))
            if spec is None:
                return True
            try:
                self.client.api.update_service(
                    service.id, service.attrs["Version"]["Index"], task_template=spec["TaskTemplate"],
                    name=spec["Name"], labels=spec.get("Labels"), mode=spec.get("Mode"),
                    update_config=spec.get("UpdateConfig"), rollback_config=spec.get("RollbackConfig"),
                    endpoint_spec=spec.get("EndpointSpec"))
                return True
            except docker.errors.APIError as exc:
                if "out of sequence" not in explain(exc) or attempt == 5:
                    raise
                time.sleep(0.1)
        return True

    def _image(self, reference: str) -> str:
        """A reference swarm will not try to pull when the image is already here."""
        try:
            image = self.client.images.get(reference)
        except docker.errors.ImageNotFound:
            return reference  # the nodes pull it from its registry
        name = reference.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        digests = image.attrs.get("RepoDigests") or []
        matching = [digest for digest in digests if digest.split("@", 1)[0] == name] or digests
        if matching:
            return matching[0]
        if (self.client.info().get("Swarm") or {}).get("Nodes", 1) == 1:
            return image.id
        log.warning("image %s has no registry digest: nodes without it cannot run its tasks", reference)
        return reference

    def _endpoint(self, service: Any) -> Endpoint | None:
        labels = service.attrs["Spec"].get("Labels") or {}
        if labels.get(LABEL_PUBLISH) == PUBLISH_HOST:
            return Endpoint(self.host, int(labels[LABEL_PORT])) if labels.get(LABEL_PORT) else None
        for port in (service.attrs.get("Endpoint") or {}).get("Ports") or []:
            if port.get("TargetPort") == CONTAINER_PORT and port.get("PublishedPort"):
                return Endpoint(self.host, int(port["PublishedPort"]))
        return None

    def _port_for_new(self, wanted: int | None) -> int | None:
        """Ingress: the wanted port or None (swarm picks one). Host: a free port, the
        wanted one when it is free."""
        if self.publish == PUBLISH_INGRESS:
            return wanted
        if wanted and (not self.local_docker or _port_free(self._bind_address(), wanted)):
            return wanted
        if self.local_docker:
            with socket.socket() as probe:
                probe.bind((self._bind_address(), 0))
                return int(probe.getsockname()[1])
        services = self.client.services.list(filters={"label": LABEL_SERVICE})
        taken = {endpoint.port for endpoint in map(self._endpoint, services) if endpoint}
        return next(port for port in range(30000, 32768) if port not in taken)

    def _bind_address(self) -> str:
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        return "127.0.0.1" if loopback else "0.0.0.0"

    def _service(self, service_id: str) -> Any:
        services = self._services(service_id)
        return services[0] if services else None

    def _services(self, service_id: str) -> list[Any]:
        return self.client.services.list(filters=self._selector(service_id))

    def _selector(self, service_id: str) -> dict[str, list[str]]:
        return {"label": [f"{LABEL_SERVICE}={service_id}", f"{LABEL_INSTALLATION}={self.installation}"]}

    def _labels(self, spec: ServiceSpec) -> dict[str, str]:
        return {**spec.labels, LABEL_SERVICE: spec.service_id, LABEL_INSTALLATION: self.installation}

    def _tasks(self, service: Any) -> list[dict[str, Any]]:
        return self.client.api.tasks(filters={"service": service.id})

    @staticmethod
    def _errors(action: str) -> Any:
        return docker_errors(f"swarm engine: {action}")

    def _lock(self, service_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(service_id, threading.Lock())


def _secret_name(service_id: str, key_hashes: Iterable[str]) -> str:
    digest = hashlib.sha256("".join(f"{h}\n" for h in key_hashes).encode()).hexdigest()
    return f"moma-keys-{service_id[:36]}-{digest[:12]}"


def _secret_reference(secret: Any) -> dict[str, Any]:
    return dict(types.SecretReference(secret.id, secret.name, filename=KEYS_FILE, uid=RUNTIME_UID, gid=RUNTIME_UID,
                                      mode=0o444))


def _secret_labels(labels: dict[str, str]) -> dict[str, str]:
    internal = (LABEL_REVISION, LABEL_GENERATION, LABEL_ROLE, LABEL_SPEC_HASH, LABEL_PUBLISH, LABEL_PORT, LABEL_IMAGE)
    return {key: value for key, value in labels.items() if key not in internal}


def _keys_secret_name(spec: dict[str, Any]) -> str | None:
    for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []:
        if (ref.get("File") or {}).get("Name") == KEYS_FILE:
            return ref.get("SecretName")
    return None


def _new_revision() -> str:
    return uuid.uuid4().hex[:12]


def _revision(spec: dict[str, Any]) -> str:
    return (spec["TaskTemplate"]["ContainerSpec"].get("Labels") or {}).get(LABEL_REVISION, "")


def _replicas(spec: dict[str, Any]) -> int:
    return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0))


def _task_label(task: dict[str, Any], key: str) -> str | None:
    return ((task.get("Spec") or {}).get("ContainerSpec", {}).get("Labels") or {}).get(key)


def _running(task: dict[str, Any]) -> bool:
    return task["Status"]["State"] == "running" and task.get("DesiredState") == "running"


def _newest_first(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(tasks, key=lambda task: task.get("UpdatedAt") or "", reverse=True)


def _ready(endpoint: Endpoint) -> bool:
    try:
        return requests.get(f"{endpoint.base_url}/readyz", timeout=5, headers={"Connection": "close"}).status_code == 200
    except requests.RequestException:
        return False


def _port_free(address: str, port: int) -> bool:
    """Whether a listener could bind the port; connections of a stopped replica left in
    TIME_WAIT do not count (the runtime binds with SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return None


def _kernel_has_ipvs() -> bool | None:
    """Whether this machine's kernel has IPVS (None: cannot tell)."""
    if Path("/proc/net/ip_vs").exists():
        return True
    if (Path("/lib/modules") / os.uname().release / "kernel/net/netfilter/ipvs").is_dir():
        return True
    try:
        with gzip.open("/proc/config.gz", "rt") as config:
            text = config.read()
    except OSError:
        return None
    if re.search(r"^CONFIG_IP_VS=[ym]$", text, re.MULTILINE):
        return True
    return False if "# CONFIG_IP_VS is not set" in text else None


def _ignore_missing(action: Callable[[], Any]) -> None:
    try:
        action()
    except docker.errors.NotFound:
        pass

