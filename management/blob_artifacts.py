"""The artifact store in Azure Blob Storage (``MOMA_ARTIFACT_STORAGE``), shared by every
API replica and worker of an installation: container ``moma-artifacts``, one block
blob per content, named ``sha256/<hex>``.

An upload is cut into blocks of 4 MiB, each staged as it arrives under an id made of
its index and its own digest; the block list is committed (the blob exists) only once
the whole upload has been hashed and is the digest it is stored under. A broken upload
thus leaves uncommitted blocks (the service drops them after a week), never a blob;
the same content sent again (a migration interrupted, a client that retries) stages
only the blocks not already staged, as their ids say what they hold. With the digest
known in advance (the CLI sends it, ``moma artifacts migrate`` has it) blocks are
staged as the bytes stream in; without it the upload is spooled to a temporary file
first. Content already stored is hashed (the uploader must show it has the bytes) but
not stored again.

Reads stream through the SDK and are checked against the digest as they are read."""

from __future__ import annotations

import hashlib
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .artifacts import (
    LocalArtifacts,
    StoredArtifact,
    VerifiedReader,
    check_claim,
    check_upload,
    copy_hashed,
    limited_chunks,
    parse_url,
)
from .azure_blob import first_line, service_client, translated
from .errors import BadRequest, ServiceUnavailable

CONTAINER = "moma-artifacts"
BLOCK_BYTES = 4 * 1024 * 1024


class ArtifactStorageError(ServiceUnavailable):
    """The artifact storage account cannot be used as configured, or did not answer."""

    code = "ArtifactStorageUnavailable"


@dataclass(frozen=True)
class Upload:
    size: int
    staged: int  # blocks sent to the storage account
    reused: int  # blocks an earlier, broken try had staged already
    existed: bool  # the content was stored already


def blob_name(sha256: str) -> str:
    return f"sha256/{sha256}"


class BlobArtifacts:
    def __init__(self, connection_string: str, block_bytes: int = BLOCK_BYTES) -> None:
        client = service_client(connection_string, "MOMA_ARTIFACT_STORAGE", ArtifactStorageError, retries=2,
                                read_timeout=60)
        self.container = client.get_container_client(CONTAINER)
        self.block_bytes = block_bytes
        self._container_ready = False

    def put(self, stream: BinaryIO, filename: str, max_bytes: int, sha256: str | None = None) -> StoredArtifact:
        check_upload(filename, sha256)
        if sha256 is not None:
            return StoredArtifact(sha256, self.store(sha256, stream, max_bytes).size, filename)
        with tempfile.TemporaryFile(prefix="moma-upload-") as spool:
            digest, _ = copy_hashed(stream, spool, max_bytes)
            spool.seek(0)
            return StoredArtifact(digest, self.store(digest, spool, max_bytes).size, filename)

    def store(self, sha256: str, stream: BinaryIO, max_bytes: int = sys.maxsize, prove: bool = True) -> Upload:
        """Store what ``stream`` holds as the content of ``sha256``, which must be its digest
        (BadRequest otherwise: nothing committed). Content already stored is read and hashed
        all the same when ``prove``: an uploader gets an artifact only by sending its bytes."""
        from azure.storage.blob import BlobBlock

        blob = self.container.get_blob_client(blob_name(sha256))
        digest, size, staged, reused, ids = hashlib.sha256(), 0, 0, 0, []
        with translated(f"artifact storage: cannot store {sha256}", ArtifactStorageError):
            existed = _exists(blob)
            if existed and not prove:
                return Upload(0, 0, 0, True)
            if not existed:
                self._ensure_container()
            earlier = {} if existed else _uncommitted(blob)
            for index, block in enumerate(_blocks(limited_chunks(stream, max_bytes), self.block_bytes)):
                digest.update(block)
                size += len(block)
                if existed:
                    continue
                block_id = f"{index:08d}-{hashlib.sha256(block).hexdigest()[:40]}"
                if earlier.get(block_id) == len(block):
                    reused += 1
                else:
                    blob.stage_block(block_id, block, length=len(block))
                    staged += 1
                ids.append(BlobBlock(block_id))
            check_claim(digest.hexdigest(), sha256)
            if not existed:
                blob.commit_block_list(ids, metadata={"sha256": sha256})
        return Upload(size, staged, reused, existed)

    def open(self, parts: urllib.parse.SplitResult) -> tuple[BinaryIO, int | None]:
        """Errors are OSErrors here: the builder's fetch reports them as a failed download."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        sha256 = parse_url(parts)
        try:
            downloader = self.container.get_blob_client(blob_name(sha256)).download_blob()
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(f"artifact {sha256} is not in the artifact storage") from exc
        except AzureError as exc:
            raise OSError(f"artifact storage: cannot read {sha256}: {first_line(exc)}") from exc
        return VerifiedReader(_read_errors(downloader.chunks(), sha256), sha256), downloader.size

    def digests(self) -> Iterator[str]:
        with translated("artifact storage: cannot list artifacts", ArtifactStorageError):
            for blob in self.container.list_blobs(name_starts_with="sha256/"):
                yield blob.name.split("/", 1)[1]

    def _ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        if not self._container_ready:
            try:
                self.container.create_container()
            except ResourceExistsError:
                pass
            self._container_ready = True


def _exists(blob: Any) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        blob.get_blob_properties()
    except ResourceNotFoundError:
        return False
    return True


def _uncommitted(blob: Any) -> dict[str, int]:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        _, uncommitted = blob.get_block_list("uncommitted")
    except ResourceNotFoundError:
        return {}
    return {block.id: block.size for block in uncommitted}


def _blocks(chunks: Iterable[bytes], block_bytes: int) -> Iterator[bytes]:
    """``chunks`` regrouped into blocks of ``block_bytes`` (the last one shorter): a socket
    hands out what it has, and a blob may have at most 50,000 blocks."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= block_bytes:
            yield bytes(pending[:block_bytes])
            del pending[:block_bytes]
    if pending:
        yield bytes(pending)


def _read_errors(chunks: Iterator[bytes], sha256: str) -> Iterator[bytes]:
    from azure.core.exceptions import AzureError

    try:
        yield from chunks
    except AzureError as exc:
        raise OSError(f"artifact storage: reading {sha256} failed: {first_line(exc)}") from exc


# --- moma artifacts migrate ------------------------------------------------------------

@dataclass
class Migration:
    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    resumed_blocks: int = 0
    failed: list[str] = field(default_factory=list)


def migrate(local: LocalArtifacts, blob: BlobArtifacts, say: Callable[[str], None] = lambda line: None) -> Migration:
    """Copy every artifact of ``local`` that ``blob`` does not hold. Idempotent: what is
    there is left alone; what an interrupted run had staged is not sent again. A local
    file that is no longer its digest is reported and left out."""
    done = Migration()
    for sha256 in local.digests():
        try:
            with local.path(sha256).open("rb") as stream:
                upload = blob.store(sha256, stream, prove=False)
        except (BadRequest, OSError) as exc:
            done.failed.append(sha256)
            say(f"{sha256}: not copied: {exc}")
            continue
        if upload.existed:
            done.present.append(sha256)
            continue
        done.copied.append(sha256)
        done.resumed_blocks += upload.reused
        resumed = f", {upload.reused} of its blocks staged by an earlier run" if upload.reused else ""
        say(f"{sha256}: copied ({upload.size} bytes{resumed})")
    return done
