"""The operation worker: claims operations from the store and carries them out.

Any number of workers, on any hosts sharing the store, may run at once: each claim is
a lease renewed by a heartbeat thread while the work runs, so an operation runs on
one worker at a time and one whose worker died is taken up again (see
``store/operations.py``)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Callable, Protocol

from ..config import Settings
from ..store import Operation, Store

log = logging.getLogger("moma.worker")


class Handler(Protocol):
    def __call__(self, operation: Operation, worker: str) -> None: ...


class Worker:
    def __init__(self, settings: Settings, store: Store, handlers: dict[str, Handler],
                 worker_id: str | None = None, orphaned: threading.Event | None = None) -> None:
        self.settings = settings
        self.store = store
        self.handlers = handlers
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = int(settings.worker_lease_seconds * 1000)
        self.orphaned = orphaned or threading.Event()  # set: the server is gone, renew nothing

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s polling every %.1f s", self.id, self.settings.worker_poll_seconds)
        while not stop.is_set() and not self.orphaned.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a store outage must not end the worker: wait and try again
                log.exception("worker %s: claiming or running an operation failed", self.id)
                busy = False
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)

    def run_once(self) -> bool:
        """Claim and carry out one operation; False when there was none."""
        operation = self.store.operations.claim(self.id, self.lease_ms, self.settings.worker_max_attempts)
        if operation is None:
            return False
        handler = self.handlers.get(operation.operation_type)
        log.info("worker %s: %s operation %s (attempt %d)", self.id, operation.operation_type, operation.id,
                 operation.attempts)
        with _Heartbeat(lambda: self.store.operations.heartbeat(operation.id, self.id, self.lease_ms),
                        self.settings.worker_lease_seconds / 3, self.orphaned):
            if handler is None:
                raise RuntimeError(f"no handler for {operation.operation_type} operations")
            handler(operation, self.id)
        return True


class _Heartbeat:
    """Renews a lease in the background until the work is done."""

    def __init__(self, beat: Callable[[], bool], interval: float, orphaned: threading.Event) -> None:
        self.beat = beat
        self.interval = interval
        self.orphaned = orphaned
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="moma-heartbeat", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            if self.orphaned.is_set():
                log.warning("orphaned: no longer renewing the lease of the running operation")
                return
            try:
                if not self.beat():
                    log.warning("lost the lease of the running operation; its result will be discarded")
                    return
            except Exception:  # a store hiccup: try again at the next beat, before the lease runs out
                log.exception("heartbeat failed")
