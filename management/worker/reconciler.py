"""Desired state against the engines, every few seconds, by one worker at a time (a
named lease): a service whose containers vanished is deployed again, one whose
engine is gone is marked Failed with the reason, keys are pushed where they changed,
containers of services that no longer exist are removed, and the autoscaler runs.

Services are reconciled one by one, each on its own: whatever goes wrong with one
(its engine refuses, a bug) is logged once for it in that pass, and the others go on.
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
from typing import Any, Callable

from ..engines import EngineError
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
                        self.reconcile_once()
                elif holding:  # the lease lasts three passes: still ours until the next one
                    self.autoscale_once()
            except Exception:  # keep reconciling: one bad pass must not end the thread
                log.exception("reconciliation pass failed")

    def reconcile_once(self) -> None:
        live = self.store.services.all_live()
        for service in live:
            self._isolated(service, self._reconcile)
        live_ids = {service.id for service in live}
        self._remove_orphans(live_ids)
        for remembered in (self._keys_pushed, self._retries, self._broken):
            for service_id in remembered.keys() - live_ids:
                del remembered[service_id]

    def autoscale_once(self) -> None:
        """The autoscale step alone, for the services running as they should."""
        if self.autoscale is None:
            return
        for service in self.store.services.all_live():
            if service.state != SUCCEEDED or not (service.spec.get("autoScaler") or {}).get("autoscaleEnabled"):
                continue
            self._isolated(service, lambda service: self.autoscale(service, self.deployer.engine(service)))

    def _isolated(self, service: Service, step: Callable[[Service], None]) -> None:
        """Run one service's step; its failure is logged (once per pass) and stops no other."""
        try:
            step(service)
        except EngineError as exc:
            log.warning("service %s: %s", service.id, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug: its traceback once, then a line per pass
            first = self._broken.get(service.id) != repr(exc)
            self._broken[service.id] = repr(exc)
            log.error("service %s: reconciling it failed: %r", service.id, exc, exc_info=first)
        else:
            self._broken.pop(service.id, None)

    def _reconcile(self, service: Service) -> None:
        if service.state not in (SUCCEEDED, FAILED) or (service.state == FAILED and not _retried(service)):
            return
        try:
            engine = self.deployer.engine(service)
            status = engine.status(service.id)
        except EngineError as exc:
            if service.state == SUCCEEDED:
                log.warning("service %s: its engine is gone: %s", service.id, exc.message)
                self.store.services.mark(service.id, FAILED, {"code": "EngineLost", "statusCode": 503,
                                                              "message": f"the compute's engine is gone: {exc.message}"})
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

    def _redeploy(self, service: Service, engine: Any, why: str) -> None:
        log.warning("service %s: %s; deploying it again", service.id, why)
        try:
            spec = self.deployer.spec(service)
            endpoint = engine.deploy(spec)
        except EngineError as exc:
            retry_in = self._failed_again(service.id)
            log.warning("service %s: deploying it again failed (next try in %.0f s): %s", service.id, retry_in,
                        exc.message)
            self.store.services.mark(service.id, FAILED, {"code": "RedeployFailed", "statusCode": 500,
                                                          "message": f"{why}, and deploying again failed: "
                                                                     f"{exc.message}"})
            return
        self._retries.pop(service.id, None)
        if endpoint.port != service.scoring_port:
            log.warning("service %s: port %s was taken, now %s", service.id, service.scoring_port, endpoint.port)
        self.store.services.mark(service.id, SUCCEEDED, None, replicas=spec.replicas, scoring_port=endpoint.port)
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

    def _remove_orphans(self, live_ids: set[str]) -> None:
        for engine in self.deployer.engines.all():
            try:
                orphans = engine.service_ids() - live_ids
                for service_id in orphans:
                    log.warning("removing containers of service %s, which no longer exists", service_id)
                    engine.remove(service_id)
            except EngineError as exc:
                log.warning("removing what is left of deleted services: %s", exc.message)


def _retried(service: Service) -> bool:
    return bool(service.error) and service.error.get("code") in RETRIED  # type: ignore[union-attr]
