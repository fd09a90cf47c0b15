"""Desired state against the engines, every few seconds, by one worker at a time (a
named lease): a service whose containers vanished is deployed again, one whose
engine is gone is marked Failed with the reason, keys are pushed where they changed,
containers of services that no longer exist are removed, and the autoscaler runs.

The autoscaler also runs between passes, every ``AUTOSCALE_TICK`` seconds, so that a
service is looked at every ``refreshPeriodInSeconds`` (the ``autoscale`` callback
keeps its own time per service) even when passes are further apart."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..engines import EngineError, EngineUnavailable
from ..store import Service
from ..store.operations import FAILED, SUCCEEDED
from .service_deployments import Deployer

log = logging.getLogger("moma.reconciler")
LEASE = "reconciler"
AUTOSCALE_TICK = 0.5


class Reconciler:
    def __init__(self, deployer: Deployer, owner: str, interval: float,
                 autoscale: Callable[[Service, Any], None] | None = None) -> None:
        self.deployer = deployer
        self.store = deployer.store
        self.owner = owner
        self.interval = interval
        self.autoscale = autoscale
        self._keys_pushed: dict[str, int] = {}

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
            self._reconcile(service)
        self._remove_orphans({service.id for service in live})

    def autoscale_once(self) -> None:
        """The autoscale step alone, for the services running as they should."""
        if self.autoscale is None:
            return
        for service in self.store.services.all_live():
            if service.state != SUCCEEDED or not (service.spec.get("autoScaler") or {}).get("autoscaleEnabled"):
                continue
            try:
                engine = self.deployer.engine(service)
            except EngineError:
                continue  # the next pass marks it
            self.autoscale(service, engine)

    def _reconcile(self, service: Service) -> None:
        if service.state not in (SUCCEEDED, FAILED) or (service.state == FAILED and not _engine_lost(service)):
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
            self._redeploy(service, engine, "its containers are gone" if not status.running else "generation differs")
            return
        if service.state == FAILED:  # the engine is back and the service still runs there
            self.store.services.mark(service.id, SUCCEEDED, None)
        self._push_keys(service, engine)
        if self.autoscale is not None:
            self.autoscale(service, engine)

    def _redeploy(self, service: Service, engine: Any, why: str) -> None:
        log.warning("service %s: %s; deploying it again", service.id, why)
        try:
            spec = self.deployer.spec(service)
            endpoint = engine.deploy(spec)
        except EngineError as exc:
            self.store.services.mark(service.id, FAILED, {"code": "RedeployFailed", "statusCode": 500,
                                                          "message": f"{why}, and deploying again failed: "
                                                                     f"{exc.message}"})
            return
        if endpoint.port != service.scoring_port:
            log.warning("service %s: port %s was taken, now %s", service.id, service.scoring_port, endpoint.port)
        self.store.services.mark(service.id, SUCCEEDED, None, replicas=spec.replicas, scoring_port=endpoint.port)
        self._keys_pushed[service.id] = service.keys_version

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
            except EngineUnavailable:
                continue


def _engine_lost(service: Service) -> bool:
    return bool(service.error) and service.error.get("code") == "EngineLost"  # type: ignore[union-attr]
