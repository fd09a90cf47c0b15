"""Docker clients for the engines: a compute's address and TLS settings, and a timeout
on every call to the engine (the worker's generous one, ``MOMA_DOCKER_TIMEOUT_SECONDS``,
or an API request's short one)."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping
from urllib.parse import urlsplit

import docker
import docker.tls
from docker.constants import MINIMUM_DOCKER_API_VERSION

from ..config import Settings
from .docker_errors import docker_errors

WORKER_TIMEOUT = Settings.docker_timeout_seconds  # the setting's default


def docker_client(docker_host: str = "", tls: Mapping[str, Any] | None = None,
                  timeout: float = WORKER_TIMEOUT) -> docker.DockerClient:
    """A client of the engine at ``docker_host`` (``DOCKER_HOST`` and its TLS variables
    when empty), over TLS when ``tls`` is given (a compute's ``tls``: ``verify``,
    ``caCertPath``, ``clientCertPath``, ``clientKeyPath``; PEM files on this host).
    The SDK asks the engine's API version here: this is the first call to it."""
    with docker_errors(f"Docker engine at {docker_host or 'the local socket'}"):
        if not docker_host:
            return docker.from_env(timeout=timeout)
        if not tls:
            return docker.DockerClient(base_url=docker_host, timeout=timeout)
        return _tls_client(docker_host, tls_config(tls), timeout)


def on_this_machine(docker_host: str) -> bool:
    """Whether the engine at ``docker_host`` runs here: its socket, or a loopback address."""
    if not docker_host or docker_host.startswith(("unix://", "npipe://")):
        return True
    return is_loopback(urlsplit(docker_host).hostname or "")


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tls_config(tls: Mapping[str, Any]) -> docker.tls.TLSConfig:
    """TLS as ``docker --tlsverify --tlscacert --tlscert --tlskey`` takes it; the server's
    certificate is verified unless ``verify`` is false (against the system's CAs when no
    CA is given)."""
    cert, key = tls.get("clientCertPath"), tls.get("clientKeyPath")
    return docker.tls.TLSConfig(client_cert=(cert, key) if cert or key else None,
                                ca_cert=tls.get("caCertPath") or None, verify=bool(tls.get("verify", True)))


def _tls_client(docker_host: str, tls: docker.tls.TLSConfig, timeout: float) -> docker.DockerClient:
    """requests lets ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` in the environment win
    over a session's own CA (psf/requests#3829, #4726): the compute's CA would count for
    nothing. These clients ignore the environment, so they ask the engine's API version
    themselves rather than the SDK, which asks before one can tell it to."""

    def client(version: str) -> docker.DockerClient:
        made = docker.DockerClient(base_url=docker_host, tls=tls, timeout=timeout, version=version)
        made.api.trust_env = False
        return made

    probe = client(MINIMUM_DOCKER_API_VERSION)
    try:
        version = probe.api.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()
    return client(version)
