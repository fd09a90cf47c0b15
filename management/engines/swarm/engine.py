"""The swarm engine's operations on the Docker host: deploy (create the service, or roll
it to a new definition, wait until swarm has converged, put the previous definition
back when the new one fails), remove, status, logs, scale and keys. What each promises
is in the package's docstring; the definitions come from ``definition.py``."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import AbstractContextManager, suppress
from typing import Any, Callable, Mapping

import docker
import docker.errors

from .. import (
    LABEL_INSTALLATION,
    LABEL_SERVICE,
    Endpoint,
    EngineError,
    EngineStatus,
    EngineUnavailable,
    Limits,
    Workload,
)
from ..clients import WORKER_TIMEOUT
from ..docker_errors import docker_errors, explain
from ..docker_host import STOP_SECONDS, connect, readyz
from .definition import (
    PUBLISH_HOST,
    PUBLISH_INGRESS,
    Definition,
    KeysSecret,
    SwarmSettings,
    service_definition,
    workload_labels,
)
from .key_secrets import KeySecrets, secret_name
from .models import SwarmService, Task, newest_first
from .publishing import AUTO, bind_address, choose_publish, free_port, port_free

log = logging.getLogger("moma.engines")

POLL_SECONDS = 0.25
REMOVE_SECONDS = STOP_SECONDS + 15
ROLLBACK_SECONDS = 60.0
FAILED_TASKS_LIMIT = 3  # new tasks that may fail before the deploy gives up
LOG_LINES = 30
UPDATE_ATTEMPTS = 6  # an update swarm refuses as out of sequence is read and made again
HOST_PORTS = range(30000, 32768)  # host mode on a remote swarm: ports to publish on

Change = Callable[[Definition], Mapping[str, Any] | None]


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
        self.secrets = KeySecrets(client, self._selector)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_env(cls, scoring_host: str, docker_host: str = "", installation: str = "default",
                 publish: str = AUTO, limits: Limits = Limits(), tls: Mapping[str, Any] | None = None,
                 timeout: float = WORKER_TIMEOUT) -> "SwarmEngine":
        """The engine for the swarm whose manager ``docker_host`` (default: the local
        engine; see :func:`docker_client`) is; EngineUnavailable when it is not a swarm manager."""
        host = connect(docker_host, tls, timeout)
        with docker_errors(f"swarm engine at {host.name}"):
            swarm = host.client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            where = docker_host or "the local Docker engine"
            raise EngineUnavailable(
                f"{where} is not a swarm manager (swarm state: {swarm.get('LocalNodeState') or 'unknown'}); run "
                "`docker swarm init` on it, or point the compute at a manager node of the swarm")
        return cls(host.client, scoring_host, installation, publish=choose_publish(publish, host.local),
                   local_docker=host.local, limits=limits)

    @property
    def settings(self) -> SwarmSettings:
        return SwarmSettings(self.installation, self.publish, bind_address(self.host), self.health_interval,
                             self.limits)

    # -- the Engine protocol ------------------------------------------------------------

    def deploy(self, workload: Workload) -> Endpoint:
        with self._lock(workload.service_id), self._errors(f"cannot deploy service {workload.service_id}"):
            deadline = time.monotonic() + workload.ready_seconds
            keys = self.secrets.ensure(workload.service_id, workload.key_hashes,
                                       workload_labels(workload, self.installation))
            image = self._image(workload.image)
            service = self._service(workload.service_id)
            if service is None:
                return self._create(workload, image, keys, deadline)
            return self._update(workload, service, image, keys, deadline)

    def remove(self, service_id: str) -> None:
        with self._lock(service_id), self._errors(f"cannot remove service {service_id}"):
            self._remove(service_id)

    def status(self, service_id: str) -> EngineStatus:
        with self._errors(f"cannot read the state of service {service_id}"):
            service = self._service(service_id)
            if service is None:
                return EngineStatus(present=False)
            tasks = self._tasks(service)
        definition = service.definition
        running = [task for task in tasks if task.running]
        generations = [task.generation for task in running]
        if any(task.revision == definition.revision for task in running):
            generations.append(definition.generation)  # a generation that only scaled keeps its tasks: see _update
        message = service.update_message if service.update_state not in (None, "completed") else ""
        if len(running) < definition.replicas:
            errors = [task.error for task in newest_first(tasks) if task.error]
            message = message or (errors[0] if errors else "")
        return EngineStatus(present=True, running=len(running), desired=definition.replicas,
                            generation=max(generations) if generations else None, endpoint=self._endpoint(service),
                            message=message)

    def logs(self, service_id: str, tail: int = 50) -> str:
        with self._errors(f"cannot read the logs of service {service_id}"):
            service = self._service(service_id)
            return "" if service is None else service.logs(tail)

    def close(self) -> None:
        self.client.close()

    def scale(self, service_id: str, replicas: int) -> None:
        """Change the number of replicas and nothing else; returns once swarm has the
        new number (``status().running`` follows as tasks start or stop)."""
        if replicas < 1:
            raise EngineError(f"a service needs at least one replica, not {replicas}; delete it instead")
        with self._errors(f"cannot scale service {service_id}"):
            if not self._change(service_id, lambda current: None if current.replicas == replicas
                                else current.with_replicas(replicas)):
                raise EngineError(f"no swarm service runs service {service_id}")

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...], generation: int) -> None:
        """Mount a secret with exactly these key hashes, by a rolling update; nothing
        happens when the service already mounts them (or does not exist yet: deploy
        creates the secret with the service)."""
        with self._lock(service_id), self._errors(f"cannot change the keys of {service_id}"):
            service = self._service(service_id)
            if service is None or service.definition.keys_secret == secret_name(service_id, key_hashes):
                return
            keys = self.secrets.ensure(service_id, key_hashes, service.definition.container_labels)
            revision = _new_revision()
            self._change(service_id, lambda current: current.with_keys(keys, revision))
            self._converge(service_id, revision, time.monotonic() + self.keys_seconds)
            self.secrets.collect(service_id, keep=keys.name)

    def service_ids(self) -> set[str]:
        """Services this engine runs for moma, and those whose key secrets are left."""
        with self._errors("cannot list the services"):
            mine = {"label": [LABEL_SERVICE, f"{LABEL_INSTALLATION}={self.installation}"]}
            services = {SwarmService(model).definition.service_id for model in self.client.services.list(filters=mine)}
            return services | self.secrets.service_ids(mine)

    # -- deploying ----------------------------------------------------------------------

    def _create(self, workload: Workload, image: str, keys: KeysSecret, deadline: float) -> Endpoint:
        if self.publish == PUBLISH_HOST:  # tasks of a service removed behind our back may still hold its port
            self._await_no_containers(workload.service_id, min(deadline, time.monotonic() + REMOVE_SECONDS))
        revision = _new_revision()
        definition = self._definition(workload, image, keys, self._port_for_new(workload.port), revision)
        try:
            self.client.api.create_service(**_api_arguments(definition))
        except docker.errors.APIError as exc:
            if not workload.port or "in use" not in explain(exc):
                raise
            log.warning("port %s of service %s is taken; publishing on another one", workload.port,
                        workload.service_id)
            definition = self._definition(workload, image, keys, self._port_for_new(None), revision)
            self.client.api.create_service(**_api_arguments(definition))
        try:
            return self._converge(workload.service_id, revision, deadline)
        except EngineError:
            self._remove(workload.service_id)  # it never served: leave nothing behind
            raise

    def _update(self, workload: Workload, service: SwarmService, image: str, keys: KeysSecret,
                deadline: float) -> Endpoint:
        previous = service.definition
        endpoint = self._endpoint(service)
        revision = _new_revision()
        definition = self._definition(workload, image, keys, endpoint.port if endpoint else
                                      self._port_for_new(workload.port), revision)
        if Definition(definition).hash == previous.hash and previous.keys_secret == keys.name:
            # nothing new to run: a new generation that changes only the replicas keeps the tasks
            if previous.replicas != workload.replicas or previous.generation != workload.generation:
                self._change(workload.service_id,
                             lambda current: current.with_replicas(workload.replicas, workload.generation))
            return self._converge(workload.service_id, previous.revision, deadline)
        self._change(workload.service_id, lambda current: definition)
        try:
            endpoint = self._converge(workload.service_id, revision, deadline)
        except EngineError:
            self._roll_back(workload.service_id, previous.raw, revision)
            raise
        self.secrets.collect(workload.service_id, keep=keys.name)
        return endpoint

    def _definition(self, workload: Workload, image: str, keys: KeysSecret, port: int | None,
                    revision: str) -> dict[str, Any]:
        return service_definition(workload, self.settings, image=image, port=port, keys=keys, revision=revision)

    def _converge(self, service_id: str, revision: str, deadline: float) -> Endpoint:
        """Wait until every running task is of ``revision``, as many as desired, none of
        another revision still runs, and /readyz answers through the published port."""
        while True:
            service = self._service(service_id)
            if service is None:
                raise EngineError(f"the swarm service of {service_id} disappeared while it was being deployed")
            if service.definition.revision != revision:
                raise EngineError(f"swarm rolled the update of {service.name} back or another update replaced it",
                                  self._failure_logs(service, revision))
            tasks = self._tasks(service)
            new = [task for task in tasks if task.revision == revision]
            self._raise_if_failing(service, new)
            ready = [task for task in new if task.running]
            stale = [task for task in tasks if task.revision != revision and task.active]
            endpoint = self._endpoint(service)
            replicas = service.definition.replicas
            if endpoint and len(ready) >= replicas and not stale and readyz(endpoint).ready:
                return endpoint
            if time.monotonic() >= deadline:
                raise EngineError(f"swarm service {service.name} was not ready in time: {len(ready)} of {replicas} "
                                  f"new tasks running, {len(stale)} old ones left",
                                  self._failure_logs(service, revision))
            time.sleep(POLL_SECONDS)

    def _raise_if_failing(self, service: SwarmService, new: list[Task]) -> None:
        revision = service.definition.revision
        if service.update_state == "paused":
            raise EngineError(f"swarm paused the update of {service.name}: {service.update_message}",
                              self._failure_logs(service, revision))
        rejected = [task for task in new if task.state == "rejected"]
        failed = [task for task in new if task.state in ("failed", "rejected")]
        if rejected or len(failed) >= FAILED_TASKS_LIMIT:
            reason = (rejected or failed)[0].error or "task failed"
            raise EngineError(f"tasks of {service.name} fail: {reason}", self._failure_logs(service, revision))
        for task in new:
            answer = self._health_answer(task)
            if answer.get("state") == "failed":
                raise EngineError(f"the service failed to start: {answer.get('message', '')}",
                                  self._failure_logs(service, revision))

    def _health_answer(self, task: Task) -> dict[str, Any]:
        """What the last health check of a starting task on this node saw on /readyz
        (``runtime.healthcheck`` prints it)."""
        if task.state != "starting" or not task.container_id or not self.local_docker:
            return {}
        try:
            health = self.client.api.inspect_container(task.container_id)["State"].get("Health") or {}
        except docker.errors.NotFound:
            return {}
        for entry in reversed(health.get("Log") or []):
            try:
                answer = json.loads((entry.get("Output") or "").strip().splitlines()[0])
            except (ValueError, IndexError):
                continue
            if isinstance(answer, dict):
                return answer
        return {}

    def _roll_back(self, service_id: str, previous: Mapping[str, Any], failed_revision: str) -> None:
        """Put the previous definition back (its tasks still run: updates start new tasks
        first) unless swarm already did, and wait until the failed tasks are gone."""
        try:
            with self._errors(f"cannot roll service {service_id} back"):
                self._change(service_id, lambda current: previous if current.revision == failed_revision else None)
                deadline = time.monotonic() + ROLLBACK_SECONDS
                while time.monotonic() < deadline:
                    service = self._service(service_id)
                    if service is None or not any(task.revision == failed_revision and task.active
                                                  for task in self._tasks(service)):
                        return
                    time.sleep(POLL_SECONDS)
            log.warning("tasks of the failed update of %s are still running after the rollback", service_id)
        except EngineError:
            log.exception("rolling service %s back failed", service_id)

    def _failure_logs(self, service: SwarmService, revision: str) -> str:
        """The last log lines of the tasks of ``revision`` (else of the service), with
        swarm's own word on each failed task."""
        tasks = [task for task in newest_first(self._tasks(service)) if task.revision == revision][:3]
        parts: list[str] = []
        for task in tasks:
            if task.error:
                parts.append(f"task {task.id[:12]}: {task.state}: {task.error}")
            if task.container_id and self.local_docker:
                try:
                    parts.append(self.client.api.logs(task.container_id, tail=LOG_LINES).decode(errors="replace"))
                    break
                except docker.errors.NotFound:
                    continue
        if not any("\n" in part for part in parts):
            with suppress(EngineError), self._errors(f"cannot read the logs of {service.name}"):
                parts.append(service.logs(LOG_LINES))
        return "\n".join(part.rstrip("\n") for part in parts if part)

    # -- removing -----------------------------------------------------------------------

    def _remove(self, service_id: str) -> None:
        for service in self._services(service_id):
            _ignore_missing(service.model.remove)
        deadline = time.monotonic() + REMOVE_SECONDS
        self._await_no_containers(service_id, deadline)
        for container in self._containers(service_id):  # swarm did not in time
            _ignore_missing(self.client.api.remove_container, container["Id"], force=True)
        while not self.secrets.collect(service_id, keep=None) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def _await_no_containers(self, service_id: str, deadline: float) -> None:
        """Until swarm has stopped and removed the service's containers on this node."""
        while self.local_docker and self._containers(service_id) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def _containers(self, service_id: str) -> list[dict[str, Any]]:
        # the low-level list: the high-level one inspects each container, and these are going away
        return self.client.api.containers(all=True, filters=self._selector(service_id))

    # -- the pieces ---------------------------------------------------------------------

    def _change(self, service_id: str, change: Change) -> bool:
        """Update the service to ``change(its definition)`` (None: leave it); made again
        when another update came between reading and writing. False when there is no
        such service."""
        for attempt in range(UPDATE_ATTEMPTS):
            service = self._service(service_id)
            if service is None:
                return False
            definition = change(service.definition)
            if definition is None:
                return True
            try:
                self.client.api.update_service(service.id, service.version, **_api_arguments(definition))
                return True
            except docker.errors.APIError as exc:
                if "out of sequence" not in explain(exc) or attempt == UPDATE_ATTEMPTS - 1:
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

    def _endpoint(self, service: SwarmService) -> Endpoint | None:
        definition = service.definition
        port = definition.host_port if definition.host_mode else service.published_port
        return Endpoint(self.host, port) if port else None

    def _port_for_new(self, wanted: int | None) -> int | None:
        """Ingress: the wanted port or None (swarm picks one). Host: a free port, the
        wanted one when it is free."""
        if self.publish == PUBLISH_INGRESS:
            return wanted
        address = bind_address(self.host)
        if wanted and (not self.local_docker or port_free(address, wanted)):
            return wanted
        if self.local_docker:
            return free_port(address)
        services = self.client.services.list(filters={"label": LABEL_SERVICE})
        taken = {endpoint.port for endpoint in (self._endpoint(SwarmService(model)) for model in services) if endpoint}
        return next(port for port in HOST_PORTS if port not in taken)

    def _service(self, service_id: str) -> SwarmService | None:
        services = self._services(service_id)
        return services[0] if services else None

    def _services(self, service_id: str) -> list[SwarmService]:
        return [SwarmService(model) for model in self.client.services.list(filters=self._selector(service_id))]

    def _tasks(self, service: SwarmService) -> list[Task]:
        return [Task(raw) for raw in self.client.api.tasks(filters={"service": service.id})]

    def _selector(self, service_id: str) -> dict[str, list[str]]:
        return {"label": [f"{LABEL_SERVICE}={service_id}", f"{LABEL_INSTALLATION}={self.installation}"]}

    @staticmethod
    def _errors(action: str) -> AbstractContextManager[None]:
        return docker_errors(f"swarm engine: {action}")

    def _lock(self, service_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(service_id, threading.Lock())


def _api_arguments(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition as the SDK's create_service and update_service take it."""
    return dict(task_template=definition["TaskTemplate"], name=definition["Name"], labels=definition.get("Labels"),
                mode=definition.get("Mode"), update_config=definition.get("UpdateConfig"),
                rollback_config=definition.get("RollbackConfig"), endpoint_spec=definition.get("EndpointSpec"))


def _new_revision() -> str:
    return uuid.uuid4().hex[:12]


def _ignore_missing(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        action(*args, **kwargs)
    except docker.errors.NotFound:
        pass
