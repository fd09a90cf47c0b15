"""Fixtures of the management API tests: a real, empty database for each test, on
SQLite (a WAL file in the test's directory, copied from a migrated template) and on
PostgreSQL (one migrated database for the session, emptied before each test, on a
throwaway cluster started for the session or on the server of
``MOMA_TEST_POSTGRES_URL``), and the Flask test client over ``create_app`` with that
store.

Every test that takes ``store`` (directly or through ``api``) runs once per backend;
``-k sqlite`` or ``-k postgresql`` picks one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask

from management.api import create_app
from management.store import Store

from .helpers import DEFAULT_SCOPE, Api
from .postgres import Database, server_binaries, throwaway_cluster

BACKENDS = ["sqlite", "postgresql"]
OTHER_SCOPE = ("sub-b", "rg-b", "acct-b")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The URL of a database on a server where we may create databases:
    ``MOMA_TEST_POSTGRES_URL`` (e.g. ``postgresql://moma@127.0.0.1:5432/postgres``), or
    a cluster of our own for the session. Without PostgreSQL installed its tests are
    skipped, except in CI, where that is a failure."""
    url = os.environ.get("MOMA_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir = server_binaries()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found: apt-get install -y postgresql, or set MOMA_TEST_POSTGRES_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with throwaway_cluster(bin_dir) as admin_url:
        yield admin_url


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[Database]:
    database = Database(postgres_admin_url)
    database.create()
    yield database
    database.drop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the default account, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "moma.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.accounts.ensure_default()
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "moma.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    database: Database = request.getfixturevalue("postgres_database")
    database.empty()
    yield database.url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.accounts.ensure_default()
    yield store
    store.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_app(store: Store, home: Path) -> Callable[..., Flask]:
    """``create_app`` over the test's store, with settings changed as the test asks; every
    app shares the installation's service-key file, as replicas must."""

    def make(**config: Any) -> Flask:
        return create_app(config={"home": home, "secret_key_path": str(home / "secret.key"), **config}, store=store)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def admin_token(store: Store) -> str:
    secret, _ = store.tokens.create("test-admin", None)
    return secret


@pytest.fixture
def api(app: Flask, admin_token: str) -> Api:
    """The default account, with an admin token."""
    return Api(app.test_client(), admin_token)


@pytest.fixture
def account_token(store: Store) -> str:
    """A token of the default account only."""
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    secret, _ = store.tokens.create("default-user", account.id)
    return secret


@pytest.fixture
def other_account(store: Store) -> tuple[tuple[str, str, str], str]:
    """A second account and a token of its own: (scope, token)."""
    account = store.accounts.create(*OTHER_SCOPE)
    secret, _ = store.tokens.create("b-user", account.id)
    return OTHER_SCOPE, secret


@pytest.fixture
def manifest(api: Api) -> dict[str, Any]:
    """A manifest of one model, in the default account."""
    model = api.register_model()
    return api.register_manifest([model["id"]])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Azurite"]:  # noqa: F821
    """Azurite (the storage emulator) on 127.0.0.1 for the session."""
    from tests.runtime.test_datacollection_blob import Azurite

    server = Azurite(tmp_path_factory.mktemp("azurite-management")).start()
    yield server
    server.stop()
