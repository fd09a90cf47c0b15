"""Concurrent registrations of one name get versions 1..N, no gap and no duplicate:
threads through the API, and separate processes on the same database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from management.store import Store
from management.store.database import writing
from management.store.operations import insert_operation
from tests.waiting import wait_for

from ..helpers import DEFAULT_SCOPE, Api, run_in_threads

THREADS, PER_THREAD = 12, 5
PROCESSES, PER_PROCESS = 3, 40
CLAIMERS, OPERATIONS = 4, 120


def assert_gap_free(models: list[dict[str, Any]], expected: int) -> None:
    versions = Counter(model["version"] for model in models)
    assert sorted(versions) == list(range(1, expected + 1)), sorted(versions)
    assert max(versions.values()) == 1
    assert len({model["id"] for model in models}) == expected


def test_threads_registering_one_name(app: Flask, admin_token: str) -> None:
    def register() -> list[dict[str, Any]]:
        api = Api(app.test_client(), admin_token)
        return [api.register_model(name="shared") for _ in range(PER_THREAD)]

    registered = run_in_threads(THREADS, register)

    assert_gap_free(registered, THREADS * PER_THREAD)
    listed = [model for page in Api(app.test_client(), admin_token).pages("/models", {"name": "shared"})
              for model in page["value"]]
    assert sorted(listed, key=lambda m: m["version"]) == sorted(registered, key=lambda m: m["version"])


def test_threads_creating_manifests_and_images_of_one_name(app: Flask, admin_token: str) -> None:
    api = Api(app.test_client(), admin_token)
    model = api.register_model()

    def register() -> list[dict[str, Any]]:
        client = Api(app.test_client(), admin_token)
        manifests = [client.register_manifest([model["id"]], name="shared") for _ in range(3)]
        for manifest in manifests:
            client.create_image(manifest["id"], name="shared")
        return manifests

    manifests = run_in_threads(6, register)

    assert_gap_free(manifests, 18)
    images = [image for page in api.pages("/images", {"count": "7"}) for image in page["value"]]
    assert_gap_free(images, 18)


WORKER = textwrap.dedent("""
    import sys
    from management.store import Store

    url, count = sys.argv[1], int(sys.argv[2])
    store = Store(url)
    account = store.accounts.find("default", "default", "default")
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        store.models.register(account.id, {"name": "shared", "url": "https://x/m", "mimeType": "a", "tags": ["p"]})
    store.close()
""")


def run_processes(command: list[str], count: int) -> list[str]:
    """``count`` Python processes running ``command`` (a script and its arguments), let
    go together once each printed "ready"; what each printed last."""
    processes = [subprocess.Popen([sys.executable, "-c", *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3])
                 for _ in range(count)]
    outputs = []
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:  # all at once: each is waiting on its stdin
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            output, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors
            outputs.append(output.strip())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    return outputs


def test_processes_registering_one_name(store: Store, database_url: str) -> None:
    run_processes([WORKER, database_url, str(PER_PROCESS)], PROCESSES)

    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    page = store.models.list(account.id, name="shared", limit=1000)
    assert_gap_free(page.items, PROCESSES * PER_PROCESS)
    assert len(store.models.list(account.id, tag="p", limit=1000).items) == PROCESSES * PER_PROCESS


@pytest.mark.parametrize("kind", ["model", "manifest"])
def test_versions_count_per_account(api: Api, other_account, kind: str) -> None:
    scope, token = other_account
    as_b = api.as_account(scope, token)
    versions = []
    for client in (api, as_b, api):
        registered = client.register_model(name="shared")
        if kind == "manifest":
            registered = client.register_manifest([registered["id"]], name="shared")
        versions.append(registered["version"])

    assert versions == [1, 1, 2]


CLAIMER = textwrap.dedent("""
    import sys
    from management.store import Store
    from management.store.database import writing
    from management.store.operations import _running_of
    from management.store.common import now_ms

    url, name, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store(url)
    account = store.accounts.find("default", "default", "default")
    print("ready", flush=True)
    sys.stdin.readline()
    claims = most = 0
    while True:
        operation = store.operations.claim(f"{name}-{claims}", 60_000, 3, ("Image",), account_limit=limit)
        if operation is None:
            with store.engine.connect() as connection:
                if connection.execute(_running_of(account.id, ("Image",), now_ms())).scalar_one() == 0:
                    break  # all done, not merely every place taken
            continue
        claims += 1
        with store.engine.connect() as connection:
            most = max(most, connection.execute(_running_of(account.id, ("Image",), now_ms())).scalar_one())
        with writing(store.engine) as connection:
            store.operations.finish(connection, operation.id, operation.lease_owner, "Succeeded")
    print(claims, most, flush=True)
    store.close()
""")


def test_processes_claiming_keep_the_accounts_limit(store: Store, database_url: str) -> None:
    """Workers in separate processes, on one database, taking and ending an account's
    operations as fast as they can: never more of them run at once than its limit."""
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    for _ in range(OPERATIONS):
        with writing(store.engine) as connection:
            insert_operation(connection, operation_id=str(uuid.uuid4()), account_id=account.id,
                             operation_type="Image", resource_kind="images", resource_id=str(uuid.uuid4()))
    outputs = run_processes([CLAIMER, database_url, "claimer", "2"], CLAIMERS)

    claims = [tuple(int(value) for value in output.split()) for output in outputs]
    assert sum(count for count, _ in claims) == OPERATIONS
    assert max(most for _, most in claims) <= 2


REMEMBER = textwrap.dedent("""
    import sys, uuid
    from management.store import Store

    url, count = sys.argv[1], int(sys.argv[2])
    store = Store(url)
    print("ready", flush=True)
    sys.stdin.readline()
    print(",".join(store.meta.remember(f"fact-{number}", uuid.uuid4().hex) for number in range(count)))
    store.close()
""")


def test_processes_starting_together_remember_one_value(store: Store, database_url: str) -> None:
    """The installation's facts (its id, the service-key fingerprint) are written by the
    first of the processes that start together (API replicas, their workers, `moma
    worker`s); on PostgreSQL the others' inserts conflict, and must take its value, not fail."""
    outputs = run_processes([REMEMBER, database_url, "40"], 4)

    assert len(set(outputs)) == 1, outputs
    assert outputs[0].split(",") == [store.meta.remember(f"fact-{number}", "later") for number in range(40)]


def test_an_insert_that_conflicts_takes_the_value_that_won(store: Store, database_url: str) -> None:
    """The race made certain: another process inserted the fact and has not committed when
    this one looks (it finds none) and inserts; it waits on the other's row, then gets the
    unique key's conflict once that commits, and must answer the committed value."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): no insert can conflict")
    import sqlalchemy as sa

    from management.store.tables import meta

    with store.engine.connect() as holder:
        transaction = holder.begin()
        holder.execute(sa.insert(meta).values(key="fact-0", value="first"))
        process = subprocess.Popen([sys.executable, "-c", REMEMBER, database_url, "1"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=Path(__file__).resolve().parents[3])
        try:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
            process.stdin.write("go\n")
            process.stdin.flush()

            def waiting_on_the_row() -> bool:
                with store.engine.connect() as look:
                    return bool(look.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())
            wait_for(waiting_on_the_row, timeout=30, interval=0.02, what="the process's insert to wait on ours")
            transaction.commit()
            output, errors = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, errors
    assert output.strip() == "first"
