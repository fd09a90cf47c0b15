"""``create_app`` on its own store: defaults, then ``MOMA_*`` environment, then the
caller's config; the schema migrated and the default account there on first start; what
the views share made once, with the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from management.api import create_app
from management.api.extensions import get_artifacts, get_cipher, get_engines, get_store
from management.artifacts import ArtifactStore
from management.config import Settings
from management.engines.factory import Engines
from management.service_keys import KeyCipher
from management.store import Store

from ..helpers import Api, model_body


def test_first_start_makes_the_database_in_home(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    app = create_app(config={"home": home, "auth": False})
    api = Api(app.test_client(), None)

    assert api.ok("POST", "/models", model_body())["version"] == 1
    assert (home / "moma.db").exists()
    store = app.extensions["moma.store"]
    assert [account.name for account in store.accounts.list()] == ["default"]
    store.close()


def test_a_restart_keeps_the_data(tmp_path: Path) -> None:
    first = create_app(config={"home": tmp_path, "auth": False})
    Api(first.test_client(), None).register_model(name="kept")
    first.extensions["moma.store"].close()

    second = create_app(config={"home": tmp_path, "auth": False})

    assert [m["name"] for m in Api(second.test_client(), None).ok("GET", "/models")["value"]] == ["kept"]
    assert len(second.extensions["moma.store"].accounts.list()) == 1
    second.extensions["moma.store"].close()


def test_database_url_selects_the_store(database_url: str, tmp_path: Path) -> None:
    app = create_app(config={"home": tmp_path, "database_url": database_url, "auth": False})
    store: Store = app.extensions["moma.store"]

    assert store.url == database_url
    assert Api(app.test_client(), None).register_model()["version"] == 1
    store.close()


def test_environment_then_config(tmp_path: Path) -> None:
    env = {"MOMA_MAX_BODY_BYTES": "500", "MOMA_AUTH": "false", "MOMA_WORKER_LEASE_SECONDS": "2.5"}

    settings = Settings.load(env, home=tmp_path, max_body_bytes=600)

    assert (settings.max_body_bytes, settings.auth, settings.worker_lease_seconds) == (600, False, 2.5)
    with pytest.raises(ValueError, match="MOMA_AUTH"):
        Settings.load({"MOMA_AUTH": "maybe"})
    with pytest.raises(TypeError, match="unknown settings"):
        Settings.load({}, max_bodybytes=1)


def test_the_app_holds_what_its_views_share_from_the_start(tmp_path: Path) -> None:
    """Made once by ``create_app`` (views never build them), one per app."""
    first = create_app(config={"home": tmp_path, "auth": False})
    second = create_app(config={"home": tmp_path, "auth": False})

    with first.app_context():
        shared = (get_store(), get_engines(), get_cipher(), get_artifacts())
    assert isinstance(shared[1], Engines) and isinstance(shared[2], KeyCipher)
    assert isinstance(shared[3], ArtifactStore) and shared[3].root == Settings.load(home=tmp_path).artifact_dir
    assert (tmp_path / "secret.key").exists()
    with second.app_context():
        assert all(a is not b for a, b in zip(shared, (get_store(), get_engines(), get_cipher(), get_artifacts())))
    for app in (first, second):
        app.extensions["moma.store"].close()
