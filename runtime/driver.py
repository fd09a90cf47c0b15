"""The user's driver and the life cycle of the worker process that serves it.

State machine, checked in one place (``Lifecycle.require_ready``)::

    STARTING ──init() ok──► READY ──SIGTERM──► DRAINING
        │
        └──import/init()/schema failed──► FAILED   (the process stays up; /readyz and
                                                     /score report the reason)

``load()`` runs in each gunicorn worker when the app is created, before the worker
accepts its first connection, so every worker has called init() once before it takes
traffic. The driver file is imported from the app root (which is put first on
``sys.path`` so drivers can import modules shipped beside them) and must define
``init()`` and ``run(...)``; the process's working directory must be the app root
(gunicorn_conf.py ``chdir``s there) so models load by relative path.
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import NotReady

log = logging.getLogger("moma.runtime")


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


class Lifecycle:
    """Where the worker is in its life; the only place readiness is decided."""

    def __init__(self) -> None:
        self.state = State.STARTING
        self.reason = "the driver's init() has not finished"
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    def require_ready(self) -> None:
        """Raise NotReady unless scoring may run. Draining workers finish what they get."""
        state = self.state
        if state is State.READY or state is State.DRAINING:
            return
        raise NotReady(self.reason)

    def succeed(self) -> None:
        with self._lock:
            if self.state is State.STARTING:
                self.state, self.reason = State.READY, "ready"

    def fail(self, reason: str) -> None:
        with self._lock:
            if self.state is State.STARTING:
                self.state, self.reason = State.FAILED, reason

    def drain(self) -> None:
        with self._lock:
            if self.state is State.READY:
                self.state, self.reason = State.DRAINING, "shutting down"


class Driver:
    """The imported driver module; ``run`` is its run function once loaded."""

    def __init__(self, path: str, app_root: str, namespace: dict[str, Any] | None = None) -> None:
        self.path = path
        self.app_root = app_root
        # Globals the driver module sees from its first line on (SparkPython: spark, sc).
        self.namespace = namespace or {}
        self.module: Any = None
        self.run: Callable[..., Any] | None = None
        self.init_seconds: float | None = None

    def load(self, lifecycle: Lifecycle,
             after_init: Callable[["Driver"], None] | None = None) -> None:
        """Import the driver, call init(), then ``after_init`` (a warm-up) before readiness;
        never raises, records the outcome."""
        started = time.perf_counter()
        stage = "import"
        try:
            module = self._import()
            init, run = getattr(module, "init", None), getattr(module, "run", None)
            if not callable(init) or not callable(run):
                missing = [n for n, f in (("init", init), ("run", run)) if not callable(f)]
                raise AttributeError(f"{self.path} does not define {' and '.join(missing)}()")
            stage = "init()"
            init()
            self.module, self.run = module, run
            if after_init is not None:
                stage = "warm-up"
                after_init(self)
        except BaseException as exc:  # a driver may even sys.exit()
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = f"driver {stage} failed: {type(exc).__name__}: {exc}"
            log.error("%s", reason, exc_info=True)
            lifecycle.fail(reason)
            self.module = self.run = None
            return
        self.init_seconds = time.perf_counter() - started
        log.info("driver %s initialised in %.3f s (pid %d)", self.path, self.init_seconds,
                 os.getpid())
        lifecycle.succeed()

    def _import(self) -> Any:
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"driver file {self.path} does not exist")
        if self.app_root not in sys.path:
            sys.path.insert(0, self.app_root)
        name = os.path.splitext(os.path.basename(self.path))[0]
        if not name.isidentifier() or name in sys.modules:
            name = "moma_driver"
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import driver file {self.path}")
        module = importlib.util.module_from_spec(spec)
        vars(module).update(self.namespace)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
