"""What the operator's Azure Storage accounts share: a client from a connection string
(bounded retries and timeouts) and Azure's errors translated into ours at the boundary,
keeping only their first line, which holds no credential.

``azure-storage-blob`` is imported only when a storage setting is used."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .errors import MomaError


def service_client(connection_string: str, setting: str, error: type[MomaError], retries: int = 1,
                   read_timeout: float = 30) -> Any:
    """A ``BlobServiceClient`` for the connection string in ``setting``; ``error`` when the
    SDK is missing or the string is unusable."""
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as exc:
        raise error(f"{setting} is set but azure-storage-blob is not installed on the moma server "
                    "(pip install 'moma[blob]')") from exc
    try:
        return BlobServiceClient.from_connection_string(
            connection_string, retry_total=retries, initial_backoff=0.5, increment_base=2, random_jitter_range=0.2,
            connection_timeout=10, read_timeout=read_timeout)
    except ValueError as exc:
        raise error(f"{setting} is not a usable connection string: {exc}") from None


def first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "message", None) or exc).splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def translated(what: str, error: type[Exception]) -> Iterator[None]:
    """Azure's errors leave as ``error(what: first line)``."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise error(f"{what}: {first_line(exc)}") from exc
