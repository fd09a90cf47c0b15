"""Which engine serves a compute: ``local`` containers or a ``swarm``; one instance per
compute (its kind, Docker host and TLS settings), kept for the life of the process.

An engine is built (which asks its Docker host) outside any lock that other computes
wait on: a host that is slow to answer delays only the callers of that compute. Two
callers that build the same engine at once both may; the first one stored is kept.
"""

from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

from ..config import Settings
from ..quantities import parse_memory
from ..store import Compute
from . import Engine, EngineError, Limits
from .deadline import Deadline

T = TypeVar("T")


class Engines:
    """``timeout``: how long one Docker call may take (default: the worker's,
    ``docker_timeout_seconds``); for engines called from API requests also the deadline
    of each :meth:`call`."""

    def __init__(self, settings: Settings, installation: str, timeout: float | None = None) -> None:
        self.settings = settings
        self.installation = installation
        self.timeout = settings.docker_timeout_seconds if timeout is None else timeout
        self.limits = container_limits(settings)
        self._engines: dict[Hashable, Engine] = {}
        self._lock = threading.Lock()  # held only to read or store an engine, never while one is built
        self._deadline = Deadline(self.timeout)

    def for_compute(self, compute: Compute) -> Engine:
        key = engine_key(compute)
        with self._lock:
            engine = self._engines.get(key)
        if engine is not None:
            return engine
        built = self._make(compute)
        with self._lock:
            engine = self._engines.setdefault(key, built)
        if engine is not built:
            built.close()
        return engine

    def call(self, compute: Compute, action: Callable[[Engine], T], what: str) -> T:
        """For an API request: ``action`` on the compute's engine (built first if need
        be), answered within ``timeout`` seconds, else EngineTimeout about ``what``."""
        return self._deadline.call(engine_key(compute), what, lambda: action(self.for_compute(compute)))

    def all(self) -> list[Engine]:
        with self._lock:
            return list(self._engines.values())

    def _make(self, compute: Compute) -> Engine:
        tls = compute.tls
        if compute.kind == "local":
            from .local import LocalEngine

            return LocalEngine.from_env(self.settings.services_dir, self.settings.scoring_host, compute.docker_host,
                                        self.installation, limits=self.limits, tls=tls, timeout=self.timeout)
        if compute.kind == "swarm":
            from .swarm import SwarmEngine

            return SwarmEngine.from_env(self.settings.scoring_host, compute.docker_host, self.installation,
                                        limits=self.limits, tls=tls, timeout=self.timeout)
        raise EngineError(f"unknown compute type {compute.kind!r}")


def engine_key(compute: Compute) -> Hashable:
    return compute.kind, compute.docker_host, tuple(sorted((compute.tls or {}).items()))


def container_limits(settings: Settings) -> Limits:
    """The limits every scoring container gets (``0`` turns one off); a bad setting fails here, at start."""
    memory = settings.service_default_memory.strip()
    return Limits(pids=settings.service_pids_limit or None,
                  memory=None if memory in ("", "0") else parse_memory(memory))
