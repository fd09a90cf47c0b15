"""The operation worker: claims operations from the store and carries them out.

Any number of workers, on any hosts sharing the store, may run at once: each claim is
a lease renewed by a heartbeat while the work runs, so an operation runs on one worker
at a time and one whose worker died is taken up again (see ``store/operations.py``).

A worker runs several operations at once, in lanes with slots of their own: image
builds, and service operations, which therefore never wait behind a build. In each
lane the store gives one account only so many places at once, counted over every
worker, so one account's slow builds cannot take every slot; and it runs the
operations of one resource one after the other.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

from .. import tracing
from ..config import Settings
from ..store import Operation, Store

log = logging.getLogger("moma.worker")


class Handler(Protocol):
    def __call__(self, operation: Operation, worker: str) -> None: ...


@dataclass(frozen=True)
class Lane:
    name: str
    operation_types: tuple[str, ...]
    slots: int  # operations of the lane one worker runs at once
    per_account: int  # operations of the lane one account runs at once, on all workers together


def lanes_of(settings: Settings) -> tuple[Lane, ...]:
    lanes = (Lane("build", ("Image",), settings.worker_build_slots, settings.account_build_slots),
             Lane("service", ("Service",), settings.worker_service_slots, settings.account_service_slots))
    for lane in lanes:
        if lane.slots < 1 or lane.per_account < 1:
            raise ValueError(f"the {lane.name} lane needs at least one slot and one place per account "
                             f"(MOMA_WORKER_{lane.name.upper()}_SLOTS, MOMA_ACCOUNT_{lane.name.upper()}_SLOTS)")
    return lanes


class Worker:
    def __init__(self, settings: Settings, store: Store, handlers: dict[str, Handler],
                 worker_id: str | None = None, orphaned: threading.Event | None = None) -> None:
        self.settings = settings
        self.store = store
        self.handlers = handlers
        self.id = worker_id or f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = int(settings.worker_lease_seconds * 1000)
        self.lanes = lanes_of(settings)
        self.orphaned = orphaned or threading.Event()  # set: the server is gone, renew nothing
        self._claims = itertools.count(1)
        self._held: dict[str, str] = {}  # lease owner of each claim → its operation
        self._held_lock = threading.Lock()
        self._slot_freed = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Fill every lane's free slots, until ``stop``; then let the running operations finish."""
        log.info("worker %s: %s; polling every %.1f s", self.id,
                 ", ".join(f"{lane.slots} {lane.name} slots ({lane.per_account} per account)" for lane in self.lanes),
                 self.settings.worker_poll_seconds)
        pools = {lane: ThreadPoolExecutor(lane.slots, thread_name_prefix=f"moma-{lane.name}") for lane in self.lanes}
        running: dict[Lane, set[Future]] = {lane: set() for lane in self.lanes}
        with self._heartbeat():
            try:
                while not stop.is_set() and not self.orphaned.is_set():
                    self._slot_freed.clear()
                    if not self._fill(pools, running):
                        self._slot_freed.wait(self.settings.worker_poll_seconds)
            finally:
                for pool in pools.values():
                    pool.shutdown(wait=not self.orphaned.is_set())

    def run_once(self) -> bool:
        """Claim one operation of any lane and carry it out in this thread; False when there was none."""
        for lane in self.lanes:
            operation = self._claim(lane)
            if operation is not None:
                with self._heartbeat():
                    self._carry_out(operation)
                return True
        return False

    def _fill(self, pools: dict[Lane, ThreadPoolExecutor], running: dict[Lane, set[Future]]) -> bool:
        """Claim into every free slot; True when something was claimed."""
        claimed = False
        for lane in self.lanes:
            running[lane] = {future for future in running[lane] if not future.done()}
            while len(running[lane]) < lane.slots:
                try:
                    operation = self._claim(lane)
                except Exception:  # a store outage must not end the worker: wait and try again
                    log.exception("worker %s: claiming a %s operation failed", self.id, lane.name)
                    return claimed
                if operation is None:
                    break
                future = pools[lane].submit(self._carry_out, operation)
                future.add_done_callback(lambda _: self._slot_freed.set())
                running[lane].add(future)
                claimed = True
        return claimed

    def _claim(self, lane: Lane) -> Operation | None:
        owner = f"{self.id}/{next(self._claims)}"  # one lease owner per claim: slots never share a lease
        operation = self.store.operations.claim(owner, self.lease_ms, self.settings.worker_max_attempts,
                                                lane.operation_types, lane.per_account)
        if operation is not None:
            with self._held_lock:
                self._held[owner] = operation.id
        return operation

    def _carry_out(self, operation: Operation) -> None:
        owner = operation.lease_owner or ""
        try:
            handler = self.handlers.get(operation.operation_type)
            if handler is None:
                raise RuntimeError(f"no handler for {operation.operation_type} operations")
            log.info("worker %s: %s operation %s (attempt %d)", owner, operation.operation_type, operation.id,
                     operation.attempts)
            with tracing.span(f"{operation.operation_type} operation", {
                    "moma.operation.id": operation.id, "moma.operation.type": operation.operation_type,
                    "moma.resource.id": operation.resource_id, "moma.operation.attempt": operation.attempts},
                    traceparent=(operation.payload or {}).get(tracing.TRACEPARENT)):
                handler(operation, owner)
        except Exception:  # the operation's lease runs out and another attempt follows
            log.exception("worker %s: %s operation %s failed", owner, operation.operation_type, operation.id)
        finally:
            with self._held_lock:
                self._held.pop(owner, None)

    def _heartbeat(self) -> "_Heartbeat":
        return _Heartbeat(self._renew, self.settings.worker_lease_seconds / 3, self.orphaned)

    def _renew(self) -> None:
        with self._held_lock:
            held = list(self._held.items())
        for owner, operation_id in held:
            if not self.store.operations.heartbeat(operation_id, owner, self.lease_ms):
                log.warning("%s lost the lease of operation %s; its result will be discarded", owner, operation_id)
                with self._held_lock:
                    self._held.pop(owner, None)


class _Heartbeat:
    """Renews the leases of the running operations in the background, until the work
    is done or the worker is orphaned."""

    def __init__(self, renew: Callable[[], None], interval: float, orphaned: threading.Event) -> None:
        self.renew = renew
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
                log.warning("orphaned: no longer renewing the leases of the running operations")
                return
            try:
                self.renew()
            except Exception:  # a store hiccup: try again at the next beat, before the leases run out
                log.exception("heartbeat failed")
