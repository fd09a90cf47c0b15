"""Fixtures shared by every test package: a run id that labels everything a test
creates on the Docker engine, and the clean-up of all of it at session end."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
import warnings
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
    selector = {"label": f"{TEST_RUN_LABEL}={test_run_id}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for image in client.images.list(filters=selector):
        _remove_image(client, image.id)


def _remove_image(client, image_id: str) -> None:
    """Remove one image; a container another party is still removing may hold it a while."""
    import docker

    deadline = time.monotonic() + 30
    while True:
        try:
            client.images.remove(image_id, force=True)
            return
        except docker.errors.NotFound:  # went with an image removed before it
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or time.monotonic() > deadline:
                warnings.warn(f"test image {image_id[:19]} left behind: {exc.explanation}", stacklevel=1)
                return
            time.sleep(1)


def stop_process_group(proc: "subprocess.Popen[bytes] | None", seconds: float = 15) -> None:
    """SIGTERM to the group a helper server was started in (``start_new_session``), then
    SIGKILL after ``seconds``; nothing when it is gone already."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
