"""Desired state against the engines, every few seconds, by one worker at a time (a
named lease): a service whose containers vanished is deployed again, one whose
engine is gone is marked Failed with the reason, keys are pushed where they changed,
containers of services that no longer exist are removed, and the autoscaler runs.

Each compute's services are reconciled in a lane of their own (a thread per pass),
so a Docker host that hangs holds up only its own services: a lane still busy when
the next pass comes is left to finish and skipped. Within a lane, services are taken
one by one, each on its own: whatever goes wrong with one (its engine refuses, a bug)
is logged once for it in that pass, and the others go on. When the engine does not
answer at all, its remaining services in that pass are marked without asking again.

A redeploy that failed (``RedeployFailed``: the reconciler's own attempt, not the
user's deploy) is tried again in later passes, waiting twice as long each time up to
``MAX_RETRY_SECONDS``, as an orchestrator restarts a crashing container.

The autoscaler also runs between passes, every ``AUTOSCALE_TICK`` seconds, so that a
service is looked at every ``refreshPeriodInSeconds`` (the ``autoscale`` callback
keeps its own time per service) even when passes are further apart."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from functools import partial
from typing import Any, Callable, Hashable

from ..engines import EngineError, EngineUnavailable
from ..store import Service
from ..store.operations import FAILED, SUCCEEDED
from .service_deployments import Deployer

log = logging.getLogger("moma.reconciler")
LEASE = "reconciler"
AUTOSCALE_TICK = 0.5
MAX_RETRY_SECONDS = 300.0
RETRIED = ("EngineLost", "RedeployFailed")  # failures of the reconciler's own making, tried again


class Reconciler:
    def __init__(self, deployer: Deployer, owner: str, interval: float,
                 autoscale: Callable[[Service, Any], None] | None = None) -> None:
        self.deployer = deployer
        self.store = deployer.store
        self.owner = owner
        self.interval = interval
        self.autoscale = autoscale
        self.lanes = Lanes()
        self._keys_pushed: dict[str, int] = {}
        self._retries: dict[str, tuple[float, float]] = {}  # service id -> (next attempt, wait after it)
        self._broken: dict[str, str] = {}  # service id -> the unexpected error last logged with its traceback

    def run(self, stop: threading.Event) -> None:
        tick = min(self.interval, AUTOSCALE_TICK) if self.autoscale is not None else self.interval
        next_pass, holding = time.monotonic() + self.interval, False
        while not stop.wait(tick):
            try:
                if time.monotonic() >= next_pass:
                    next_pass = time.monotonic() + self.interval
                    holding = self.store.leases.hold(LEASE, self.owner, int(self.interval * 3000))
                    if holding:
                        self.reconcile_once(wait=False)
                elif holding:  # the lease lasts three passes: still ours until the next one
                    self.autoscale_once(wait=False)
            except Exception:  # keep reconciling: one bad pass must not end the thread
                log.exception("reconciliation pass failed")

    def reconcile_once(self, wait: bool = True) -> None:
        """One pass: a lane per compute, and one per engine for what deleted services
        left; with ``wait``, returns once the lanes it started have finished."""
        live = self.store.services.all_live()
        live_ids = {service.id for service in live}
        jobs: dict[Hashable, Callable[[], None]] = {
            compute: partial(self._reconcile_compute, services)
            for compute, services in _by_compute([service for service in live if _reconciled(service)]).items()}
        for engine in self.deployer.engines.all():
            jobs[("orphans", id(engine))] = partial(self._remove_orphans, engine, live_ids)
        started = []
        for key, job in jobs.items():
            lane = self.lanes.start(key, job)
            if lane is None:
                log.warning("reconciler: %s is still busy with an earlier pass (does its engine answer?)", key)
            started.append(lane)
        for remembered in (self._keys_pushed, self._retries, self._broken):
            for service_id in set(list(remembered)) - live_ids:
                remembered.pop(service_id, None)
        if wait:
            _join(started)

    def autoscale_once(self, wait: bool = True) -> None:
        """The autoscale step alone, for the services running as they should, in the
        lanes of their computes (a busy lane is skipped)."""
        if self.autoscale is None:
            return
        scaled = [service for service in self.store.services.all_live()
                  if service.state == SUCCEEDED and (service.settings.get("autoScaler") or {}).get("autoscaleEnabled")]
        started = [self.lanes.start(compute, partial(self._autoscale, services, self.autoscale))
                   for compute, services in _by_compute(scaled).items()]
        if wait:
            _join(started)

    def _autoscale(self, services: list[Service], autoscale: Callable[[Service, Any], None]) -> None:
        for service in services:
            self._isolated(service, lambda service: autoscale(service, self.deployer.engine(service)))

    def _reconcile_compute(self, services: list[Service]) -> None:
        """The services of one compute; once its engine did not answer, the rest are
        marked without asking it again."""
        gone: EngineUnavailable | None = None
        for service in services:
            if gone is not None:
                lost = gone
                self._isolated(service, lambda service: self._engine_lost(service, lost))
                continue
            try:
                self._isolated(service, self._reconcile, reraise=EngineUnavailable)
            except EngineUnavailable as exc:
                gone = exc

    def _isolated(self, service: Service, step: Callable[[Service], None],
                  reraise: type[Exception] | None = None) -> None:
        """Run one service's step; its failure is logged (once per pass) and stops no
        other. ``reraise``: errors the caller handles itself."""
        try:
            step(service)
        except EngineError as exc:
            if reraise is not None and isinstance(exc, reraise):
                raise
            log.warning("service %s: %s", service.id, exc.message)
        except Exception as exc:  # a bug: its traceback once, then a line per pass
            first = self._broken.get(service.id) != repr(exc)
            self._broken[service.id] = repr(exc)
            log.error("service %s: reconciling it failed: %r", service.id, exc, exc_info=first)
        else:
            self._broken.pop(service.id, None)

    def _reconcile(self, service: Service) -> None:
        try:
            engine = self.deployer.engine(service)
            status = engine.status(service.id)
        except EngineError as exc:
            self._engine_lost(service, exc)
            if isinstance(exc, EngineUnavailable):
                raise
            return
        if not status.present or status.running == 0 or status.generation != service.generation:
            if self._due(service.id):
                self._redeploy(service, engine, "its containers are gone" if not status.running
                               else "generation differs")
            return
        if service.state == FAILED:  # the engine is back and the service still runs there
            self.store.services.mark(service.id, SUCCEEDED, None)
        self._retries.pop(service.id, None)
        self._push_keys(service, engine)
        if self.autoscale is not None:
            self.autoscale(service, engine)

    def _engine_lost(self, service: Service, exc: EngineError) -> None:
        if service.state == SUCCEEDED:
            log.warning("service %s: its engine is gone: %s", service.id, exc.message)
            self.store.services.mark(service.id, FAILED, {"code": "EngineLost", "statusCode": 503,
                                                          "message": f"the compute's engine is gone: {exc.message}"})

    def _redeploy(self, service: Service, engine: Any, why: str) -> None:
        log.warning("service %s: %s; deploying it again", service.id, why)
        try:
            workload = self.deployer.workload(service)
            endpoint = engine.deploy(workload)
        except EngineError as exc:
            retry_in = self._failed_again(service.id)
            log.warning("service %s: deploying it again failed (next try in %.1f s): %s", service.id, retry_in,
                        exc.message)
            self.store.services.mark(service.id, FAILED, {"code": "RedeployFailed", "statusCode": 500,
                                                          "message": f"{why}, and deploying again failed: "
                                                                     f"{exc.message}"})
            return
        self._retries.pop(service.id, None)
        if endpoint.port != service.scoring_port:
            log.warning("service %s: port %s was taken, now %s", service.id, service.scoring_port, endpoint.port)
        self.store.services.mark(service.id, SUCCEEDED, None, replicas=workload.replicas, scoring_port=endpoint.port)
        self._keys_pushed[service.id] = service.keys_version

    def _due(self, service_id: str) -> bool:
        next_attempt, _ = self._retries.get(service_id, (0.0, 0.0))
        return time.monotonic() >= next_attempt

    def _failed_again(self, service_id: str) -> float:
        """Schedule the next redeploy of a service after a failed one; returns the wait."""
        _, wait = self._retries.get(service_id, (0.0, self.interval / 2))
        wait = min(MAX_RETRY_SECONDS, max(wait * 2, self.interval))
        self._retries[service_id] = (time.monotonic() + wait, wait)
        return wait

    def _push_keys(self, service: Service, engine: Any) -> None:
        if self._keys_pushed.get(service.id) == service.keys_version:
            return
        engine.set_keys(service.id, self.deployer.key_hashes(service), service.generation)
        self._keys_pushed[service.id] = service.keys_version

    @staticmethod
    def _remove_orphans(engine: Any, live_ids: set[str]) -> None:
        try:
            for service_id in engine.service_ids() - live_ids:
                log.warning("removing containers of service %s, which no longer exists", service_id)
                engine.remove(service_id)
        except EngineError as exc:
            log.warning("removing what is left of deleted services: %s", exc.message)


class Lanes:
    """At most one job at a time per key, each in a thread of its own."""

    def __init__(self) -> None:
        self._busy: set[Hashable] = set()
        self._lock = threading.Lock()

    def start(self, key: Hashable, job: Callable[[], None]) -> threading.Thread | None:
        """Start ``job`` in the lane ``key``; None (and nothing started) while the lane is busy."""
        with self._lock:
            if key in self._busy:
                return None
            self._busy.add(key)
        thread = threading.Thread(target=self._run, args=(key, job), name=f"moma-reconciler-{key}", daemon=True)
        thread.start()
        return thread

    def _run(self, key: Hashable, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # logged; the lane stays usable
            log.exception("reconciler: %s failed", key)
        finally:
            with self._lock:
                self._busy.discard(key)


def _join(lanes: list[threading.Thread | None]) -> None:
    for lane in lanes:
        if lane is not None:
            lane.join()


def _by_compute(services: list[Service]) -> dict[tuple[int, str], list[Service]]:
    grouped: dict[tuple[int, str], list[Service]] = defaultdict(list)
    for service in services:
        grouped[(service.account_id, service.compute)].append(service)
    return grouped


def _reconciled(service: Service) -> bool:
    """Running services, and those failed by the reconciler itself (tried again)."""
    if service.state == SUCCEEDED:
        return True
    return service.state == FAILED and (service.error or {}).get("code") in RETRIED
