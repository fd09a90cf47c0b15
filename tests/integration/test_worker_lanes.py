"""One account's stuck builds do not stop the others: a real `moma serve` whose worker
has two build slots and one place per account, builds of account ``slow`` whose model
comes from an HTTP server that sends its body a little at a time and never ends, and
meanwhile account ``other``'s build and service operations complete (the service one
while every build slot is held by a stuck build)."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from bench.api_flow import create_image, register_iris, wait_operation
from bench.moma_server import MomaServer
from management.client import ApiClient, Scope
from tests.conftest import TEST_RUN_LABEL
from tests.integration.conftest import EXAMPLE, train
from tests.services_flow import create_service
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]


class EndlessDownload:
    """An HTTP server whose every answer announces 1 GiB and sends 16 KiB every quarter
    of a second (fast enough for any minimum rate) until it is stopped."""

    def __init__(self) -> None:
        stopping, self.open = threading.Event(), 0
        counter = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the http.server interface
                self.send_response(200)
                self.send_header("Content-Length", str(1 << 30))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                with counter:
                    outer.open += 1
                try:
                    while not stopping.wait(0.25):
                        self.wfile.write(b"\0" * 16384)
                        self.wfile.flush()
                except OSError:  # the client gave up
                    pass
                finally:
                    with counter:
                        outer.open -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.stopping = stopping
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/model.pkl"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endless() -> Iterator[EndlessDownload]:
    server = EndlessDownload()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "iris"
    project.mkdir()
    for name in ("score.py", "requirements.txt"):
        shutil.copy(EXAMPLE / name, project / name)
    train(project)
    return project


def account(server: MomaServer, name: str) -> ApiClient:
    server.client().call("POST", "/api/admin/accounts", json={"accountName": name}, account=False)
    return server.client(Scope(account=name))


def stuck_build(client: ApiClient, project: Path, url: str, name: str) -> str:
    """An image of the iris project whose model downloads for ever."""
    return create_image(client, register_iris(client, project, name, model_url=url)["manifest"]["id"], name)


def states(client: ApiClient, operation_ids: list[str]) -> list[str]:
    return sorted(client.call("GET", f"/operations/{operation_id}").json()["state"] for operation_id in operation_ids)


def test_stuck_builds_of_one_account_leave_room_for_the_others(tmp_path: Path, project: Path,
                                                               endless: EndlessDownload, test_run_id: str,
                                                               docker_client):
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_WORKER_BUILD_SLOTS": "2", "MOMA_ACCOUNT_BUILD_SLOTS": "1", "MOMA_SERVICE_READY_SECONDS": "90"}
    server = MomaServer(tmp_path / "home", env).start()
    try:
        slow, other, third = (account(server, name) for name in ("slow", "other", "third"))
        stuck = [stuck_build(slow, project, endless.url, f"stuck{i}") for i in range(3)]
        assert wait_until(lambda: endless.open == 1, timeout=60), "the first stuck build never started its download"

        built = wait_operation(other, create_image(other, register_iris(other, project)["manifest"]["id"]),
                               timeout=300)
        assert built["state"] == "Succeeded", built
        assert states(slow, stuck) == ["NotStarted", "NotStarted", "Running"]

        also_stuck = stuck_build(third, project, endless.url, "stuck")
        assert wait_until(lambda: endless.open == 2, timeout=60), "the second build slot stayed free"
        deployed = create_service(other, built["resourceLocation"].rsplit("/", 1)[-1], "lanes")
        assert deployed["state"] == "Succeeded", deployed
        assert endless.open == 2, "both build slots were held by stuck builds all along"
        assert states(slow, stuck) == ["NotStarted", "NotStarted", "Running"]
        assert states(third, [also_stuck]) == ["Running"]

        deleted = other.call("DELETE", f"/services/{deployed['resourceLocation'].rsplit('/', 1)[-1]}")
        assert wait_operation(other, deleted.headers["Operation-Location"].rsplit("/", 1)[-1],
                              timeout=60)["state"] == "Succeeded"
    finally:
        endless.stop()
        server.stop()
