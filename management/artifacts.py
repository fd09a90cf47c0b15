"""The local artifact store: uploaded files kept by sha256 under ``$MOMA_HOME/artifacts``
and referenced as ``artifact://sha256/<hex>/<file name>``. The builder reads them
through a fetch scheme registered here."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder import fetch
from builder.errors import AssetNotAllowed

from .errors import BadRequest, PayloadTooLarge

SCHEME = "artifact"
_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    filename: str

    @property
    def url(self) -> str:
        return f"{SCHEME}://sha256/{self.sha256}/{urllib.parse.quote(self.filename)}"


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, stream: BinaryIO, filename: str, max_bytes: int) -> StoredArtifact:
        """Stream into a temporary file while hashing, then rename into place."""
        try:
            fetch.check_filename(filename, "name")
        except AssetNotAllowed as exc:
            raise BadRequest(str(exc)) from exc
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"the artifact is larger than the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            sha256 = digest.hexdigest()
            target = self.path(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, target)
        finally:
            Path(temp_name).unlink(missing_ok=True)
        return StoredArtifact(sha256, size, filename)

    def path(self, sha256: str) -> Path:
        if not _HEX.fullmatch(sha256):
            raise BadRequest(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def open(self, parts: urllib.parse.SplitResult) -> tuple[BinaryIO, int | None]:
        """The fetch opener for ``artifact://sha256/<hex>/<name>`` URLs."""
        sha256 = parse_url(parts)
        path = self.path(sha256)
        return path.open("rb"), path.stat().st_size

    def register(self) -> None:
        fetch.register_scheme(SCHEME, self.open)


def parse_url(parts: urllib.parse.SplitResult) -> str:
    """The sha256 of an artifact URL; ValueError when it is not one."""
    segments = parts.path.strip("/").split("/")
    if parts.scheme != SCHEME or parts.netloc != "sha256" or len(segments) != 2 or not _HEX.fullmatch(segments[0]):
        raise ValueError(f"not an artifact URL: {parts.geturl()}")
    return segments[0]
