"""Fixtures shared by every test package: a run id that labels everything a test
creates on the Docker engine, and the clean-up of all of it at session end."""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # its reaper image cannot be pulled here

TEST_RUN_LABEL = "moma.test-run"


@pytest.fixture(scope="session")
def test_run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def docker_client(test_run_id: str) -> Iterator["docker.DockerClient"]:  # noqa: F821
    import docker

    client = docker.from_env()
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"these tests need a Docker engine (run `make setup`): {exc}")
    yield client
    _remove_labelled(client, test_run_id)
    client.close()


def _remove_labelled(client, test_run_id: str) -> None:
    import docker

    selector = {"label": f"{TEST_RUN_LABEL}={test_run_id}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for image in client.images.list(filters=selector):
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.NotFound:  # went with an image removed before it
            pass
