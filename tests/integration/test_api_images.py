"""Image creation through the management API, on a real `moma serve` and the real
Docker engine: the whole way, a server killed in the middle of a build, and image tags
that no other build (in another account, or another installation) can move."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from bench.api_flow import create_image, register_iris, upload, wait_operation
from bench.moma_server import MomaServer
from tests.conftest import TEST_RUN_LABEL
from tests.services_flow import create_service, score, service_containers, wait_until_it_scores

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
        location = image["imageLocation"]
        assert re.fullmatch(rf"default-[0-9a-f]{{8}}/irisimg:1-{image_id.replace('-', '')[:12]}", location), location
        assert image["manifest"]["id"] == registered["manifest"]["id"]
        log = client.get_url(image["imageBuildLogUri"]).text
        assert f"Successfully tagged {location}" in log

        labels = docker_client.images.get(location).labels
        assert json.loads(labels["moma.models"]) == [
            {"id": registered["model"]["id"], "name": "iris", "version": 1}]
        assert labels["moma.manifest.id"] == registered["manifest"]["id"]
        service = run_image(location)
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


def register_driver(client, directory: Path, name: str, answer: str) -> str:
    """A manifest whose driver answers ``answer`` to every request; its id."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "score.py").write_text(f"def init():\n    pass\n\n\ndef run(data):\n    return {answer!r}\n")
    return client.call("POST", "/manifests", json={
        "name": name, "driverProgram": "driver", "targetRuntime": {"runtimeType": "Python", "properties": {}},
        "assets": [{"id": "driver", "url": upload(client, directory / "score.py"), "mimeType": "application/x-python"}],
    }).json()["id"]


def build(client, directory: Path, name: str, answer: str) -> dict:
    operation = wait_operation(client, create_image(client, register_driver(client, directory, name, answer), name))
    assert operation["state"] == "Succeeded", operation
    return client.call("GET", f"/images/{operation['resourceLocation'].rsplit('/', 1)[-1]}").json()


def test_images_whose_names_differ_by_case_keep_their_own_code_through_a_redeploy(tmp_path: Path, server_env,
                                                                                     docker_client):
    server = MomaServer(tmp_path / "home", {**server_env, "MOMA_RECONCILE_SECONDS": "1"}).start()
    try:
        client = server.client()
        upper = build(client, tmp_path / "upper", "rt-Case", "upper")
        created = create_service(client, upper["id"], "cased")
        service = client.call("GET", f"/services/{created['resourceLocation'].rsplit('/', 1)[-1]}").json()
        key = client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
        assert score(service["scoringUri"], key, {}).json() == "upper"

        lower = build(client, tmp_path / "lower", "rt-case", "lower")
        for container in service_containers(docker_client, service['id']):
            container.remove(force=True)
        assert wait_until_it_scores(client, service, key, {}).json() == "upper", "the redeploy runs its own image"

        assert upper["imageLocation"] != lower["imageLocation"]
        assert docker_client.images.get(upper["imageLocation"]).id != docker_client.images.get(
            lower["imageLocation"]).id
        client.call("DELETE", f"/services/{service['id']}")
    finally:
        server.stop()


def test_two_installations_on_one_engine_keep_their_own_tags(tmp_path: Path, server_env, docker_client):
    built = {}
    for installation in ("first", "second"):
        server = MomaServer(tmp_path / installation, server_env).start()
        try:
            image = build(server.client(), tmp_path / f"{installation}-driver", "twin", installation)
        finally:
            server.stop()
        built[installation] = (image["imageLocation"], docker_client.images.get(image["imageLocation"]).id)

    (first, first_id), (second, second_id) = built["first"], built["second"]
    assert first != second
    assert docker_client.images.get(first).id == first_id != second_id, "the second build left the first one's tag"
