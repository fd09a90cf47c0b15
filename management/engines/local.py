"""The ``local`` engine: a service is containers on one Docker engine.

Each service has a small *port holder* container that owns a network namespace and
the published port (bound to 127.0.0.1 by default). Scoring containers join that
namespace and listen on 5001 with SO_REUSEPORT, so during an update the old and the
new container both accept connections on the same port (the kernel spreads them, no
proxy of ours), and the old one is stopped only once the new one answers ``/readyz``
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
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import docker
import docker.errors
import requests

from . import (DATA_MOUNT, KEYS_FILE, KEYS_MOUNT, LABEL_GENERATION, LABEL_IMAGE, LABEL_INSTALLATION, LABEL_ROLE,
               LABEL_SERVICE, Endpoint, EngineError, EngineStatus, Limits, ServiceSpec, keys_dir)
from .clients import WORKER_TIMEOUT, docker_client, on_this_machine
from .docker_errors import docker_errors, explain

CONTAINER_PORT = "5001/tcp"
HOLDER, SCORING = "port-holder", "scoring"
HOLDER_PIDS = 16
STOP_SECONDS = 35  # longer than the runtime's graceful shutdown
MIGRATE_SYSCTL = "net.ipv4.tcp_migrate_req"


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
            migrate_connections = Path("/proc/sys", *MIGRATE_SYSCTL.split(".")).exists()
        self.migrate_connections = migrate_connections

    @classmethod
    def from_env(cls, services_dir: Path, host: str = "127.0.0.1", docker_host: str = "",
                 installation: str = "default", limits: Limits = Limits(), tls: Mapping[str, Any] | None = None,
                 timeout: float = WORKER_TIMEOUT) -> "LocalEngine":
        """The engine of the Docker host ``docker_host`` (see :func:`docker_client`)."""
        client = docker_client(docker_host, tls, timeout)
        with docker_errors(f"local engine at {docker_host or 'the local socket'}"):
            client.ping()
        return cls(client, services_dir, host, installation,
                   migrate_connections=None if on_this_machine(docker_host) else False, limits=limits)

    def deploy(self, spec: ServiceSpec) -> Endpoint:
        if spec.replicas != 1:
            raise EngineError("the local engine runs one container per service; use a swarm compute for replicas")
        self.set_keys(spec.service_id, spec.key_hashes, spec.generation)
        with self._errors(f"cannot deploy service {spec.service_id}"):
            spec = replace(spec, image=self.client.images.get(spec.image).id,
                           labels={**spec.labels, LABEL_IMAGE: spec.image})
            holder = self._holder(spec)
            endpoint = Endpoint(self.host, self._published_port(holder))
            previous = [c for c in self._scoring(spec.service_id)]
            for container in previous:
                if container.labels.get(LABEL_GENERATION) == str(spec.generation):
                    container.remove(force=True)  # a retry of this generation: start it clean
            previous = [c for c in previous if c.labels.get(LABEL_GENERATION) != str(spec.generation)]
            new = self._start(spec, holder)
            try:
                self._wait_ready(new, spec, endpoint)
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
        os.replace(temp, directory / Path(KEYS_FILE).name)

    def service_ids(self) -> set[str]:
        with self._errors("cannot list the services"):
            containers = self.client.api.containers(all=True, filters={"label": [
                LABEL_SERVICE, f"{LABEL_INSTALLATION}={self.installation}"]})
        return {c["Labels"][LABEL_SERVICE] for c in containers}

    def _holder(self, spec: ServiceSpec) -> Any:
        holders = self._by_role(spec.service_id, HOLDER)
        if holders:
            holder = holders[0]
            if holder.status != "running":
                holder.start()
                holder.reload()
                for container in self._scoring(spec.service_id):  # their namespace went with the old holder
                    container.remove(force=True)
            return holder
        return self._create_holder(spec)

    def _create_holder(self, spec: ServiceSpec) -> Any:
        options: dict[str, Any] = dict(
            name=f"{spec.name}-net", detach=True, labels=self._labels(spec, HOLDER),
            command=["python", "-c", "import signal; signal.pause()"], restart_policy={"Name": "unless-stopped"},
            read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"], mem_limit=32 * 1024 * 1024,
            pids_limit=HOLDER_PIDS,
            sysctls={MIGRATE_SYSCTL: "1"} if self.migrate_connections else None,
            healthcheck={"test": ["NONE"]},
        )
        for port in ([spec.port, None] if spec.port else [None]):
            try:
                return self.client.containers.run(spec.image, ports={CONTAINER_PORT: (self.host, port)}, **options)
            except docker.errors.APIError as exc:
                if port is None or "allocated" not in explain(exc):
                    raise
                self.client.containers.get(options["name"]).remove(force=True)
        raise EngineError("could not publish a port")  # unreachable: the last attempt raises

    def _start(self, spec: ServiceSpec, holder: Any) -> Any:
        environment = {**spec.env, "MOMA_KEYS_FILE": KEYS_FILE, "REUSE_PORT": "true", "MOMA_INSTANCE": spec.instance,
                       "MOMA_INSTANCE_ID": spec.instance_id}
        volumes = {str(keys_dir(self.services_dir, spec.service_id)): {"bind": KEYS_MOUNT, "mode": "ro"}}
        if spec.data_dir is not None:
            environment["AML_MODEL_DC_LOCAL_DIR"] = DATA_MOUNT
            volumes[str(_shared_data_dir(spec.data_dir))] = {"bind": DATA_MOUNT, "mode": "rw"}
        options: dict[str, Any] = dict(
            name=f"{spec.name}-g{spec.generation}", detach=True, network_mode=f"container:{holder.id}",
            environment=environment, labels=self._labels(spec, SCORING), volumes=volumes,
            restart_policy={"Name": "unless-stopped"}, read_only=True, tmpfs={"/tmp": "rw,size=256m"},
            cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=self.limits.pids,
        )
        if self.limits.memory_for(spec):
            options["mem_limit"] = self.limits.memory_for(spec)
        if spec.cpu:
            options["nano_cpus"] = int(spec.cpu * 1e9)
        return self.client.containers.run(spec.image, **options)

    def _wait_ready(self, container: Any, spec: ServiceSpec, endpoint: Endpoint) -> None:
        """Until the new instance itself says ready. New connections land on the old or
        the new container, so ask with fresh connections until the new one answers."""
        deadline = time.monotonic() + spec.ready_seconds
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                raise EngineError(f"container {container.name} stopped while starting",
                                  container.logs(tail=30).decode(errors="replace"))
            answer = _readyz(endpoint, timeout=min(10.0, max(0.5, deadline - time.monotonic())))
            if answer.get("instance") in (spec.instance_id, spec.instance):  # (older images: the name)
                if answer.get("state") == "ready":
                    return
                if answer.get("state") == "failed":
                    raise EngineError(f"the service failed to start: {answer.get('message', '')}",
                                      container.logs(tail=30).decode(errors="replace"))
            time.sleep(0.2)
        raise EngineError(f"container {container.name} was not ready within {spec.ready_seconds:.0f} s",
                          container.logs(tail=30).decode(errors="replace"))

    def _labels(self, spec: ServiceSpec, role: str) -> dict[str, str]:
        return {**spec.labels, LABEL_SERVICE: spec.service_id, LABEL_GENERATION: str(spec.generation),
                LABEL_ROLE: role, LABEL_INSTALLATION: self.installation}

    def _by_role(self, service_id: str, role: str) -> list[Any]:
        """The containers of a role; one removed while they are listed is left out."""
        return self.client.containers.list(all=True, ignore_removed=True, filters={"label": [
            f"{LABEL_SERVICE}={service_id}", f"{LABEL_ROLE}={role}"]})

    @staticmethod
    def _errors(action: str) -> Any:
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


def _readyz(endpoint: Endpoint, timeout: float) -> dict[str, Any]:
    try:
        response = requests.get(f"{endpoint.base_url}/readyz", timeout=timeout, headers={"Connection": "close"})
        return response.json()
    except (requests.RequestException, ValueError):
        return {}


def _shared_data_dir(directory: Path) -> Path:
    """The container's user (uid 10001) writes there and the host user reads and deletes
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

