"""What a service's data collection setting becomes for its containers: the runtime's
environment and the local sink's host directory, or, with blob storage configured, a
SAS on the service's own container and never the operator's connection string."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from management.cli.service_data import since_value
from management.config import Settings
from management.data_collection import collection_url, local_data_dir, open_storage
from management.engines.environment import service_environment
from management.store import Service


def service(enabled: bool) -> Service:
    return Service(id="5f0c", account_id=1, name="iris", image_id="img-9", compute="local",
                   settings={"dataCollection": {"storageEnabled": enabled, "eventHubEnabled": False}}, state="Running",
                   error=None, scoring_host=None, scoring_port=None, replicas=1, primary_key="", secondary_key="",
                   keys_version=1, generation=1, deleted=False, created_at="", updated_at="")


def test_local_sink_by_default(tmp_path: Path):
    settings = Settings(home=tmp_path)
    on = service(True)
    env = service_environment(on.settings, service_name=on.name, image_id=on.image_id)
    assert env["AML_MODEL_DC_STORAGE_ENABLED"] == "true" and "AML_MODEL_DC_STORAGE" not in env
    assert (env["MOMA_SERVICE_NAME"], env["MOMA_IMAGE_ID"]) == ("iris", "img-9")
    assert open_storage(settings) is None and collection_url(on, None) is None
    assert local_data_dir(settings, on) == tmp_path / "services" / "5f0c" / "data"
    assert local_data_dir(settings, service(False)) is None


def test_blob_storage_when_a_connection_string_is_configured(tmp_path: Path, azurite):
    from tests.runtime.test_datacollection_blob import ACCOUNT_KEY

    settings = Settings.load({"MOMA_DATA_COLLECTION_STORAGE": azurite.connection_string}, home=tmp_path)
    storage = open_storage(settings)
    assert storage is not None
    given = collection_url(service(True), storage)
    assert service_environment({}, service_name="iris", image_id="img-9", storage_url=given)[
        "AML_MODEL_DC_STORAGE"] == given
    assert given.startswith(f"http://127.0.0.1:{azurite.port}/devstoreaccount1/modeldata-5f0c?")
    assert "sig=" in given and ACCOUNT_KEY not in given and "AccountKey" not in given
    assert local_data_dir(settings, service(True)) is None
    assert collection_url(service(False), storage) is None
    storage.close()


def test_cli_since_takes_iso_text_or_a_duration_ago():
    now = datetime(2026, 11, 27, 5, 0, 0, tzinfo=timezone.utc)
    assert since_value("90m", now) == "2026-11-27T03:30:00.000Z"
    assert since_value("1d", now) == "2026-11-26T05:00:00.000Z"
    assert since_value("2026-11-27T04:00:00Z", now) == "2026-11-27T04:00:00Z"
    assert since_value(None) is None
