"""A moma worker's insides over a real SQLite store and the real Docker engine, without
the API: images and services are written to the store as the API writes them, their
operations run with ``Worker.run_once`` and the reconciler's passes are called by the
test, so that what a test breaks is seen at a point it chooses."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from management.config import Settings
from management.engines import EngineError
from management.engines.factory import Engines
from management.service_keys import KeyCipher, new_service_key
from management.store import Compute, Service, Store
from management.store.computes import LOCAL
from management.worker import Worker
from management.worker.reconciler import Reconciler
from management.worker.service_deployments import Deployer, ServiceDeployments
from tests.conftest import TEST_RUN_LABEL

WORKER = "test-worker"


class WorkerWorld:
    def __init__(self, home: Path, installation: str, test_run_id: str, **settings: Any) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(home=home, worker_poll_seconds=0.1, reconcile_seconds=0.2, service_ready_seconds=60,
                                 image_labels=f"{TEST_RUN_LABEL}={test_run_id}", **settings)
        self.store = Store(self.settings.db_url)
        self.store.migrate()
        self.account = self.store.accounts.ensure_default()
        self.engines = Engines(self.settings, installation)
        self.cipher = KeyCipher(self.settings.secret_key_file)
        self.deployer = Deployer(self.settings, self.store, self.engines, self.cipher)
        self.worker = Worker(self.settings, self.store, {"Service": ServiceDeployments(self.deployer)}, WORKER)
        self.reconciler = Reconciler(self.deployer, WORKER, self.settings.reconcile_seconds)
        self._services: list[str] = []

    def add_compute(self, name: str, docker_host: str, kind: str = "local") -> None:
        self.store.computes.add(self.account.id, name, kind, docker_host)

    def add_image(self, reference: str, name: str = "img") -> str:
        """An image record whose build succeeded with ``reference`` as its location."""
        manifest = {"id": str(uuid.uuid4()), "name": name}
        image, _ = self.store.images.create(self.account.id, {"name": name, "imageType": "Docker"}, manifest,
                                            "/logs/{id}")
        operation = self.store.operations.claim(WORKER, 60_000, 3)
        assert operation is not None and operation.resource_id == image["id"]
        assert self.store.images.complete(operation.id, WORKER, image["id"], "Succeeded", image_location=reference)
        return image["id"]

    def add_service(self, image_id: str, compute: str = "local", **settings: Any) -> Service:
        """A service created as the API creates it, deployed by the worker."""
        service_id = str(uuid.uuid4())
        self.store.services.create(
            self.account.id, service_id=service_id, name=f"s{service_id[:8]}", image_id=image_id, compute=compute,
            settings={"numReplicas": 1, **settings}, primary_key=self.cipher.encrypt(new_service_key(), service_id),
            secondary_key=self.cipher.encrypt(new_service_key(), service_id))
        self._services.append(service_id)
        while self.worker.run_once():
            pass
        return self.service(service_id)

    def service(self, service_id: str) -> Service:
        service = self.store.services.by_id(service_id)
        assert service is not None
        return service

    def engine_name(self, service: Service) -> str:
        """The container / swarm service name its engine gives the service."""
        return self.deployer.workload(service).name

    def close(self) -> None:
        local = self.engines.for_compute(Compute(LOCAL, "local"))
        for service_id in self._services:
            try:
                self.deployer.engine(self.service(service_id)).remove(service_id)
            except EngineError:  # a compute the test broke; its containers are on this engine too
                local.remove(service_id)
        self.store.close()
