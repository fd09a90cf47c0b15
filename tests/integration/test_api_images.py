"""Image creation through the management API, on a real `moma serve` and the real
Docker engine: the whole way, and a server killed in the middle of a build."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.api_flow import create_image, register_iris, wait_operation
from tests.conftest import TEST_RUN_LABEL
from tests.server import MomaServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def server_env(test_run_id: str) -> dict[str, str]:
    return {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_LEASE_SECONDS": "3",
            "MOMA_WORKER_POLL_SECONDS": "0.2"}


def test_image_built_through_the_api_scores(tmp_path: Path, iris_project: Path, server_env, docker_client, run_image):
    server = MomaServer(tmp_path / "home", server_env).start()
    try:
        client = server.client()
        registered = register_iris(client, iris_project)
        operation_id = create_image(client, registered["manifest"]["id"])
        operation = wait_operation(client, operation_id)

        assert operation["state"] == "Succeeded", operation
        image_id = operation["resourceLocation"].rsplit("/", 1)[-1]
        image = client.call("GET", f"/images/{image_id}").json()
        assert image["creationState"] == "Succeeded"
        assert image["imageLocation"] == "default/irisimg:1"
        assert image["manifest"]["id"] == registered["manifest"]["id"]
        log = client.get_url(image["imageBuildLogUri"]).text
        assert "Successfully tagged default/irisimg:1" in log

        labels = docker_client.images.get("default/irisimg:1").labels
        assert json.loads(labels["moma.models"]) == [
            {"id": registered["model"]["id"], "name": "iris", "version": 1}]
        assert labels["moma.manifest.id"] == registered["manifest"]["id"]
        service = run_image("default/irisimg:1")
        service.wait_until_answering("/")
        assert requests.post(service.url + "/score", json={"data": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10).json() == [
            "setosa"]
    finally:
        server.stop()


def test_failed_build_points_at_its_log(tmp_path: Path, iris_project: Path, server_env):
    (iris_project / "requirements.txt").write_text("moma-no-such-package-anywhere==1.0\n")
    server = MomaServer(tmp_path / "home", server_env).start()
    try:
        client = server.client()
        operation = wait_operation(client, create_image(client, register_iris(client, iris_project)["manifest"]["id"]))

        assert operation["state"] == "Failed"
        assert "moma-no-such-package-anywhere" in operation["error"]["message"]
        log_message = operation["error"]["details"][0]["message"]
        assert "/buildLog?api-version=" in log_message
        image_id = operation["resourceLocation"].rsplit("/", 1)[-1]
        assert client.call("GET", f"/images/{image_id}").json()["creationState"] == "Failed"
        log = client.call("GET", f"/images/{image_id}/buildLog").text
        assert "no distribution found" in log
    finally:
        server.stop()


def test_server_killed_during_a_build_finishes_it_after_restart(tmp_path: Path, iris_project: Path, server_env):
    home = tmp_path / "home"
    server = MomaServer(home, server_env).start()
    client = server.client()
    operation_id = create_image(client, register_iris(client, iris_project)["manifest"]["id"])
    running = wait_operation(client, operation_id, timeout=60, until=("Running", "Succeeded", "Failed"))
    assert running["state"] == "Running", "the build should still be going when the server is killed"
    server.kill()

    restarted = MomaServer(home, server_env, port=server.port).start()
    try:
        client = restarted.client()
        started = time.monotonic()
        operation = wait_operation(client, operation_id, timeout=300)
        assert operation["state"] == "Succeeded", operation
        image_id = operation["resourceLocation"].rsplit("/", 1)[-1]
        assert client.call("GET", f"/images/{image_id}").json()["creationState"] == "Succeeded"
        assert time.monotonic() - started < 240
    finally:
        restarted.stop()
