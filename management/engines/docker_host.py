"""What the local and swarm engines share about the Docker host they run scoring
containers on: connecting to it, whether it is this machine, its kernel's settings,
how a scoring container is stopped and what it may write, and asking one whether it is
ready."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import docker
import requests

from . import Endpoint
from .clients import WORKER_TIMEOUT, docker_client, on_this_machine

STOP_SECONDS = 35  # longer than the runtime's graceful shutdown
TMP_BYTES = 256 * 1024 * 1024  # the tmpfs at /tmp, the only writable place besides the mounts
# Connections queued on a listening socket that closes move to another socket on the
# same port instead of being reset (Linux >= 5.14): lossless SO_REUSEPORT updates.
MIGRATE_SYSCTL = "net.ipv4.tcp_migrate_req"


@dataclass(frozen=True)
class DockerHost:
    client: docker.DockerClient
    address: str  # as the compute names it; "" for DOCKER_HOST or the local socket
    local: bool  # the engine runs on this machine: its files, ports and /proc are ours

    @property
    def name(self) -> str:
        return self.address or "the local socket"


def connect(docker_host: str = "", tls: Mapping[str, Any] | None = None,
            timeout: float = WORKER_TIMEOUT) -> DockerHost:
    """A client of the engine at ``docker_host`` (see :func:`clients.docker_client`)."""
    client = docker_client(docker_host, tls, timeout)
    return DockerHost(client, docker_host, on_this_machine(docker_host or os.environ.get("DOCKER_HOST", "")))


def sysctl(name: str) -> str | None:
    """A kernel setting of this machine (None when it has no such setting)."""
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class Readiness:
    status: int | None  # None: no answer
    answer: dict[str, Any]  # the JSON body: state, instance, message

    @property
    def ready(self) -> bool:
        return self.status == 200


def readyz(endpoint: Endpoint, timeout: float = 5.0) -> Readiness:
    """``GET /readyz`` on a new connection: over SO_REUSEPORT or a swarm's routing mesh,
    each new connection may reach another instance."""
    try:
        response = requests.get(f"{endpoint.base_url}/readyz", timeout=timeout, headers={"Connection": "close"})
    except requests.RequestException:
        return Readiness(None, {})
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    return Readiness(response.status_code, answer if isinstance(answer, dict) else {})
