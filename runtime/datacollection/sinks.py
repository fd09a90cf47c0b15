"""Where formatted rows are written. Each sink appends one block (whole rows, at most
``BLOCK_BYTES``) to one path per call, and raises ``SinkError`` when it could not; the
drainer (``hub.py``) keeps the block and retries with backoff.

- ``LocalSink``: files under ``<dir>/modeldata/<path>``. Several workers and replicas
  append to the same file: each block is one ``write()`` on an ``O_APPEND`` descriptor,
  and the header goes in with the file itself (written to a temporary file, then
  ``link()``-ed into place, which fails if another writer won), so it is written once
  and always first. Files are 0644 and directories 0777 whatever the umask: the host
  user who reads a bind-mounted directory is not the container's user (uid 10001),
  and must be able to delete what it wrote.
- ``BlobSink``: append blobs through ``azure-storage-blob``, imported only when storage
  is configured: in container ``modeldata`` of the account a connection string names,
  or in the container a URL with a SAS names (what moma gives a service: create, add
  and write only, so nothing here may need to read — no existence checks; a blob
  that exists already answers 409 to its conditional creation). Every writer's first
  append to a blob is its header with ``appendpos_condition=0``, so exactly one header
  lands, at the start. A blob full of blocks (50,000) continues in ``data.1.csv``, ``data.2.csv``...
  The SDK's own retries are off: the drainer retries, so one outage is not retried
  twice over, and a timeout leaves the block pending (a block that did land before a
  timeout is written again: delivery is at least once).
- ``DebugSink``: prints rows on stdout (``AML_MODEL_DC_DEBUG=true``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import threading
from typing import Any

from .context import CONTAINER

log = logging.getLogger("moma.runtime")

BLOCK_BYTES = 4 * 1024 * 1024  # the largest append block every service version takes
FILE_MODE = 0o644
DIR_MODE = 0o777


class SinkError(Exception):
    """A block could not be written; it stays pending."""


class Sink:
    name = "sink"

    def write(self, path: str, header: bytes | None, block: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalSink(Sink):
    name = "local"

    def __init__(self, directory: str) -> None:
        self.root = os.path.join(os.path.abspath(directory), CONTAINER)

    def write(self, path: str, header: bytes | None, block: bytes) -> None:
        full = os.path.join(self.root, path)
        try:
            fd = self._open(full, header)
            try:
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"{full}: {exc.strerror or exc}") from exc

    def _open(self, full: str, header: bytes | None) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            return os.open(full, flags)
        except FileNotFoundError:
            pass
        self._makedirs(os.path.dirname(full))
        if header:
            self._create_with(full, header)
            return os.open(full, flags)
        fd = os.open(full, flags | os.O_CREAT, FILE_MODE)
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)
        return fd

    def _create_with(self, full: str, header: bytes) -> None:
        """Create ``full`` holding ``header``, atomically; another writer may win."""
        directory, name = os.path.split(full)
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, header)
        finally:
            os.close(fd)
        try:
            os.link(tmp, full)
        except FileExistsError:
            pass
        except OSError as exc:  # a file system without hard links: a small race is left
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            try:
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            except FileExistsError:
                pass
            else:
                try:
                    os.fchmod(fd, FILE_MODE)
                    os.write(fd, header)
                finally:
                    os.close(fd)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _makedirs(self, directory: str) -> None:
        missing = []
        while directory and not os.path.isdir(directory):
            missing.append(directory)
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        for path in reversed(missing):
            try:
                os.mkdir(path, DIR_MODE)
            except FileExistsError:
                continue
            with contextlib.suppress(OSError):
                os.chmod(path, DIR_MODE)


class DebugSink(Sink):
    name = "debug"

    def write(self, path: str, header: bytes | None, block: bytes) -> None:
        text = block.decode("utf-8", "replace")
        out = "".join(f"[datacollection] {path}: {line}\n" for line in text.splitlines())
        try:
            sys.stdout.write(out)
            sys.stdout.flush()
        except (OSError, ValueError) as exc:
            raise SinkError(f"stdout: {exc}") from exc


class BlobSink(Sink):
    """Append blobs in container ``modeldata`` of the account a connection string names,
    or in the container of a URL carrying a SAS (``http(s)://.../<container>?sv=...``)."""

    name = "blob"
    MAX_ROLLOVERS = 1000

    def __init__(self, storage: str, metadata: dict[str, str] | None = None,
                 timeout_s: float = 10.0) -> None:
        from azure.storage.blob import BlobServiceClient, ContainerClient  # only when configured

        logging.getLogger("azure").setLevel(logging.WARNING)
        options: dict[str, Any] = dict(retry_total=0, connection_timeout=timeout_s, read_timeout=timeout_s)
        self._creates_container = not is_container_url(storage)  # a SAS cannot: the worker made it
        if self._creates_container:
            self._client: Any = BlobServiceClient.from_connection_string(storage, **options)
            self._container = self._client.get_container_client(CONTAINER)
        else:
            self._client = ContainerClient.from_container_url(storage, **options)
            self._container = self._client
        self._container_ready = not self._creates_container
        self._started: set[str] = set()   # blobs this process has created/headed
        self._rollover: dict[str, int] = {}  # path -> which data.N file is current
        self.metadata = metadata or {}

    def write(self, path: str, header: bytes | None, block: bytes) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            self._append(path, header, block)
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None) or ""
            if code in ("ContainerNotFound", "BlobNotFound"):  # deleted behind our back
                if code == "ContainerNotFound" and self._creates_container:
                    self._container_ready = False
                self._started = set()
            raise SinkError(f"blob {path}: {code or exc.status_code}: "
                            f"{str(exc.message or exc).splitlines()[0]}") from exc
        except AzureError as exc:
            raise SinkError(f"blob {path}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc

    def _append(self, path: str, header: bytes | None, block: bytes) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        if not self._container_ready:
            try:
                self._container.create_container()
            except ResourceExistsError:
                pass
            self._container_ready = True
        for _ in range(self.MAX_ROLLOVERS):
            name = self._name(path)
            blob = self._container.get_blob_client(name)
            try:
                if name not in self._started:
                    self._start(blob, header)
                    self._started.add(name)
                blob.append_block(block)
                return
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "BlockCountExceedsLimit":
                    raise
                self._rollover[path] = self._rollover.get(path, 0) + 1
        raise SinkError(f"blob {path}: more than {self.MAX_ROLLOVERS} full blobs")

    def _name(self, path: str) -> str:
        n = self._rollover.get(path, 0)
        if not n:
            return path
        stem, dot, ext = path.rpartition(".")
        return f"{stem}.{n}.{ext}" if dot else f"{path}.{n}"

    def _start(self, blob: Any, header: bytes | None) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            blob.create_append_blob(metadata=self.metadata, if_none_match="*")
        except (ResourceExistsError, HttpResponseError) as exc:
            if getattr(exc, "status_code", None) not in (409, 412):
                raise
        if header:
            try:
                blob.append_block(header, appendpos_condition=0)
            except HttpResponseError as exc:
                if exc.status_code != 412:  # someone else's header is already there
                    raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


def is_container_url(storage: str) -> bool:
    """A container URL (with its SAS), rather than a connection string."""
    return storage.strip().lower().startswith(("https://", "http://"))
