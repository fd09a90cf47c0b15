"""The worker's side of autoscaling, without Docker: which services the autoscaler
looks at, where the replica count it sets is kept, and how many replicas a deploy
asks for afterwards (the real thing on a swarm: ``tests/integration/test_services_swarm.py``)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from management.engines import EngineError
from management.service_keys import KeyCipher
from management.store import Service, Store
from management.store.operations import SUCCEEDED
from management.worker.autoscaling import ServiceAutoscaling
from management.worker.reconciler import Reconciler
from management.worker.service_deployments import Deployer, desired_replicas

AUTOSCALED = {"autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 4,
                             "refreshPeriodInSeconds": 1, "targetUtilization": 70}}
FIXED = {"numReplicas": 2, "autoScaler": {"autoscaleEnabled": False, "minReplicas": 1, "maxReplicas": 10,
                                          "refreshPeriodInSeconds": 1, "targetUtilization": 70}}


class FakeScaler:
    """Records what the autoscaling step asks of the autoscaler; the engine fails for
    the services in ``fail_for``."""

    def __init__(self, fail_for: frozenset[str] = frozenset()) -> None:
        self.observed: list[tuple[str, Any, str]] = []
        self.forgotten: list[str] = []
        self.fail_for = fail_for

    def observe(self, service_id: str, engine: Any, settings: dict[str, Any], key: str) -> None:
        self.observed.append((service_id, engine, key))
        if service_id in self.fail_for:
            raise EngineError("no swarm service runs it")

    def forget(self, service_id: str) -> None:
        self.forgotten.append(service_id)


@pytest.fixture
def cipher(tmp_path: Path) -> KeyCipher:
    return KeyCipher(tmp_path / "secret.key")


@pytest.fixture
def account_id(store: Store) -> int:
    account = store.accounts.ensure_default()
    store.computes.add(account.id, "cluster", "swarm", "")
    return account.id


def new_service(store: Store, cipher: KeyCipher, account_id: int, compute: str, settings: dict[str, Any]) -> Service:
    service_id = uuid.uuid4().hex
    store.services.create(account_id, service_id=service_id, name=f"s{service_id[:8]}", image_id="img",
                          compute=compute, settings=settings, primary_key=cipher.encrypt("the-key", service_id),
                          secondary_key=cipher.encrypt("other", service_id))
    service = store.services.by_id(service_id)
    assert service is not None
    return service


def test_set_replicas_changes_the_count_and_nothing_else(store: Store, cipher: KeyCipher, account_id: int) -> None:
    service = new_service(store, cipher, account_id, "cluster", AUTOSCALED)

    store.services.set_replicas(service.id, 3)

    stored = store.services.by_id(service.id)
    assert stored is not None and stored.replicas == 3
    assert replace(stored, replicas=None) == replace(service, replicas=None)


def test_only_autoscaled_services_on_a_swarm_are_observed_with_their_key(
        store: Store, cipher: KeyCipher, account_id: int) -> None:
    scaler = FakeScaler()
    step = ServiceAutoscaling(Deployer(None, store, None, cipher), scaler)  # type: ignore[arg-type]
    on_swarm = new_service(store, cipher, account_id, "cluster", AUTOSCALED)
    fixed = new_service(store, cipher, account_id, "cluster", FIXED)
    local = new_service(store, cipher, account_id, "local", AUTOSCALED)
    engine = object()

    for service in (on_swarm, fixed, local):
        step(service, engine)

    assert scaler.observed == [(on_swarm.id, engine, "the-key")]
    assert scaler.forgotten == [fixed.id, local.id], "a service no longer autoscaled starts afresh"


def test_an_engine_error_while_autoscaling_does_not_stop_the_pass(
        store: Store, cipher: KeyCipher, account_id: int, caplog: pytest.LogCaptureFixture) -> None:
    failing, next_one = (new_service(store, cipher, account_id, "cluster", AUTOSCALED) for _ in range(2))
    scaler = FakeScaler(fail_for=frozenset({failing.id}))
    step = ServiceAutoscaling(Deployer(None, store, None, cipher), scaler)  # type: ignore[arg-type]
    engine = object()

    with caplog.at_level(logging.WARNING, logger="moma.worker"):
        for service in (failing, next_one):
            step(service, engine)

    assert scaler.observed == [(failing.id, engine, "the-key"), (next_one.id, engine, "the-key")]
    assert [record.getMessage() for record in caplog.records] == [
        f"autoscaler: service {failing.id}: no swarm service runs it"]


def test_a_deploy_keeps_the_autoscaled_count_within_the_bounds(
        store: Store, cipher: KeyCipher, account_id: int) -> None:
    service = new_service(store, cipher, account_id, "cluster", AUTOSCALED)
    assert desired_replicas(service) == 1, "the minimum before the autoscaler ran"
    assert desired_replicas(replace(service, replicas=3)) == 3
    assert desired_replicas(replace(service, replicas=9)) == 4
    bounds_raised = {"autoScaler": {**AUTOSCALED["autoScaler"], "minReplicas": 2}}
    assert desired_replicas(replace(service, replicas=1, settings=bounds_raised)) == 2


def test_a_deploy_of_a_fixed_count_follows_the_settings_not_the_last_count(
        store: Store, cipher: KeyCipher, account_id: int) -> None:
    service = new_service(store, cipher, account_id, "cluster", FIXED)
    assert desired_replicas(replace(service, replicas=3)) == 2, "an update to numReplicas takes effect"


class OneEngine:
    """Engines whose every compute is the same engine."""

    engine = object()

    def for_compute(self, compute: Any) -> object:
        return self.engine

    def all(self) -> list[object]:
        return []


def test_between_passes_the_reconciler_autoscales_the_autoscaled_services_that_run(
        store: Store, cipher: KeyCipher, account_id: int) -> None:
    seen: list[tuple[str, object]] = []
    engines = OneEngine()
    reconciler = Reconciler(Deployer(None, store, engines, cipher), "worker", 5.0,  # type: ignore[arg-type]
                            autoscale=lambda service, engine: seen.append((service.id, engine)))
    running, starting, fixed = (new_service(store, cipher, account_id, "cluster", settings)
                                for settings in (AUTOSCALED, AUTOSCALED, FIXED))
    for service in (running, fixed):
        store.services.mark(service.id, SUCCEEDED, None)

    reconciler.autoscale_once()

    assert seen == [(running.id, engines.engine)], "not one still starting, nor one with a fixed count"
