"""Service operations: deploy a generation of a service on its engine, delete it, or
push new keys; the outcome is recorded on the service, its deployment and the
operation together."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .. import tracing
from ..collection_storage import CollectionStorage, StorageError
from ..config import Settings
from ..data_collection import collection_url, local_data_dir, open_storage
from ..engines import Engine, EngineError, Workload
from ..engines.environment import service_environment
from ..engines.factory import Engines
from ..quantities import parse_cpu, parse_memory
from ..service_keys import KeyCipher, key_hash
from ..service_settings import replicas_of
from ..service_telemetry import destination
from ..store import Operation, Service, Store
from ..store.database import writing
from ..store.operations import CANCELLED, FAILED, SUCCEEDED

log = logging.getLogger("moma.worker")
LOG_LINES = 30


class Deployer:
    """From a stored service to what its engine needs."""

    def __init__(self, settings: Settings, store: Store, engines: Engines, cipher: KeyCipher) -> None:
        self.settings = settings
        self.store = store
        self.engines = engines
        self.cipher = cipher
        self._storage: CollectionStorage | None = None
        self._storage_lock = threading.Lock()

    def engine(self, service: Service) -> Engine:
        compute = self.store.computes.get(service.account_id, service.compute)
        if compute is None:
            raise EngineError(f"compute {service.compute} no longer exists")
        return self.engines.for_compute(compute)

    def key_hashes(self, service: Service) -> tuple[str, ...]:
        return tuple(key_hash(self.cipher.decrypt(value, service.id))
                     for value in (service.primary_key, service.secondary_key))

    def workload(self, service: Service, replicas: int | None = None) -> Workload:
        """What the engine runs for the service's current generation."""
        account = self.store.accounts.get(service.account_id)
        image = self.store.images.get(service.account_id, service.image_id)
        if account is None or image is None or not image.get("imageLocation"):
            raise EngineError(f"image {service.image_id} of service {service.name} is not available")
        reservation = service.settings.get("containerResourceReservation") or {}
        try:
            storage_url = collection_url(service, self.storage())
        except StorageError as exc:
            raise EngineError(exc.message) from exc
        env = service_environment(service.settings, service_name=service.name, image_id=service.image_id,
                                  storage_url=storage_url, telemetry=destination(service.settings, self.settings),
                                  service_id=service.id)
        return Workload(
            service_id=service.id, name=f"moma-{account.name}-{service.name}-{service.id[:6]}",
            image=image["imageLocation"], generation=service.generation,
            replicas=replicas or desired_replicas(service),
            cpu=float(parse_cpu(reservation["cpu"])) if "cpu" in reservation else None,
            memory=parse_memory(reservation["memory"]) if "memory" in reservation else None,
            env=env, key_hashes=self.key_hashes(service), data_dir=local_data_dir(self.settings, service),
            labels={"moma.account": account.name, "moma.service-name": service.name,
                    **self.settings.extra_image_labels()},
            port=service.scoring_port, ready_seconds=self.settings.service_ready_seconds,
        )

    def storage(self) -> CollectionStorage | None:
        """The operator's storage account, opened at its first use (a bad setting then
        fails the deployments that need it, with the reason)."""
        with self._storage_lock:
            if self._storage is None:
                self._storage = open_storage(self.settings)
            return self._storage


def desired_replicas(service: Service) -> int:
    """``numReplicas``; for an autoscaled service, the count the autoscaler last set
    (kept across updates and redeploys), brought within the autoscaler's bounds."""
    scaler = service.settings.get("autoScaler") or {}
    if scaler.get("autoscaleEnabled") and service.replicas:
        return min(int(scaler["maxReplicas"]), max(int(scaler["minReplicas"]), service.replicas))
    return replicas_of(service.settings)


class ServiceDeployments:
    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.store = deployer.store

    def __call__(self, operation: Operation, worker: str) -> None:
        service = self.store.services.by_id(operation.resource_id)
        payload = operation.payload or {}
        action = payload.get("action")
        if service is None:
            self._end(operation, worker, FAILED, _error("NotFound", "the service no longer exists"))
        elif action == "delete":
            self._delete(operation, worker, service)
        elif action == "keys":
            self._push_keys(operation, worker, service)
        elif action == "deploy":
            self._deploy(operation, worker, service, int(payload["generation"]))
        else:
            self._end(operation, worker, FAILED, _error("InternalServerError", f"unknown service action {action!r}"))

    def _deploy(self, operation: Operation, worker: str, service: Service, generation: int) -> None:
        if service.deleted or service.generation != generation:
            self.store.services.complete(operation.id, worker, service.id, generation, CANCELLED,
                                         error=_error("Superseded", "a newer update or a delete replaced this one"))
            return
        self.store.services.start(service.id, generation)
        try:
            with tracing.span("deploy: workload", {"moma.service.id": service.id, "moma.generation": generation}):
                workload = self.deployer.workload(service)
            with tracing.span("deploy: engine", {"moma.compute": service.compute, "moma.replicas": workload.replicas}):
                endpoint = self.deployer.engine(service).deploy(workload)
        except EngineError as exc:
            log.warning("service %s generation %d failed: %s", service.id, generation, exc.message)
            self.store.services.complete(operation.id, worker, service.id, generation, FAILED,
                                         error=_error("DeploymentFailed", exc.message, exc.logs))
            return
        self.store.services.complete(operation.id, worker, service.id, generation, SUCCEEDED,
                                     scoring_host=endpoint.host, scoring_port=endpoint.port, replicas=workload.replicas)
        log.info("service %s generation %d ready at %s", service.id, generation, endpoint.base_url)

    def _delete(self, operation: Operation, worker: str, service: Service) -> None:
        try:
            self.deployer.engine(service).remove(service.id)
        except EngineError as exc:
            self._end(operation, worker, FAILED, _error("DeleteFailed", exc.message))
            return
        self._end(operation, worker, SUCCEEDED)

    def _push_keys(self, operation: Operation, worker: str, service: Service) -> None:
        if service.deleted:
            self._end(operation, worker, CANCELLED, _error("Superseded", "the service was deleted"))
            return
        try:
            self.deployer.engine(service).set_keys(service.id, self.deployer.key_hashes(service), service.generation)
        except EngineError as exc:
            self._end(operation, worker, FAILED, _error("KeysNotApplied", exc.message))
            return
        self._end(operation, worker, SUCCEEDED)

    def _end(self, operation: Operation, worker: str, state: str, error: dict[str, Any] | None = None) -> None:
        with writing(self.store.engine) as connection:
            self.store.operations.finish(connection, operation.id, worker, state, error)


def _error(code: str, message: str, logs: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "statusCode": 500}
    lines = [line for line in logs.splitlines() if line.strip()][-LOG_LINES:]
    if lines:
        error["details"] = [{"code": "ContainerLog", "message": line} for line in lines]
    return error


