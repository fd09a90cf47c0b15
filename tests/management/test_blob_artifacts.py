"""The artifact store in Azure Blob Storage (``blob_artifacts.py``), against Azurite:
content-addressed block blobs committed only when whole and right, uploads sent again
resumed from their staged blocks, reads checked against the digest, and
``moma artifacts migrate`` run twice, and interrupted once."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

from builder.errors import DigestMismatch, DownloadFailed
from builder.fetch import Fetcher, FetchPolicy
from management.artifacts import SCHEME, LocalArtifacts
from management.blob_artifacts import CONTAINER, ArtifactStorageError, BlobArtifacts, blob_name
from management.errors import BadRequest
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BLOCK = 64 * 1024


def content(size: int, seed: bytes = b"moma") -> bytes:
    return (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Trickle(io.RawIOBase):
    """A request body as a socket hands it out: short reads of uneven sizes; with
    ``break_after``, the client goes away after that many bytes."""

    def __init__(self, data: bytes, break_after: int | None = None) -> None:
        self.data = memoryview(data)
        self.position = 0
        self.break_after = break_after
        self.sizes = [7000, 13, 65536, 30000]

    def read(self, size: int = -1) -> bytes:
        if self.break_after is not None and self.position >= self.break_after:
            raise OSError("the client went away")
        step = min(size if size >= 0 else len(self.data), self.sizes[self.position % len(self.sizes)])
        chunk = bytes(self.data[self.position:self.position + step])
        self.position += len(chunk)
        return chunk


@pytest.fixture
def blob(azurite) -> BlobArtifacts:
    return BlobArtifacts(azurite.connection_string, block_bytes=BLOCK)


def container(azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(CONTAINER)


def blocks_of(azurite, sha256: str, kind: str = "committed") -> list:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        committed, uncommitted = container(azurite).get_blob_client(blob_name(sha256)).get_block_list(kind)
    except ResourceNotFoundError:
        return []
    return committed if kind == "committed" else uncommitted


def read_back(store, sha256: str, name: str = "model.pkl") -> bytes:
    stream, size = store.open(urllib.parse.urlsplit(f"{SCHEME}://sha256/{sha256}/{name}"))
    with stream:
        data = stream.read()
    assert size == len(data)
    return data


def test_an_upload_becomes_one_blob_per_content_in_blocks(blob: BlobArtifacts, azurite) -> None:
    data = content(5 * BLOCK + 123)

    stored = blob.put(Trickle(data), "model.pkl", max_bytes=10 * BLOCK)
    again = blob.put(io.BytesIO(data), "other-name.pkl", max_bytes=10 * BLOCK, sha256=sha(data))

    assert (stored.sha256, stored.size, stored.url) == (sha(data), len(data),
                                                        f"artifact://sha256/{sha(data)}/model.pkl")
    assert again.url == f"artifact://sha256/{sha(data)}/other-name.pkl"
    assert [b.size for b in blocks_of(azurite, sha(data))] == [BLOCK] * 5 + [123]
    assert [b.name for b in container(azurite).list_blobs(name_starts_with=blob_name(sha(data)))] == \
        [blob_name(sha(data))]
    assert read_back(blob, sha(data)) == data
    assert list(blob.digests()).count(sha(data)) == 1


def test_the_digest_said_must_be_the_digest_sent(blob: BlobArtifacts, azurite) -> None:
    data, claimed = content(3 * BLOCK, b"one"), sha(content(3 * BLOCK, b"two"))

    with pytest.raises(BadRequest, match=f"not {claimed}"):
        blob.put(io.BytesIO(data), "model.pkl", max_bytes=10 * BLOCK, sha256=claimed)

    assert blocks_of(azurite, claimed, "uncommitted") and not blocks_of(azurite, claimed)
    assert claimed not in set(blob.digests())


def test_stored_content_is_given_only_to_an_uploader_with_its_bytes(blob: BlobArtifacts) -> None:
    data = content(2 * BLOCK, b"tenant-a")
    blob.put(io.BytesIO(data), "a.pkl", max_bytes=10 * BLOCK)

    with pytest.raises(BadRequest):
        blob.put(io.BytesIO(b"guessing"), "b.pkl", max_bytes=10 * BLOCK, sha256=sha(data))
    assert blob.put(io.BytesIO(data), "b.pkl", max_bytes=10 * BLOCK, sha256=sha(data)).size == len(data)


def test_an_upload_sent_again_after_a_break_stages_only_what_is_missing(blob: BlobArtifacts, azurite) -> None:
    data = content(8 * BLOCK + 5, b"resume")

    with pytest.raises(OSError, match="went away"):
        blob.store(sha(data), Trickle(data, break_after=3 * BLOCK + 10))
    assert len(blocks_of(azurite, sha(data), "uncommitted")) == 3 and sha(data) not in set(blob.digests())

    upload = blob.store(sha(data), io.BytesIO(data))

    assert (upload.reused, upload.staged, upload.existed) == (3, 6, False)
    assert read_back(blob, sha(data)) == data


def test_over_the_limit_nothing_is_stored(blob: BlobArtifacts) -> None:
    data = content(3 * BLOCK, b"big")

    with pytest.raises(Exception, match=f"limit of {2 * BLOCK}"):
        blob.put(io.BytesIO(data), "big.bin", max_bytes=2 * BLOCK, sha256=sha(data))
    with pytest.raises(Exception, match=f"limit of {2 * BLOCK}"):
        blob.put(io.BytesIO(data), "big.bin", max_bytes=2 * BLOCK)
    assert sha(data) not in set(blob.digests())


def test_reads_are_checked_against_the_digest(blob: BlobArtifacts, azurite, tmp_path: Path) -> None:
    data = content(3 * BLOCK, b"tamper")
    stored = blob.put(io.BytesIO(data), "model.pkl", max_bytes=10 * BLOCK)
    fetcher = Fetcher()
    fetcher.register_scheme(SCHEME, blob.open)

    fetched = fetcher.fetch(stored.url, tmp_path / "model.pkl", policy=FetchPolicy())
    assert fetched.sha256 == sha(data) and (tmp_path / "model.pkl").read_bytes() == data

    container(azurite).get_blob_client(blob_name(sha(data))).upload_blob(data[:-1] + b"!", overwrite=True)
    with pytest.raises(DigestMismatch, match=f"artifact {sha(data)}"):
        fetcher.fetch(stored.url, tmp_path / "tampered.pkl", policy=FetchPolicy())
    assert not (tmp_path / "tampered.pkl").exists()
    with pytest.raises(DownloadFailed, match="not in the artifact storage"):
        fetcher.fetch(stored.url.replace(sha(data), "0" * 64), tmp_path / "missing.pkl", policy=FetchPolicy())


def test_the_local_store_checks_what_it_reads_too(tmp_path: Path) -> None:
    local = LocalArtifacts(tmp_path / "artifacts")
    data = content(100_000, b"local")
    local.put(io.BytesIO(data), "model.pkl", max_bytes=10**6)
    assert read_back(local, sha(data)) == data

    local.path(sha(data)).write_bytes(data[:-1] + b"!")
    with pytest.raises(DigestMismatch):
        read_back(local, sha(data))


def test_storage_that_does_not_answer_is_503_not_a_hang(tmp_path: Path) -> None:
    from tests.runtime.test_datacollection_blob import Azurite

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = BlobArtifacts(Azurite(tmp_path, port).connection_string)

    with pytest.raises(ArtifactStorageError) as failure:
        gone.put(io.BytesIO(b"x"), "model.pkl", max_bytes=10)
    assert failure.value.status == 503 and "artifact storage" in failure.value.message
    with pytest.raises(OSError, match="artifact storage"):
        read_back(gone, "0" * 64)


# --- moma artifacts migrate ------------------------------------------------------------

class ByteBudgetProxy:
    """127.0.0.1:PORT in front of Azurite that forwards ``budget`` bytes of requests, then
    holds everything clients send: a connection that hangs mid-upload."""

    def __init__(self, port: int, budget: int) -> None:
        self.target = ("127.0.0.1", port)
        self.budget = budget
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(65536):
                if counted:
                    with self._lock:
                        allowed = max(0, min(len(data), self.budget))
                        self.budget -= allowed
                    if allowed < len(data):
                        sink.sendall(data[:allowed])
                        threading.Event().wait()  # hold the rest, and this connection, for good
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def migrate(home: Path, storage: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "management.cli", "artifacts", "migrate"], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "MOMA_HOME": str(home),
                                                           "MOMA_ARTIFACT_STORAGE": storage})


def local_installation(home: Path, *sizes: int) -> dict[str, bytes]:
    local = LocalArtifacts(home / "artifacts")
    files = {}
    for index, size in enumerate(sizes):
        data = content(size, f"file-{index}-{home}".encode())
        files[local.put(io.BytesIO(data), f"f{index}.bin", max_bytes=size).sha256] = data
    return files


def test_migrate_twice_copies_once(azurite, tmp_path: Path) -> None:
    files = local_installation(tmp_path, 10, 300_000, 5 * 1024 * 1024)

    first = migrate(tmp_path, azurite.connection_string)
    second = migrate(tmp_path, azurite.connection_string)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "3 copied, 0 already there, 0 failed"
    assert second.returncode == 0 and second.stdout.strip() == "0 copied, 3 already there, 0 failed"
    blob = BlobArtifacts(azurite.connection_string)
    assert all(read_back(blob, digest) == data for digest, data in files.items())
    assert all((tmp_path / "artifacts" / digest[:2] / digest).exists() for digest in files)


def test_migrate_interrupted_carries_on_where_it_stopped(azurite, tmp_path: Path) -> None:
    [(digest, data)] = local_installation(tmp_path, 5 * 4 * 1024 * 1024 + 17).items()
    proxy = ByteBudgetProxy(azurite.port, budget=int(2.5 * 4 * 1024 * 1024))
    storage = azurite.connection_string.replace(f":{azurite.port}/", f":{proxy.port}/")
    run = subprocess.Popen([sys.executable, "-m", "management.cli", "artifacts", "migrate"],
                           env={**os.environ, "MOMA_HOME": str(tmp_path), "MOMA_ARTIFACT_STORAGE": storage},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(blocks_of(azurite, digest, "uncommitted")) == 2, timeout=60)
    finally:
        run.send_signal(signal.SIGKILL)
        run.communicate()
        proxy.close()
    assert digest not in set(BlobArtifacts(azurite.connection_string).digests())

    resumed = migrate(tmp_path, azurite.connection_string)

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == ("1 copied (2 blocks staged by an earlier run not sent again), "
                                      "0 already there, 0 failed")
    assert read_back(BlobArtifacts(azurite.connection_string), digest) == data
    assert migrate(tmp_path, azurite.connection_string).stdout.strip() == "0 copied, 1 already there, 0 failed"


def test_migrate_reports_a_local_file_that_is_not_its_digest(azurite, tmp_path: Path) -> None:
    files = local_installation(tmp_path, 1000, 2000)
    broken, intact = sorted(files)
    (tmp_path / "artifacts" / broken[:2] / broken).write_bytes(b"bit rot")

    done = migrate(tmp_path, azurite.connection_string)

    assert done.returncode == 1
    assert done.stdout.strip() == "1 copied, 0 already there, 1 failed"
    assert f"{broken}: not copied" in done.stderr and "1 artifacts were not copied" in done.stderr
    assert broken not in set(BlobArtifacts(azurite.connection_string).digests())
    assert read_back(BlobArtifacts(azurite.connection_string), intact) == files[intact]


def test_migrate_needs_the_setting(tmp_path: Path) -> None:
    done = migrate(tmp_path, "")

    assert done.returncode == 2 and "MOMA_ARTIFACT_STORAGE" in done.stderr
