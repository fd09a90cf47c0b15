"""Fixtures for the engine contract suite: one tiny scoring image per session (built
with ``builder/``), a single-node swarm (initialised here when the Docker engine is not
in one, and left again at the end only then), the ``engine`` fixture over both
engines, workloads whose services are removed after each test, and a client that
scores continuously and counts what fails.

Everything created carries this run's ``moma.test-run`` label; swarm services and
secrets left over are removed at session end (containers and images by
``tests/conftest.py``)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.manifest import load_manifest
from management.engines import Workload
from management.engines.local import LocalEngine
from management.engines.swarm import SwarmEngine
from management.engines.swarm.publishing import kernel_has_ipvs
from tests.conftest import TEST_RUN_LABEL
from tests.waiting import wait_for

DRIVER = Path(__file__).parent / "driver"
PRIMARY, SECONDARY = f"primary-{uuid.uuid4().hex}", f"secondary-{uuid.uuid4().hex}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()



def score(url: str, key: str | None = None, timeout: float = 10) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{url}/score", json={}, headers=headers, timeout=timeout)


def instances(url: str, tries: int = 30) -> set[str]:
    """The instances answering /readyz through one address, each on a new connection."""
    seen = set()
    for _ in range(tries):
        answer = requests.get(f"{url}/readyz", timeout=5, headers={"Connection": "close"})
        if answer.status_code == 200:
            seen.add(answer.json()["instance"])
    return seen


@pytest.fixture(scope="session")
def engine_image(tmp_path_factory, docker_client, test_run_id: str) -> str:
    builder = Builder(BuilderConfig.from_env({"MOMA_HOME": str(tmp_path_factory.mktemp("engines-home"))}))
    result = builder.build(load_manifest(DRIVER / "manifest.yml"),
                           BuildOptions(name="moma-engine-test", tag=test_run_id,
                                        labels={TEST_RUN_LABEL: test_run_id}))
    return result.reference


@pytest.fixture(scope="session")
def swarm(docker_client, test_run_id: str) -> Iterator[None]:
    """A swarm this engine manages; ``docker swarm init`` here only when needed.

    Without IPVS (no routing mesh) the engine publishes on the node's network with
    SO_REUSEPORT; it then needs ``net.ipv4.tcp_migrate_req=1`` on the node for
    lossless updates (see ``management/engines/swarm.py``): set here for the session
    when it is 0, and put back after."""
    joined = docker_client.info()["Swarm"]["LocalNodeState"] == "active"
    if not joined:
        docker_client.swarm.init(advertise_addr="127.0.0.1")
    migrate = Path("/proc/sys/net/ipv4/tcp_migrate_req")
    migrate_before = migrate.read_text().strip() if migrate.exists() else None
    if migrate_before == "0" and kernel_has_ipvs() is False:
        migrate.write_text("1\n")
    yield
    if migrate_before == "0":
        migrate.write_text("0\n")
    selector = {"label": f"{TEST_RUN_LABEL}={test_run_id}"}
    for service in docker_client.services.list(filters=selector):
        service.remove()
    wait_for(lambda: not docker_client.containers.list(
        all=True, filters={"label": [f"{TEST_RUN_LABEL}={test_run_id}", "com.docker.swarm.service.id"]}),
        timeout=60, what="the test services' containers to go")
    for secret in docker_client.secrets.list(filters=selector):
        secret.remove()
    if not joined:
        docker_client.swarm.leave(force=True)


@pytest.fixture(scope="session")
def installation(test_run_id: str) -> str:
    """Engines see only what their installation made: keep away from a real moma here."""
    return f"test-{test_run_id}"


@pytest.fixture
def swarm_engine(swarm, installation: str) -> Iterator[SwarmEngine]:
    engine = SwarmEngine.from_env("127.0.0.1", installation=installation)
    engine.health_interval = 1.0  # faster rolling updates for the tests
    yield engine
    engine.client.close()


@pytest.fixture(params=["local", "swarm"])
def engine(request, docker_client, tmp_path: Path, installation: str) -> Any:
    if request.param == "local":
        return LocalEngine(docker_client, tmp_path / "services", "127.0.0.1", installation)
    return request.getfixturevalue("swarm_engine")


@pytest.fixture
def make_workload(engine, engine_image: str, test_run_id: str) -> Iterator[Callable[..., Workload]]:
    """``make_workload(case, **changes)``: a new service's workload; the service is removed at
    teardown."""
    made: list[str] = []

    def make(case: str, **changes: Any) -> Workload:
        service_id = uuid.uuid4().hex
        made.append(service_id)
        workload = Workload(
            service_id=service_id, name=f"moma-t{test_run_id[:6]}-{case}-{service_id[:6]}", image=engine_image,
            generation=1, env={"ENGINE_TEST_VERSION": "v1"}, key_hashes=(key_hash(PRIMARY), key_hash(SECONDARY)),
            labels={TEST_RUN_LABEL: test_run_id, "moma.account": "test"}, ready_seconds=60)
        return replace(workload, **changes)

    yield make
    for service_id in made:
        engine.remove(service_id)


class Scorer:
    """Scores continuously in a thread, by default on a new connection per request (as
    ``requests.post`` does), and counts every answer that is not a 200."""

    def __init__(self, url: str, key: str, keep_alive: bool = False, pause: float = 0.01) -> None:
        self.url, self.key, self.pause = url, key, pause
        self.session = requests.Session() if keep_alive else None
        self.statuses: Counter[object] = Counter()
        self.versions: Counter[str] = Counter()
        self.errors: list[str] = []
        self.last_version = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)

    def __enter__(self) -> "Scorer":
        self._thread.start()
        wait_for(lambda: self.statuses, timeout=10, what="a first answer")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def _run(self) -> None:
        post = self.session.post if self.session else requests.post
        while not self._stop.is_set():
            try:
                answer = post(f"{self.url}/score", json={}, headers={"Authorization": f"Bearer {self.key}"},
                              timeout=10)
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.last_version = answer.json()["version"]
                    self.versions[self.last_version] += 1
                else:
                    self.errors.append(f"{answer.status_code} {answer.text[:200]}")
            except requests.RequestException as exc:
                self.statuses["error"] += 1
                self.errors.append(repr(exc))
            time.sleep(self.pause)
