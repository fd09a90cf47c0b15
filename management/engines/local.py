"""The ``local`` engine: a service is containers on one Docker engine.

Each service has a small *port holder* container that owns a network namespace and
the published port (bound to 127.0.0.1 by default). Scoring containers join that
namespace and listen on the contract's port (5001) with SO_REUSEPORT, so during an
update the old and the new container both accept connections on the same port (the
kernel spreads them, no proxy of ours), and the old one is stopped only once the new one answers ``/readyz``
as ready. The scoring URI therefore never changes. The holder's namespace sets
``net.ipv4.tcp_migrate_req=1`` (Linux >= 5.14): connections still queued on the old
container's listening socket when it closes move to the new one instead of being
reset (without it a busy service lost a few requests per update). Containers run as the image's
non-root user, with all capabilities dropped, no-new-privileges, a read-only root
file system, a tmpfs at /tmp and the key-hash directory mounted read-only; a service that
collects model data to the local sink gets its data directory mounted read-write. Each has
the engine's :class:`Limits`: a pids limit, and a memory limit when the service sets none.
Containers run the image by its id, resolved from the service's image reference when it
is deployed (``moma.image`` keeps the reference): a tag moved later changes nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import docker
import docker.errors

from runtime import contract

from . import (
    LABEL_GENERATION,
    LABEL_IMAGE,
    LABEL_INSTALLATION,
    LABEL_ROLE,
    LABEL_SERVICE,
    Endpoint,
    EngineError,
    EngineStatus,
    Limits,
    Workload,
    keys_dir,
)
from .clients import WORKER_TIMEOUT
from .docker_errors import docker_errors, explain
from .docker_host import MIGRATE_SYSCTL, STOP_SECONDS, TMP_BYTES, connect, readyz, sysctl
from .environment import Placement, container_environment

CONTAINER_PORT = f"{contract.PORT}/tcp"
HOLDER, SCORING = "port-holder", "scoring"
HOLDER_PIDS = 16
LOG_LINES = 30


class LocalEngine:
    def __init__(self, client: docker.DockerClient, services_dir: Path, host: str = "127.0.0.1",
                 installation: str = "default", migrate_connections: bool | None = None,
                 limits: Limits = Limits()) -> None:
        self.client = client
        self.limits = limits
        self.services_dir = services_dir
        self.host = host
        self.installation = installation
        if migrate_connections is None:  # the engine's kernel, when it is this machine's
            migrate_connections = sysctl(MIGRATE_SYSCTL) is not None
        self.migrate_connections = migrate_connections

    @classmethod
    def from_env(cls, services_dir: Path, host: str = "127.0.0.1", docker_host: str = "",
                 installation: str = "default", limits: Limits = Limits(), tls: Mapping[str, Any] | None = None,
                 timeout: float = WORKER_TIMEOUT) -> "LocalEngine":
        """The engine of the Docker host ``docker_host`` (see :func:`docker_client`)."""
        connected = connect(docker_host, tls, timeout)
        with docker_errors(f"local engine at {connected.name}"):
            connected.client.ping()
        return cls(connected.client, services_dir, host, installation,
                   migrate_connections=None if connected.local else False, limits=limits)

    def deploy(self, workload: Workload) -> Endpoint:
        if workload.replicas != 1:
            raise EngineError("the local engine runs one container per service; use a swarm compute for replicas")
        self.set_keys(workload.service_id, workload.key_hashes, workload.generation)
        with self._errors(f"cannot deploy service {workload.service_id}"):
            workload = replace(workload, image=self.client.images.get(workload.image).id,
                               labels={**workload.labels, LABEL_IMAGE: workload.image})
            holder = self._holder(workload)
            endpoint = Endpoint(self.host, self._published_port(holder))
            previous = [c for c in self._scoring(workload.service_id)]
            for container in previous:
                if container.labels.get(LABEL_GENERATION) == str(workload.generation):
                    container.remove(force=True)  # a retry of this generation: start it clean
            previous = [c for c in previous if c.labels.get(LABEL_GENERATION) != str(workload.generation)]
            new = self._start(workload, holder)
            try:
                self._wait_ready(new, workload, endpoint)
            except EngineError:
                new.remove(force=True)
                raise
            for container in previous:
                _stop_and_remove(container)
        return endpoint

    def remove(self, service_id: str) -> None:
        with self._errors(f"cannot remove service {service_id}"):
            for container in self._scoring(service_id) + self._by_role(service_id, HOLDER):
                _force_remove(container)
        shutil.rmtree(keys_dir(self.services_dir, service_id).parent, ignore_errors=True)

    def status(self, service_id: str) -> EngineStatus:
        with self._errors(f"cannot read the state of service {service_id}"):
            holders = self._by_role(service_id, HOLDER)
            scoring = self._scoring(service_id)
            if not holders and not scoring:
                return EngineStatus(present=False)
            running = [c for c in scoring if c.status == "running"]
            generations = [int(c.labels.get(LABEL_GENERATION, 0)) for c in running]
            holder = holders[0] if holders else None
            endpoint = None
            if holder is not None and holder.status == "running":
                endpoint = Endpoint(self.host, self._published_port(holder))
        return EngineStatus(present=True, running=len(running), desired=1,
                            generation=max(generations) if generations else None, endpoint=endpoint,
                            message="" if holder is not None else "the port holder container is missing")

    def logs(self, service_id: str, tail: int = 50) -> str:
        with self._errors(f"cannot read the logs of service {service_id}"):
            containers = sorted(self._scoring(service_id), key=lambda c: int(c.labels.get(LABEL_GENERATION, 0)))
            if not containers:
                return ""
            return containers[-1].logs(tail=tail).decode(errors="replace")

    def close(self) -> None:
        self.client.close()

    def scale(self, service_id: str, replicas: int) -> None:
        if replicas != 1:
            raise EngineError("the local engine runs one container per service; use a swarm compute for replicas")

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...], generation: int) -> None:
        """Rewrite the key file by rename inside the mounted directory: the runtime sees
        the new keys within its check interval, without a restart."""
        directory = keys_dir(self.services_dir, service_id)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        handle, temp = tempfile.mkstemp(dir=directory, prefix=".keys-")
        with os.fdopen(handle, "w") as out:
            out.write("".join(f"{digest}\n" for digest in key_hashes))
        os.chmod(temp, 0o644)
        os.replace(temp, directory / Path(contract.KEYS_FILE).name)

    def service_ids(self) -> set[str]:
        with self._errors("cannot list the services"):
            containers = self.client.api.containers(all=True, filters={"label": [
                LABEL_SERVICE, f"{LABEL_INSTALLATION}={self.installation}"]})
        return {c["Labels"][LABEL_SERVICE] for c in containers}

    def _holder(self, workload: Workload) -> Any:
        holders = self._by_role(workload.service_id, HOLDER)
        if holders:
            holder = holders[0]
            if holder.status != "running":
                holder.start()
                holder.reload()
                for container in self._scoring(workload.service_id):  # their namespace went with the old holder
                    container.remove(force=True)
            return holder
        return self._create_holder(workload)

    def _create_holder(self, workload: Workload) -> Any:
        options: dict[str, Any] = dict(
            name=f"{workload.name}-net", detach=True, labels=self._labels(workload, HOLDER),
            command=["python", "-c", "import signal; signal.pause()"], restart_policy={"Name": "unless-stopped"},
            read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"], mem_limit=32 * 1024 * 1024,
            pids_limit=HOLDER_PIDS,
            sysctls={MIGRATE_SYSCTL: "1"} if self.migrate_connections else None,
            healthcheck={"test": ["NONE"]},
        )
        for port in ([workload.port, None] if workload.port else [None]):
            try:
                return self.client.containers.run(workload.image, ports={CONTAINER_PORT: (self.host, port)},
                                                  **options)
            except docker.errors.APIError as exc:
                if port is None or "allocated" not in explain(exc):
                    raise
                self.client.containers.get(options["name"]).remove(force=True)
        raise EngineError("could not publish a port")  # unreachable: the last attempt raises

    def _start(self, workload: Workload, holder: Any) -> Any:
        placement = Placement(instance=workload.instance, instance_id=workload.instance_id, reuse_port=True,
                              local_sink=workload.data_dir is not None)
        volumes = {str(keys_dir(self.services_dir, workload.service_id)): {"bind": contract.KEYS_MOUNT, "mode": "ro"}}
        if workload.data_dir is not None:
            volumes[str(_shared_data_dir(workload.data_dir))] = {"bind": contract.DATA_MOUNT, "mode": "rw"}
        options: dict[str, Any] = dict(
            name=workload.instance, detach=True, network_mode=f"container:{holder.id}",
            environment=container_environment(workload.env, placement), labels=self._labels(workload, SCORING),
            volumes=volumes, restart_policy={"Name": "unless-stopped"}, read_only=True,
            tmpfs={"/tmp": f"rw,size={TMP_BYTES}"}, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            pids_limit=self.limits.pids,
        )
        if self.limits.memory_for(workload):
            options["mem_limit"] = self.limits.memory_for(workload)
        if workload.cpu:
            options["nano_cpus"] = int(workload.cpu * 1e9)
        return self.client.containers.run(workload.image, **options)

    def _wait_ready(self, container: Any, workload: Workload, endpoint: Endpoint) -> None:
        """Until the new instance itself says ready. New connections land on the old or
        the new container, so ask with fresh connections until the new one answers."""
        deadline = time.monotonic() + workload.ready_seconds
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                raise EngineError(f"container {container.name} stopped while starting", _logs(container))
            answer = readyz(endpoint, timeout=min(10.0, max(0.5, deadline - time.monotonic()))).answer
            if answer.get("instance") in (workload.instance_id, workload.instance):  # (older images: the name)
                if answer.get("state") == "ready":
                    return
                if answer.get("state") == "failed":
                    raise EngineError(f"the service failed to start: {answer.get('message', '')}", _logs(container))
            time.sleep(0.2)
        raise EngineError(f"container {container.name} was not ready within {workload.ready_seconds:.0f} s",
                          _logs(container))

    def _labels(self, workload: Workload, role: str) -> dict[str, str]:
        return {**workload.labels, LABEL_SERVICE: workload.service_id, LABEL_GENERATION: str(workload.generation),
                LABEL_ROLE: role, LABEL_INSTALLATION: self.installation}

    def _by_role(self, service_id: str, role: str) -> list[Any]:
        """The containers of a role; one removed while they are listed is left out."""
        return self.client.containers.list(all=True, ignore_removed=True, filters={"label": [
            f"{LABEL_SERVICE}={service_id}", f"{LABEL_ROLE}={role}"]})

    @staticmethod
    def _errors(action: str) -> AbstractContextManager[None]:
        return docker_errors(f"local engine: {action}")

    def _scoring(self, service_id: str) -> list[Any]:
        return self._by_role(service_id, SCORING)

    @staticmethod
    def _published_port(holder: Any) -> int:
        holder.reload()
        bindings = holder.attrs["NetworkSettings"]["Ports"].get(CONTAINER_PORT) or []
        if not bindings:
            raise EngineError(f"{holder.name} publishes no port")
        return int(bindings[0]["HostPort"])


def _logs(container: Any) -> str:
    return container.logs(tail=LOG_LINES).decode(errors="replace")


def _shared_data_dir(directory: Path) -> Path:
    """The container's user (the contract's uid) writes there and the host user reads and deletes
    what it wrote: mode 0777, as the runtime makes every directory below it."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o777)
    return directory


def _stop_and_remove(container: Any) -> None:
    try:
        container.stop(timeout=STOP_SECONDS)
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def _force_remove(container: Any, wait_seconds: float = STOP_SECONDS) -> None:
    """Remove a container, also when another party (the reconciler, a second delete)
    removes it at the same time: Docker then answers 409 and this waits until it is gone."""
    try:
        container.remove(force=True)
        return
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    container.remove(force=True)

