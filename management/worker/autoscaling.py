"""The reconciler's autoscale step: a service with ``autoScaler.autoscaleEnabled`` on a
``swarm`` compute is observed by the :class:`Autoscaler`, which scales it on its
engine; every replica count it sets is stored on the service (GET shows it, and
updates and redeploys keep it).

The reconciler calls this for each service that runs as it should, in its passes and
between them; the :class:`Autoscaler` acts on a service once per ``refreshPeriodInSeconds``.
"""

from __future__ import annotations

import logging

from ..engines import Engine, EngineError
from ..store import Service
from .autoscaler import Autoscaler
from .service_deployments import Deployer

log = logging.getLogger("moma.worker")


class ServiceAutoscaling:
    def __init__(self, deployer: Deployer, scaler: Autoscaler | None = None) -> None:
        self.deployer = deployer
        self.scaler = scaler or Autoscaler(record=deployer.store.services.set_replicas)

    def __call__(self, service: Service, engine: Engine) -> None:
        if not self._autoscaled(service):
            self.scaler.forget(service.id)
            return
        key = self.deployer.cipher.decrypt(service.primary_key, service.id)  # /metrics asks for a key
        try:
            self.scaler.observe(service.id, engine, service.settings, key)
        except EngineError as exc:  # the next pass tries again; other services must not wait for it
            log.warning("autoscaler: service %s: %s", service.id, exc.message)

    def _autoscaled(self, service: Service) -> bool:
        if not (service.settings.get("autoScaler") or {}).get("autoscaleEnabled"):
            return False
        compute = self.deployer.store.computes.get(service.account_id, service.compute)
        return compute is not None and compute.kind == "swarm"
