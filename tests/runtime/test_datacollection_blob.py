"""Model data collection to Azure Blob Storage, against Azurite (the storage emulator,
from the npm registry, installed on first use into tests/.node/, which git ignores)
on 127.0.0.1 with real gunicorn servers."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from runtime.datacollection.sinks import BlobSink, SinkError
from tests.waiting import wait_for

from .conftest import REPO, free_port, prometheus_value
from .test_datacollection import MODEL_MAP, PREFIX, burst, dc_env, rows_in

pytestmark = pytest.mark.slow

NODE_DIR = REPO / "tests" / ".node"
AZURITE = NODE_DIR / "node_modules" / ".bin" / "azurite-blob"
# The emulator's well-known development account (public, documented, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(why)  # CI must run these, never skip them
    pytest.skip(why)


def ensure_azurite() -> Path:
    if AZURITE.exists():
        return AZURITE
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm is not installed: cannot install Azurite")
    NODE_DIR.mkdir(exist_ok=True)
    (NODE_DIR / ".gitignore").write_text("*\n")
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                           "--prefix", str(NODE_DIR), "azurite@3.35.0"],
                          capture_output=True, text=True, timeout=600)
    if done.returncode or not AZURITE.exists():
        _missing(f"npm install azurite@3.35.0 failed: {done.stderr[-2000:]}")
    return AZURITE


class Azurite:
    """One azurite-blob process on ``host`` (127.0.0.1, or the Docker bridge's gateway
    address for containers to reach), data kept in ``location`` across restarts; the
    well-known development account, or ``account`` with ``key`` (the storage SDK itself
    carries the well-known key, so a test looking for a leaked key needs another)."""

    def __init__(self, location: Path, port: int | None = None, host: str = "127.0.0.1",
                 account: str = ACCOUNT, key: str = ACCOUNT_KEY) -> None:
        self.location = location
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.account = account
        self.accounts = f"{account}:{key}" if (account, key) != (ACCOUNT, ACCOUNT_KEY) else ""
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint=http://{host}:{self.port}/{account};")

    def start(self, timeout: float = 30.0) -> "Azurite":
        self.location.mkdir(parents=True, exist_ok=True)
        log = open(self.location / "azurite.log", "ab")
        self.proc = subprocess.Popen(
            [str(ensure_azurite()), "--blobHost", self.host, "--blobPort", str(self.port),
             "--location", str(self.location), "--loose", "--skipApiVersionCheck",
             "--disableTelemetry", "--silent"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "AZURITE_ACCOUNTS": self.accounts} if self.accounts else None)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"azurite exited: {(self.location / 'azurite.log').read_text()}")
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("azurite did not listen in time")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def container(self):
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.connection_string)
        return service.get_container_client("modeldata")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _blob_client_installed():
    try:
        import azure.storage.blob  # noqa: F401
    except ImportError:
        _missing("azure-storage-blob is not installed (pyproject dev dependencies)")


def blob_rows(container, path: str) -> tuple[list[str], list[list[str]]]:
    try:
        text = container.download_blob(path).readall().decode()
    except Exception:  # noqa: BLE001 - not there yet
        return [], []
    table = list(csv.reader(io.StringIO(text)))
    return (table[0], table[1:]) if table else ([], [])


def blob_path(identifier: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/{identifier}/{time.strftime('%Y/%m/%d', time.gmtime())}/data.csv"


# -- tests --------------------------------------------------------------------------------------------
def test_blob_and_local_sinks_get_the_same_rows_with_one_header(serve, tmp_path, azurite):
    out = tmp_path / "collected"
    service = "svc-burst"
    prefix = PREFIX.replace("svc-1", service)
    server = serve("dc_auto.py", files={"model_config_map.json": MODEL_MAP},
                   **dc_env(out, WORKERS="2", MOMA_SERVICE_NAME=service,
                            AML_MODEL_DC_STORAGE=azurite.connection_string))
    answers = burst(server, [{"data": [[i, 1, 1, 1]]} for i in range(150)])
    container = azurite.container()
    wait_for(lambda: len(blob_rows(container, blob_path("inputs", prefix))[1]) == 150
             and len(blob_rows(container, blob_path("prediction", prefix))[1]) == 150)
    for identifier in ("inputs", "prediction"):
        header, rows = blob_rows(container, blob_path(identifier, prefix))
        assert header[:3] == ["$Timestamp", "$CorrelationId", "$RequestId"]
        assert {row[2] for row in rows} == {request_id for request_id, _ in answers}
        assert all(row[0] != "$Timestamp" for row in rows)  # the header once, first
        wait_for(lambda: len(rows_in(out, identifier, prefix)) == 150)
        assert sorted(rows) == sorted(rows_in(out, identifier, prefix))
    properties = container.get_blob_client(blob_path("inputs", prefix)).get_blob_properties()
    assert properties.blob_type == "AppendBlob"
    assert properties.metadata == {"imageid": "img-1", "service": service}
    metrics = server.get("/metrics").text
    assert prometheus_value(metrics, "moma_datacollection_rows_written_total",
                            {"sink": "blob"}) == 300
    assert prometheus_value(metrics, "moma_datacollection_sink_errors_total",
                            {"sink": "blob"}) == 0


def test_a_blob_outage_loses_nothing_within_the_queue_bound(serve, tmp_path):
    storage = Azurite(tmp_path / "azurite").start()
    try:
        service = "svc-outage"
        prefix = PREFIX.replace("svc-1", service)
        env = dc_env(tmp_path / "unused", MOMA_SERVICE_NAME=service,
                     AML_MODEL_DC_STORAGE=storage.connection_string)
        del env["AML_MODEL_DC_LOCAL_DIR"]
        server = serve("dc_collect.py", files={"model_config_map.json": MODEL_MAP}, **env)
        body = [[5.1, 3.5, 1.4, 0.2]]
        first = burst(server, [{"data": body, "corr": f"a{i}"} for i in range(10)])
        container = storage.container()
        wait_for(lambda: len(blob_rows(container, blob_path("prediction", prefix))[1]) == 10)

        storage.stop()
        second = burst(server, [{"data": body, "corr": f"b{i}"} for i in range(30)])
        wait_for(lambda: prometheus_value(server.get("/metrics").text,
                                          "moma_datacollection_sink_errors_total",
                                          {"sink": "blob"}) >= 2)
        metrics = server.get("/metrics").text
        assert prometheus_value(metrics, "moma_datacollection_queued_rows") >= 60
        time.sleep(2)  # a while down: retried with backoff, nothing dropped
        storage.start()

        wanted = {request_id for request_id, _ in first + second}
        for identifier in ("inputs", "prediction"):
            wait_for(lambda: len(blob_rows(container, blob_path(identifier, prefix))[1]) >= 40,
                     timeout=60)
            header, rows = blob_rows(container, blob_path(identifier, prefix))
            assert {row[2] for row in rows} == wanted and len(rows) == 40
        assert [row[2] for row in blob_rows(container, blob_path("prediction", prefix))[1][:10]] \
            == [row[2] for row in blob_rows(container, blob_path("inputs", prefix))[1][:10]]
        metrics = server.get("/metrics").text
        assert prometheus_value(metrics, "moma_datacollection_rows_dropped_total",
                                {"reason": "queue_full"}) == 0
        wait_for(lambda: prometheus_value(server.get("/metrics").text,
                                          "moma_datacollection_queued_rows") == 0)
    finally:
        storage.stop()


def race_for_one_header(storage: str, path: str, writers: int = 4, rows: int = 10) -> None:
    """``writers`` sinks on ``storage`` (a connection string or a container SAS URL), each
    in its own thread, start together and append ``rows`` rows to ``path``."""
    sinks = [BlobSink(storage) for _ in range(writers)]
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        barrier.wait()
        for i in range(rows):
            sinks[n].write(path, b"HEADER\n", f"w{n}-{i}\n".encode())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sink in sinks:
        sink.close()


def test_blob_writers_race_for_one_header(azurite):
    path = "race/one/data.csv"
    race_for_one_header(azurite.connection_string, path)
    lines = azurite.container().download_blob(path).readall().decode().splitlines()
    assert lines[0] == "HEADER" and lines.count("HEADER") == 1 and len(lines) == 41


def test_a_closed_port_is_a_sink_error_quickly():
    sink = BlobSink(Azurite(Path("/nonexistent"), free_port()).connection_string, timeout_s=2)
    started = time.monotonic()
    with pytest.raises(SinkError):
        sink.write("a/data.csv", b"h\n", b"r\n")
    assert time.monotonic() - started < 5
    sink.close()


def test_a_full_blob_continues_in_the_next_file():
    from azure.core.exceptions import HttpResponseError

    class FakeBlob:
        def __init__(self, store, name):
            self.store, self.name = store, name

        def create_append_blob(self, **kwargs):
            self.store.setdefault(self.name, [])

        def append_block(self, data, **kwargs):
            if self.name.endswith("data.csv") or self.name.endswith("data.1.csv"):
                error = HttpResponseError(message="The committed block count cannot exceed")
                error.error_code = "BlockCountExceedsLimit"
                raise error
            self.store[self.name].append(data)

    class FakeContainer:
        def __init__(self):
            self.store: dict[str, list[bytes]] = {}

        def create_container(self):
            pass

        def get_blob_client(self, name):
            return FakeBlob(self.store, name)

    sink = BlobSink(Azurite(Path("/x"), 1).connection_string)
    sink._container = FakeContainer()
    sink.write("p/data.csv", b"H\n", b"row1\n")
    sink.write("p/data.csv", b"H\n", b"row2\n")
    assert sink._container.store["p/data.2.csv"] == [b"H\n", b"row1\n", b"row2\n"]
    sink.close()
