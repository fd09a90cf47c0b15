"""Renewal of the storage credential of services that collect model data to blob
storage (``collection_storage.py``), by one worker at a time (a named lease).

A service's SAS lives ``MOMA_DATA_COLLECTION_SAS_SECONDS`` from the deployment that
issued it; once two thirds of that have passed the service is redeployed — same image,
same settings, a new deployment through the engine's zero-downtime update, with a new
SAS in its environment. The age is counted from when the deployment was asked for,
which is never after its credential was issued, so it is never under-estimated. No
renewal starts while a deployment is under way (it brings a credential of its own);
one that failed is tried again after a twelfth of the lifetime.

Why a redeploy rather than a file the runtime re-reads: it is the same path on every
engine. The local engine could rewrite a mounted file, but a swarm service's files
are Docker secrets, which change only by a rolling update anyway.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ..config import Settings
from ..data_collection import storage_enabled
from ..store import Service, Store
from ..store.operations import FAILED, NOT_STARTED, RUNNING, SUCCEEDED

log = logging.getLogger("moma.worker")
LEASE = "credential-renewal"
RENEW_AFTER = 2 / 3
RETRY_AFTER = 1 / 12


class CredentialRenewal:
    def __init__(self, store: Store, settings: Settings, owner: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner
        self.clock = clock
        lifetime = timedelta(seconds=settings.data_collection_sas_seconds)
        self.renew_after, self.retry_after = lifetime * RENEW_AFTER, lifetime * RETRY_AFTER
        self.interval = min(settings.reconcile_seconds, self.retry_after.total_seconds())

    def run(self, stop: threading.Event) -> None:
        if not self.settings.data_collection_storage:
            return
        while not stop.wait(self.interval):
            try:
                if self.store.leases.hold(LEASE, self.owner, int(self.interval * 3000)):
                    self.renew_once()
            except Exception:  # keep renewing: one bad pass must not end the thread
                log.exception("credential renewal pass failed")

    def renew_once(self) -> list[str]:
        """Queue the renewals that are due; the ids of their services."""
        if not self.settings.data_collection_storage:
            return []
        now, renewed = self.clock(), []
        for service in self.store.services.all_live():
            if service.state in (SUCCEEDED, FAILED) and storage_enabled(service) and self._due(service, now):
                log.info("service %s: renewing its data collection credential", service.id)
                self.store.services.update(service.account_id, service.id, image_id=service.image_id,
                                           settings=service.settings)
                renewed.append(service.id)
        return renewed

    def _due(self, service: Service, now: datetime) -> bool:
        deployments = self.store.services.deployments(service.account_id, service.id)
        if not deployments or any(d["status"] in (NOT_STARTED, RUNNING) for d in deployments):
            return False
        succeeded = [d for d in deployments if d["status"] == SUCCEEDED]
        if not succeeded or now - _created(succeeded[-1]) < self.renew_after:
            return False
        return deployments[-1]["status"] != FAILED or now - _created(deployments[-1]) >= self.retry_after


def _created(deployment: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(deployment["createdAt"])
