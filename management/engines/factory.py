"""Which engine serves a compute: ``local`` containers or a ``swarm``; one instance per
compute, kept for the life of the worker."""

from __future__ import annotations

import threading

from ..config import Settings
from ..store import Compute
from ..quantities import parse_memory
from . import Engine, EngineError, Limits


class Engines:
    def __init__(self, settings: Settings, installation: str) -> None:
        self.settings = settings
        self.installation = installation
        self._engines: dict[tuple[str, str], Engine] = {}
        self._lock = threading.Lock()
        self.limits = container_limits(settings)

    def for_compute(self, compute: Compute) -> Engine:
        key = (compute.kind, compute.docker_host)
        with self._lock:
            if key not in self._engines:
                self._engines[key] = self._make(compute)
            return self._engines[key]

    def all(self) -> list[Engine]:
        with self._lock:
            return list(self._engines.values())

    def _make(self, compute: Compute) -> Engine:
        limits = self.limits
        if compute.kind == "local":
            from .local import LocalEngine

            return LocalEngine.from_env(self.settings.services_dir, self.settings.scoring_host, compute.docker_host,
                                        self.installation, limits=limits)
        if compute.kind == "swarm":
            from .swarm import SwarmEngine

            return SwarmEngine.from_env(self.settings.scoring_host, compute.docker_host, self.installation,
                                        limits=limits)
        raise EngineError(f"unknown compute type {compute.kind!r}")


def container_limits(settings: Settings) -> Limits:
    """The limits every scoring container gets (``0`` turns one off); a bad setting fails here, at start."""
    memory = settings.service_default_memory.strip()
    return Limits(pids=settings.service_pids_limit or None,
                  memory=None if memory in ("", "0") else parse_memory(memory))
