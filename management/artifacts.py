"""Uploaded files, content-addressed by sha256 and referenced as
``artifact://sha256/<hex>/<file name>``: in a local directory (``$MOMA_HOME/artifacts``,
the default, for one machine) or in Azure Blob Storage (``MOMA_ARTIFACT_STORAGE``,
shared by every API replica and worker: ``blob_artifacts.py``).

Whatever the store, an upload is hashed as it streams in and stored under its digest
only once complete (and, when the client said which digest it sends, only when it is
that one), and what is read back is hashed as it is read: bytes that are not the
digest's fail the read (``DigestMismatch``) instead of reaching an image. The builder
reads artifacts through the ``artifact`` fetch scheme that :func:`register` adds."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Protocol

from builder import fetch
from builder.errors import AssetNotAllowed, DigestMismatch

from .config import Settings
from .errors import BadRequest, PayloadTooLarge

SCHEME = "artifact"
_HEX = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    filename: str

    @property
    def url(self) -> str:
        return f"{SCHEME}://sha256/{self.sha256}/{urllib.parse.quote(self.filename)}"


class ArtifactStore(Protocol):
    def put(self, stream: BinaryIO, filename: str, max_bytes: int, sha256: str | None = None) -> StoredArtifact:
        """Store what ``stream`` holds (at most ``max_bytes``); with ``sha256``, only if
        that is its digest (BadRequest otherwise, nothing stored)."""

    def open(self, parts: urllib.parse.SplitResult) -> tuple[BinaryIO, int | None]:
        """The fetch opener of ``artifact://`` URLs: a stream checked against the digest."""


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """Blob storage when ``MOMA_ARTIFACT_STORAGE`` is set, else ``$MOMA_HOME/artifacts``."""
    if settings.artifact_storage:
        from .blob_artifacts import BlobArtifacts

        return BlobArtifacts(settings.artifact_storage)
    return LocalArtifacts(settings.artifact_dir)


def register(store: ArtifactStore) -> None:
    """The builder reads ``artifact://`` URLs from ``store`` from now on."""
    fetch.register_scheme(SCHEME, store.open)


class LocalArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, stream: BinaryIO, filename: str, max_bytes: int, sha256: str | None = None) -> StoredArtifact:
        """Stream into a temporary file while hashing, then rename into place."""
        check_upload(filename, sha256)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                digest, size = copy_hashed(stream, out, max_bytes)
            check_claim(digest, sha256)
            target = self.path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, target)
        finally:
            Path(temp_name).unlink(missing_ok=True)
        return StoredArtifact(digest, size, filename)

    def path(self, sha256: str) -> Path:
        if not _HEX.fullmatch(sha256):
            raise BadRequest(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def open(self, parts: urllib.parse.SplitResult) -> tuple[BinaryIO, int | None]:
        sha256 = parse_url(parts)
        path = self.path(sha256)
        stream = path.open("rb")
        size = os.fstat(stream.fileno()).st_size
        return VerifiedReader(iter(partial(stream.read, CHUNK), b""), sha256, stream.close), size

    def digests(self) -> Iterator[str]:
        """Every stored digest (files named otherwise, such as a crashed upload's, are not artifacts)."""
        if self.root.is_dir():
            for path in sorted(self.root.glob("??/*")):
                if _HEX.fullmatch(path.name) and path.parent.name == path.name[:2] and path.is_file():
                    yield path.name


class VerifiedReader:
    """A read-only stream over ``chunks`` that checks, when they end, that what it handed
    out has the digest ``sha256``; otherwise that last read raises DigestMismatch."""

    def __init__(self, chunks: Iterable[bytes], sha256: str, close: Callable[[], None] = lambda: None) -> None:
        self._chunks = iter(chunks)
        self._sha256 = sha256
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._ended = False
        self._close = close

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
                self._check()
            else:
                self._hash.update(chunk)
                self._buffer += chunk
        count = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:count])
        del self._buffer[:count]
        return out

    def _check(self) -> None:
        actual = self._hash.hexdigest()
        if actual != self._sha256:
            raise DigestMismatch(f"artifact {self._sha256}: the artifact store returned bytes whose sha256 is {actual}")

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "VerifiedReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_upload(filename: str, sha256: str | None) -> None:
    try:
        fetch.check_filename(filename, "name")
    except AssetNotAllowed as exc:
        raise BadRequest(str(exc)) from exc
    if sha256 is not None and not _HEX.fullmatch(sha256):
        raise BadRequest(f"sha256 {sha256!r} is not 64 lower-case hexadecimal digits")


def check_claim(digest: str, claimed: str | None) -> None:
    if claimed is not None and digest != claimed:
        raise BadRequest(f"the upload's sha256 is {digest}, not {claimed} as the request said; nothing was stored")


def copy_hashed(stream: BinaryIO, out: BinaryIO, max_bytes: int) -> tuple[str, int]:
    """Copy ``stream`` to ``out``; its sha256 and size. Over ``max_bytes`` is PayloadTooLarge."""
    digest = hashlib.sha256()
    size = 0
    for chunk in limited_chunks(stream, max_bytes):
        digest.update(chunk)
        size += len(chunk)
        out.write(chunk)
    return digest.hexdigest(), size


def limited_chunks(stream: BinaryIO, max_bytes: int, chunk_bytes: int = CHUNK) -> Iterator[bytes]:
    size = 0
    while chunk := stream.read(chunk_bytes):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the artifact is larger than the limit of {max_bytes} bytes")
        yield chunk


def parse_url(parts: urllib.parse.SplitResult) -> str:
    """The sha256 of an artifact URL; ValueError when it is not one."""
    segments = parts.path.strip("/").split("/")
    if parts.scheme != SCHEME or parts.netloc != "sha256" or len(segments) != 2 or not _HEX.fullmatch(segments[0]):
        raise ValueError(f"not an artifact URL: {parts.geturl()}")
    return segments[0]
