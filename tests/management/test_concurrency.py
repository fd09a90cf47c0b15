"""Concurrent registrations of one name get versions 1..N, no gap and no duplicate:
threads through the API, and separate processes on the same database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from management.store import Store

from .helpers import DEFAULT_SCOPE, Api, run_in_threads

THREADS, PER_THREAD = 12, 5
PROCESSES, PER_PROCESS = 3, 40


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


def test_processes_registering_one_name(store: Store, database_url: str) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, database_url, str(PER_PROCESS)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parents[2])
                 for _ in range(PROCESSES)]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:  # all at once: each is waiting on its stdin
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            _, errors = process.communicate(timeout=60)
            assert process.returncode == 0, errors
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

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
