"""Reading what a service's data collection wrote: its local sink directory, or its
blob container in the operator's storage account (read with the operator's key).

The runtime writes ``{sub}/{rg}/{account}/{service}/{modelId}-{modelName}-{modelVersion}/
{identifier}/{yyyy}/{mm}/{dd}/data.csv`` (or ``data.jsonl``; a full append blob goes on
in ``data.1.csv``, ``data.2.csv``...) below ``<data dir>/modeldata/`` or in the
service's container: CSV files start with one header row ``$Timestamp,$CorrelationId,
$RequestId,<columns>``; every row starts with its UTC timestamp
``yyyy-mm-ddThh:mm:ss.mmmZ``, so "since" compares text. Files being appended to while
they are read give their rows up to the last complete line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Protocol

from .collection_storage import CollectionStorage, container_name

log = logging.getLogger("moma.data")
CONTAINER = "modeldata"
_FILE = re.compile(r"^data(?:\.([0-9]{1,6}))?\.(csv|jsonl)$")
_DAY = re.compile(r"^\d{4}$|^\d{2}$")
_CHUNK = 1024 * 1024


class SinceError(ValueError):
    """``since`` is not a date or a date and time."""


class DataSource(Protocol):
    """Where a service's files are: ``location`` names it in listings."""

    location: str

    def entries(self) -> Iterator[tuple[str, int]]:
        """(path below the location, size) of every file."""

    def chunks(self, path: str) -> Iterator[bytes]:
        """The file's content; nothing when it cannot be read safely."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class DataFile:
    path: str        # below the container, as in blob storage
    model: str       # {modelId}-{modelName}-{modelVersion}
    identifier: str  # inputs, prediction, or a driver collector's
    day: str         # yyyy-mm-dd (UTC)
    format: str      # csv | jsonl
    size: int
    location: str = CONTAINER  # the container (or the local sink's directory) it is in
    part: int = 0    # 0 for data.csv, N for data.N.csv

    def as_json(self) -> dict[str, object]:
        return {"path": f"{self.location}/{self.path}", "model": self.model, "identifier": self.identifier,
                "date": self.day, "format": self.format, "bytes": self.size}


class LocalSource:
    """``<data dir>/modeldata``, which the scoring container writes: no links are followed."""

    location = CONTAINER

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / CONTAINER

    def entries(self) -> Iterator[tuple[str, int]]:
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                status = os.lstat(os.path.join(directory, name))
                if stat.S_ISREG(status.st_mode):  # the container writes here: no links out
                    yield "/".join(Path(directory, name).relative_to(self.root).parts), status.st_size

    def chunks(self, path: str) -> Iterator[bytes]:
        try:
            opened = _open_beneath(self.root, path)
        except OSError as exc:  # gone since it was listed, or a link: its rows are not served
            log.warning("collected data: skipping %s: %s", path, exc)
            return
        with opened as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    def close(self) -> None:
        pass


class BlobSource:
    """The service's blob container, read with the operator's key."""

    def __init__(self, storage: CollectionStorage, service_id: str) -> None:
        self.storage = storage
        self.service_id = service_id
        self.location = container_name(service_id)

    def entries(self) -> Iterator[tuple[str, int]]:
        return self.storage.blobs(self.service_id)

    def chunks(self, path: str) -> Iterator[bytes]:
        return self.storage.chunks(self.service_id, path)

    def close(self) -> None:
        self.storage.close()


def parse_since(text: str) -> str:
    """An ISO 8601 date or date and time (naive means UTC) as the row timestamp text
    it is compared with."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise SinceError(f"since must be an ISO 8601 date or date and time such as 2017-09-01 or "
                         f"2017-09-01T12:00:00Z, got {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def list_files(source: DataSource, identifier: str | None = None, since: str | None = None) -> list[DataFile]:
    """Every data file, oldest day first; only days on or after ``since``'s."""
    found = []
    for path, size in source.entries():
        relative = path.split("/")
        named = _FILE.match(relative[-1])
        if named is None or len(relative) < 6 or not all(_DAY.match(part) for part in relative[-4:-1]):
            continue
        item = DataFile(path=path, model=relative[-6], identifier=relative[-5], day="-".join(relative[-4:-1]),
                        format=named.group(2), size=size, location=source.location, part=int(named.group(1) or 0))
        if identifier is not None and item.identifier != identifier:
            continue
        if since is not None and item.day < since[:10]:
            continue
        found.append(item)
    return sorted(found, key=lambda item: (item.day, item.identifier, item.model, item.part, item.path))


def read_rows(source: DataSource, files: list[DataFile], since: str | None = None) -> Iterator[str]:
    """The rows of ``files`` in order, as text: CSV with a header whenever it differs
    from the previous file's, JSON Lines as they are."""
    header = None
    for item in files:
        lines = _lines(source.chunks(item.path))
        if item.format == "jsonl":
            yield from _jsonl(lines, since)
            continue
        rows = _csv(lines, since)
        first = next(rows, None)
        if first is None:
            continue
        if first != header:
            header = first
            yield first
        yield from rows


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """The file's lines up to its last newline, each with its ``\n`` (only ``\n`` ends a
    line: ``str.splitlines`` would also split at characters CSV leaves unquoted)."""
    for text in _complete_text(chunks):
        for line in text.split("\n")[:-1]:
            yield line + "\n"


def _open_beneath(root: Path, relative: str) -> BinaryIO:
    """Open ``root/relative`` for reading without following a symbolic link at any step:
    the scoring container (the driver is user code) writes these directories, and could
    swap a file or a directory for a link to a host file or another service's data."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | nofollow)
    try:
        *directories, name = relative.split("/")
        for part in directories:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise OSError(f"{relative} is not a regular file")
    return os.fdopen(file_fd, "rb")


def _complete_text(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if cut:
            yield data[:cut].decode("utf-8", errors="replace")


def _csv(lines: Iterator[str], since: str | None) -> Iterator[str]:
    """The header row, then the rows on or after ``since`` (quoted newlines kept)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    reader = csv.reader(lines)
    first = True
    for row in reader:
        if not first and since is not None and row and row[0] < since:
            continue
        first = False
        writer.writerow(row)
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def _jsonl(lines: Iterator[str], since: str | None) -> Iterator[str]:
    for line in lines:
        if since is not None:
            try:
                if str(json.loads(line).get("timestamp", "")) < since:
                    continue
            except (ValueError, AttributeError):
                continue
        yield line
