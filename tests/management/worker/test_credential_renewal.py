"""The worker renews a blob-collecting service's storage credential before it runs
out: a redeploy (same image and settings, a new deployment) once two thirds of the
credential's lifetime have passed since the deployment that issued it; never while a
deployment is under way; a failed renewal again after a twelfth of the lifetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from management.config import Settings
from management.store import Store, tables
from management.store.database import writing
from management.worker.credential_renewal import CredentialRenewal

from ..helpers import Api, create_service, succeeded_image

LIFETIME = 60.0
NOW = datetime.now(timezone.utc)
STORAGE = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/x;"


@pytest.fixture
def settings(home) -> Settings:
    return Settings.load(home=home, data_collection_storage=STORAGE, data_collection_sas_seconds=LIFETIME)


def deployments(api: Api, service_id: str) -> list[dict[str, Any]]:
    return api.ok("GET", "/deployments", params={"serviceId": service_id})


def made_ago(store: Store, deployment: dict[str, Any], seconds: float) -> None:
    """As if the deployment had been asked for ``seconds`` before NOW."""
    when = (NOW - timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with writing(store.engine) as connection:
        connection.execute(sa.update(tables.deployments).where(tables.deployments.c.id == deployment["id"])
                           .values(created_at=when))


def finish(store: Store, state: str) -> None:
    """The worker's part: the oldest service operation ends ``state``."""
    operation = store.operations.claim("w", 60_000, 3, ("Service",))
    assert operation is not None
    store.services.complete(operation.id, "w", operation.resource_id, operation.payload["generation"], state,
                            scoring_host="127.0.0.1", scoring_port=1, replicas=1)


def renew(store: Store, settings: Settings) -> list[str]:
    return CredentialRenewal(store, settings, "test", clock=lambda: NOW).renew_once()


def service_of(api: Api, response) -> str:  # type: ignore[no-untyped-def]
    operation = api.ok("GET", "/operations/" + response.headers["Operation-Location"].rsplit("/", 1)[-1])
    return operation["resourceLocation"].rsplit("/", 1)[-1]


def test_renewed_before_it_runs_out_and_retried_after_a_failure(api: Api, store: Store, settings: Settings):
    image = succeeded_image(api, store)
    service_id = service_of(api, create_service(api, image["id"], name="collects",
                                                dataCollection={"storageEnabled": True}))
    create_service(api, image["id"], name="quiet")  # collects nothing: never renewed
    [first] = deployments(api, service_id)
    made_ago(store, first, 50)
    assert renew(store, settings) == []  # still deploying: that brings a credential
    finish(store, "Succeeded")
    finish(store, "Succeeded")

    made_ago(store, first, 39)
    assert renew(store, settings) == []
    made_ago(store, first, 41)
    assert renew(store, settings) == [service_id]
    assert renew(store, settings) == []  # the renewal is queued
    renewal = deployments(api, service_id)[-1]
    assert renewal["imageId"] == image["id"] and renewal["status"] == "NotStarted"
    assert api.ok("GET", f"/services/{service_id}")["dataCollection"]["storageEnabled"] is True

    finish(store, "Failed")
    made_ago(store, renewal, 4)
    assert renew(store, settings) == []
    made_ago(store, renewal, 6)
    assert renew(store, settings) == [service_id]
    finish(store, "Succeeded")
    latest = deployments(api, service_id)[-1]
    made_ago(store, latest, 39)
    assert renew(store, settings) == []
    assert len(deployments(api, service_id)) == 3


def test_nothing_to_renew_without_blob_storage(api: Api, store: Store, home):
    image = succeeded_image(api, store)
    create_service(api, image["id"], name="collects", dataCollection={"storageEnabled": True})
    finish(store, "Succeeded")
    made_ago(store, api.ok("GET", "/deployments")[0], 3600)
    assert renew(store, Settings.load(home=home, data_collection_sas_seconds=LIFETIME)) == []


def test_a_deleted_service_is_not_renewed(api: Api, store: Store, settings: Settings):
    image = succeeded_image(api, store)
    service_id = service_of(api, create_service(api, image["id"], name="collects",
                                                dataCollection={"storageEnabled": True}))
    finish(store, "Succeeded")
    made_ago(store, deployments(api, service_id)[0], 3600)
    assert api.call("DELETE", f"/services/{service_id}").status_code == 200
    assert renew(store, settings) == []
