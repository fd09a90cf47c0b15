"""Two API replicas on PostgreSQL behind HAProxy, and workers of their own: a model
uploaded through the load balancer is built, its log read through it; one replica is
killed (SIGKILL) and the API and the CLI keep working through the other; a worker is
killed mid-build and another worker carries the build out once its lease has run
out; a service's collected data (in blob storage) reads the same through either replica.
Every process is this machine's (the engine is the host's: no namespaces)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bench.api_flow import create_image, register_iris, wait_operation
from bench.installation import Installation
from bench.load_balancer import HAProxy
from bench.moma_server import MomaServer
from tests.bridge import bridge_gateway
from tests.cli.conftest import Cli
from tests.conftest import TEST_RUN_LABEL
from tests.held_http import HeldServer
from tests.integration.conftest import EXAMPLE, train
from tests.management.postgres import Database
from tests.services_flow import create_service, score
from tests.waiting import wait_for, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "iris"
    directory.mkdir()
    for name in ("score.py", "requirements.txt"):
        (directory / name).write_bytes((EXAMPLE / name).read_bytes())
    train(directory)
    return directory


@pytest.fixture
def make_installation(tmp_path: Path, postgres_database: Database, azurite, test_run_id: str,
                      docker_client) -> Iterator[Callable[..., Installation]]:
    """Started installations with the settings asked for, stopped at the end. Asks for
    ``docker_client`` so that the session's clean-up of labelled images runs after."""
    if not HAProxy.available():
        message = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    made: list[Installation] = []

    def make(**settings: str) -> Installation:
        postgres_database.empty()
        made.append(Installation(tmp_path / "installation", postgres_database.url, azurite.connection_string,
                                 f"{TEST_RUN_LABEL}={test_run_id}", **settings))
        return made[-1].start()

    try:
        yield make
    finally:
        for installation in made:
            installation.stop()


@pytest.fixture
def installation(make_installation: Callable[..., Installation]) -> Installation:
    return make_installation()


def cli_of(installation: Installation) -> Cli:
    """The CLI of a user's machine, with the admin token, through the load balancer."""
    home = installation.root / "cli-home"
    home.mkdir()
    shutil.copy(installation.replicas[0].home / "admin-token", home / "admin-token")
    return Cli(home, installation.balancer.url)


def test_the_load_balancer_keeps_the_api_and_the_cli_working_when_a_replica_dies(
        installation: Installation, project: Path) -> None:
    installation.worker("worker1")
    cli = cli_of(installation)
    balancer = installation.balancer

    built = cli.json("image", "create", "-n", "iris", "-f", str(project / "score.py"), "-r", "python",
                     "-m", str(project / "model.pkl"), "-p", str(project / "requirements.txt"))

    assert built["creationState"] == "Succeeded", built
    assert built["imageBuildLogUri"].startswith(f"{balancer.url}/")
    log = installation.client().get_url(built["imageBuildLogUri"]).text
    assert f"Successfully tagged {built['imageLocation']}" in log
    assert all(count > 0 for count in balancer.sessions().values()), balancer.sessions()

    first, second = installation.replicas
    first.kill()
    client = installation.client()
    for _ in range(10):  # at once: haproxy sends the requests api1 refuses to api2
        assert client.call("GET", f"/images/{built['id']}").json()["creationState"] == "Succeeded"
    wait_for(lambda: balancer.status()["api1"].startswith("DOWN"), timeout=30, interval=0.2,
             what="haproxy to take api1 out")
    served = balancer.sessions()
    assert [model["name"] for model in cli.json("model", "list")] == ["model"]
    assert cli.json("image", "show", "-i", built["id"])["imageBuildLogUri"] == built["imageBuildLogUri"]
    assert f"Successfully tagged {built['imageLocation']}" in client.get_url(built["imageBuildLogUri"]).text
    after = balancer.sessions()
    assert (after["api1"], after["api2"] > served["api2"]) == (served["api1"], True), (served, after)


def test_a_worker_killed_mid_build_leaves_the_build_to_another(installation: Installation, project: Path) -> None:
    model = HeldServer((project / "model.pkl").read_bytes())
    try:
        first = installation.worker("worker1")
        client = installation.client()
        manifest = register_iris(client, project, "held", model_url=f"{model.url}/model.pkl")["manifest"]
        operation = create_image(client, manifest["id"], "held")
        wait_for(lambda: model.requests == 1, timeout=120, interval=0.1, what="worker 1 to fetch the model")
        assert client.call("GET", f"/operations/{operation}").json()["state"] == "Running"
        installation.worker("worker2")  # running beside worker 1, which holds the build's lease

        first.kill()
        model.release.set()
        done = wait_operation(client, operation, timeout=400)

        assert done["state"] == "Succeeded", done
        assert model.requests == 2
        image = client.call("GET", f"/images/{done['resourceLocation'].rsplit('/', 1)[-1]}").json()
        assert image["creationState"] == "Succeeded"
        assert f"Successfully tagged {image['imageLocation']}" in client.get_url(image["imageBuildLogUri"]).text
    finally:
        model.close()


def test_collected_data_is_read_through_either_replica(make_installation: Callable[..., Installation],
                                                       project: Path, tmp_path: Path, test_run_id: str,
                                                       docker_client) -> None:
    from tests.runtime.test_datacollection_blob import Azurite

    storage = Azurite(tmp_path / "collected", host=bridge_gateway(docker_client, test_run_id)).start()
    try:
        installation = make_installation(MOMA_DATA_COLLECTION_STORAGE=storage.connection_string)
        installation.worker("worker1")
        client = installation.client()
        built = wait_operation(client, create_image(client, register_iris(client, project)["manifest"]["id"]))
        assert built["state"] == "Succeeded", built
        created = create_service(client, built["resourceLocation"].rsplit("/", 1)[-1], "collect",
                                 dataCollection={"storageEnabled": True})
        assert created["state"] == "Succeeded", created
        service_id = created["resourceLocation"].rsplit("/", 1)[-1]
        service = client.call("GET", f"/services/{service_id}").json()
        key = client.call("GET", f"/services/{service_id}/keys").json()["primaryKey"]
        assert score(service["scoringUri"], key).status_code == 200

        def rows(replica: MomaServer) -> list[str]:
            text = replica.client().call("GET", f"/services/{service_id}/data/rows",
                                         params={"identifier": "inputs"}).text
            return text.splitlines()[1:]

        first, second = installation.replicas
        assert wait_until(lambda: len(rows(second)) == 1, timeout=60), rows(second)
        assert rows(first) == rows(second)
        listings = [replica.client().call("GET", f"/services/{service_id}/data").json() for replica in (first, second)]
        assert listings[0] == listings[1] and listings[0]["value"], listings
        deleted = client.call("DELETE", f"/services/{service_id}").headers["Operation-Location"]
        assert wait_operation(client, deleted.rsplit("/", 1)[-1], timeout=120)["state"] == "Succeeded"
    finally:
        storage.stop()
