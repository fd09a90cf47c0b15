"""Which engine serves a compute: ``local`` containers or a ``swarm``; one instance per
compute, kept for the life of the worker."""

from __future__ import annotations

import threading

from ..config import Settings
from ..store import Compute
from . import Engine, EngineError


class Engines:
    def __init__(self, settings: Settings, installation: str) -> None:
        self.settings = settings
        self.installation = installation
        self._engines: dict[tuple[str, str], Engine] = {}
        self._lock = threading.Lock()

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
        if compute.kind == "local":
            from .local import LocalEngine

            return LocalEngine.from_env(self.settings.services_dir, self.settings.scoring_host, compute.docker_host,
                                        self.installation)
        if compute.kind == "swarm":
            from .swarm import SwarmEngine

            return SwarmEngine.from_env(self.settings.scoring_host, compute.docker_host, self.installation)
        raise EngineError(f"unknown compute type {compute.kind!r}")
