"""Model data collection end to end: a real `moma serve` builds the iris image with a
driver that collects through ``from azureml.datacollector import ModelDataCollector``,
runs it as a service with ``dataCollection.storageEnabled`` on the real Docker engine,
and the rows of a burst of requests come back through the API and the CLI (local sink,
the service's host directory mounted into the read-only, non-root container) or land
in Azurite (blob sink, reached by the container over the Docker bridge)."""

from __future__ import annotations

import base64
import csv
import io
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bench.api_flow import create_image, register_iris, wait_operation
from bench.moma_server import MOMA, MomaServer
from tests.bridge import bridge_gateway
from tests.conftest import TEST_RUN_LABEL
from tests.integration.conftest import EXAMPLE, train
from tests.services_flow import create_service
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DRIVER = Path(__file__).parent / "fixtures" / "score_collect.py"
MODEL = "irisdc"
BURST = 24
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


class Moma:
    """The server of this module; the blob test restarts it with other settings."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.server = MomaServer(home, env).start()

    def restart(self, **extra: str) -> MomaServer:
        self.server.stop()
        self.server = MomaServer(self.home, {**self.env, **extra}, port=self.server.port).start()
        return self.server


@pytest.fixture(scope="module")
def moma(tmp_path_factory, test_run_id: str, docker_client) -> Iterator[Moma]:
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "1", "MOMA_SERVICE_READY_SECONDS": "90"}
    moma = Moma(tmp_path_factory.mktemp("dc-home"), env)
    yield moma
    client = moma.server.client()
    operations = [client.call("DELETE", f"/services/{s['id']}") for s in client.pages("/services")]
    for response in operations:
        if response.status_code == 200:
            wait_operation(client, response.headers["Operation-Location"].rsplit("/", 1)[-1], timeout=60)
    moma.server.stop()


@pytest.fixture(scope="module")
def image(moma: Moma, tmp_path_factory) -> dict[str, Any]:
    """The iris example with the collecting driver, built through the API."""
    project = tmp_path_factory.mktemp("irisdc")
    shutil.copy(EXAMPLE / "requirements.txt", project / "requirements.txt")
    shutil.copy(DRIVER, project / "score.py")
    train(project)
    client = moma.server.client()
    registered = register_iris(client, project, MODEL)
    operation = wait_operation(client, create_image(client, registered["manifest"]["id"], MODEL), timeout=600)
    assert operation["state"] == "Succeeded", operation
    return {"id": operation["resourceLocation"].rsplit("/", 1)[-1], "model": registered["model"]}


def burst(scoring_uri: str, key: str) -> list[tuple[str, str]]:
    """BURST requests from 4 threads; (request id, correlation id) of each."""
    def one(i: int) -> tuple[str, str]:
        response = requests.post(scoring_uri, json={"data": [[5.0 + i / 10, 3.5, 1.4, 0.2]]}, timeout=30,
                                 headers={"Authorization": f"Bearer {key}", "x-ms-client-request-id": f"client-{i}"})
        assert response.status_code == 200, response.text
        return response.headers["x-ms-request-id"], f"client-{i}"

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(BURST)))


def table(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])



def start_service(server: MomaServer, image_id: str, name: str) -> tuple[dict[str, Any], str]:
    client = server.client()
    operation = create_service(client, image_id, name, dataCollection={"storageEnabled": True})
    assert operation["state"] == "Succeeded", operation
    service = client.call("GET", f"/services/{operation['resourceLocation'].rsplit('/', 1)[-1]}").json()
    return service, client.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]


def test_local_sink_rows_through_the_api_and_the_cli(moma: Moma, image: dict[str, Any]):
    server, model = moma.server, image["model"]
    service, key = start_service(server, image["id"], "collect")
    answers = burst(service["scoringUri"], key)
    client = server.client()

    def rows(identifier: str) -> tuple[list[str], list[list[str]]]:
        return table(client.call("GET", f"/services/{service['id']}/data/rows",
                                 params={"identifier": identifier}).text)

    assert wait_until(lambda: all(len(rows(name)[1]) == BURST for name in ("inputs", "prediction", "features",
                                                                          "species"))), \
        client.call("GET", f"/services/{service['id']}/data").json()

    day = time.strftime("%Y/%m/%d", time.gmtime())
    files = client.call("GET", f"/services/{service['id']}/data").json()["value"]
    folder = f"{model['id']}-{MODEL}-{model['version']}"
    assert sorted(f["path"] for f in files) == sorted(
        f"modeldata/default/default/default/collect/{folder}/{name}/{day}/data.csv"
        for name in ("features", "inputs", "prediction", "species"))

    header, inputs = rows("inputs")  # automatic capture, no driver code: the raw body's keys
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "data"]
    assert {(row[2], row[1]) for row in inputs} == set(answers)
    header, predictions = rows("prediction")
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "prediction"]
    assert {row[3] for row in predictions} <= {"setosa", "versicolor", "virginica"}
    header, features = rows("features")  # the driver's own collectors, through the azureml import path
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", *FEATURES]
    assert sorted(float(row[3]) for row in features) == pytest.approx([5.0 + i / 10 for i in range(BURST)])
    assert rows("species")[0] == ["$Timestamp", "$CorrelationId", "$RequestId", "species"]

    host_file = moma.home / "services" / service["id"] / "data" / files[0]["path"]
    assert host_file.stat().st_uid == 10001 and host_file.stat().st_mode & 0o777 == 0o644

    env = {"MOMA_HOME": str(moma.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    cli = subprocess.run([MOMA, "--url", server.url, "service", "data", "realtime", "-i", service["id"],
                          "--identifier", "features", "--since", "1h"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert cli.returncode == 0, cli.stderr
    header, printed = table(cli.stdout)
    assert header[3:] == FEATURES and len(printed) == BURST
    listing = subprocess.run([MOMA, "--url", server.url, "service", "data", "-i", service["id"], "--list"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert listing.returncode == 0 and "prediction" in listing.stdout and folder in listing.stdout, listing.stderr
    later = client.call("GET", f"/services/{service['id']}/data/rows",
                        params={"identifier": "inputs", "since": "2999-01-01"})
    assert later.text == ""


SCAN = """
import os, sys
secrets = [s.encode() for s in sys.argv[1:]]
found = []
for place in ("/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline"):
    with open(place, "rb") as fh:
        data = fh.read()
    found += [place for secret in secrets if secret in data]
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for name in files:
        path = os.path.join(root, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        found += [path for secret in secrets if secret in data]
print(found)
"""


def scoring_container(docker_client, service_id: str):  # type: ignore[no-untyped-def]
    """The service's newest scoring container."""
    containers = docker_client.containers.list(ignore_removed=True, filters={"label": [f"moma.service-id={service_id}",
                                                                  "moma.role=scoring"]})
    return max(containers, key=lambda c: int(c.labels["moma.generation"]))


def sas_expiry(url: str) -> float:
    se = parse_qs(urlsplit(url).query)["se"][0]
    return datetime.fromisoformat(se.replace("Z", "+00:00")).timestamp()


def test_blob_sink_reached_from_the_container(moma: Moma, image: dict[str, Any], docker_client, tmp_path,
                                              test_run_id: str):
    """Each service writes into a container of its own with a SAS that can only add to
    it; the account key stays on the server, which renews the SAS before it runs out
    (a 45 s lifetime here: renewed after 30 s) and reads the rows with the key."""
    pytest.importorskip("azure.storage.blob")
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from management.collection_storage import container_name
    from tests.runtime.test_datacollection_blob import Azurite

    account_key = base64.b64encode(os.urandom(64)).decode()
    gateway = bridge_gateway(docker_client, test_run_id)
    azurite = Azurite(tmp_path / "azurite", host=gateway, account="operator", key=account_key).start()
    try:
        server = moma.restart(MOMA_DATA_COLLECTION_STORAGE=azurite.connection_string,
                              MOMA_DATA_COLLECTION_SAS_SECONDS="45")
        service, key = start_service(server, image["id"], "collectblob")
        container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
            container_name(service["id"]))
        day = time.strftime("%Y/%m/%d", time.gmtime())
        model = image["model"]
        prefix = f"default/default/default/collectblob/{model['id']}-{MODEL}-{model['version']}"

        def blob(identifier: str) -> tuple[list[str], list[list[str]]]:
            try:
                return table(container.download_blob(f"{prefix}/{identifier}/{day}/data.csv").readall().decode())
            except HttpResponseError:  # not there yet
                return [], []

        first = scoring_container(docker_client, service["id"])
        environment = dict(item.split("=", 1) for item in first.attrs["Config"]["Env"])
        credential = environment["AML_MODEL_DC_STORAGE"]
        assert credential.startswith(f"http://{gateway}:{azurite.port}/operator/{container.container_name}?")
        assert not [name for name, value in environment.items() if account_key in value or "AccountKey" in value]
        scan = first.exec_run(["python", "-c", SCAN, account_key])
        assert scan.exit_code == 0 and scan.output.decode().strip() == "[]", scan.output.decode()[-2000:]
        with pytest.raises(HttpResponseError):
            list(ContainerClient.from_container_url(credential).list_blobs())  # it cannot even list its own

        answers = burst(service["scoringUri"], key)
        assert wait_until(lambda: len(blob("inputs")[1]) == BURST and len(blob("features")[1]) == BURST), \
            [b.name for b in container.list_blobs()]
        header, inputs = blob("inputs")
        assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "data"]
        assert {(row[2], row[1]) for row in inputs} == set(answers)
        assert blob("features")[0][3:] == FEATURES

        client = server.client()
        files = client.call("GET", f"/services/{service['id']}/data").json()["value"]
        assert f"{container.container_name}/{prefix}/inputs/{day}/data.csv" in {f["path"] for f in files}
        rows = client.call("GET", f"/services/{service['id']}/data/rows", params={"identifier": "inputs"}).text
        assert {(row[2], row[1]) for row in table(rows)[1]} == set(answers)

        expires = sas_expiry(credential)
        renewed = wait_until(lambda: scoring_container(docker_client, service["id"]).id != first.id
                           and client.call("GET", f"/services/{service['id']}").json()["state"] == "Succeeded",
                           timeout=expires - time.time())
        assert renewed, "no new credential before the first one ran out"
        second = scoring_container(docker_client, service["id"])
        renewal = dict(item.split("=", 1) for item in second.attrs["Config"]["Env"])["AML_MODEL_DC_STORAGE"]
        assert sas_expiry(renewal) > expires
        assert wait_until(lambda: time.time() > expires + 2, timeout=60)
        later = burst(service["scoringUri"], key)  # written after the first credential ran out
        assert wait_until(lambda: len(blob("inputs")[1]) == 2 * BURST, timeout=60), len(blob("inputs")[1])
        assert set(later) <= {(row[2], row[1]) for row in blob("inputs")[1]}
    finally:
        azurite.stop()
