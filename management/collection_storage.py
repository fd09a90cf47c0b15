"""The operator's Azure Storage account for collected model data
(``MOMA_DATA_COLLECTION_STORAGE``), which never leaves the moma server.

Each service collects into a blob container of its own, ``modeldata-<service id>``,
created by the worker with the operator's key. The scoring containers get only a
service SAS on that container: create, add and write — no read, no list, no delete —
that expires after ``MOMA_DATA_COLLECTION_SAS_SECONDS``; a service cannot reach
another's data, nor read back its own. The worker renews it before it runs out
(``worker/credential_renewal.py``). Reading through the API uses the operator's key.

``azure-storage-blob`` is imported only when storage is configured.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from .azure_blob import service_client, translated
from .errors import ServiceUnavailable

CONTAINER_PREFIX = "modeldata-"
CLOCK_SKEW = timedelta(minutes=5)  # a SAS is valid from a little before now: clocks differ
_NOT_NAME = re.compile(r"[^a-z0-9]+")


class StorageError(ServiceUnavailable):
    """The storage account cannot be used as configured, or did not answer."""

    code = "DataCollectionStorageUnavailable"


@dataclass(frozen=True)
class Grant:
    url: str  # the container's URL with the SAS as its query: AML_MODEL_DC_STORAGE of the service
    expires: datetime


def container_name(service_id: str) -> str:
    """``modeldata-`` and the service id's letters and digits: a valid container name
    (3 to 63 lower-case letters, digits and single hyphens)."""
    return (CONTAINER_PREFIX + _NOT_NAME.sub("", service_id.lower()))[:63]


class CollectionStorage:
    def __init__(self, connection_string: str, sas_seconds: float) -> None:
        self.client = service_client(connection_string, "MOMA_DATA_COLLECTION_STORAGE", StorageError)
        self.account_key = getattr(self.client.credential, "account_key", None)
        if not self.account_key:
            raise StorageError("MOMA_DATA_COLLECTION_STORAGE needs the account key (AccountKey=...): the worker "
                               "signs each service's own credential with it")
        self.lifetime = timedelta(seconds=sas_seconds)

    def grant(self, service_id: str, now: datetime | None = None) -> Grant:
        """The service's container (created when missing) and a new SAS on it."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        name = container_name(service_id)
        with _translated(f"cannot create container {name}"):
            _create(self.client.get_container_client(name))
        now = now or datetime.now(timezone.utc)
        expires = now + self.lifetime
        sas = generate_container_sas(self.client.account_name, name, account_key=self.account_key,
                                     permission=ContainerSasPermissions(create=True, add=True, write=True),
                                     start=now - CLOCK_SKEW, expiry=expires)
        return Grant(f"{self.client.url.rstrip('/')}/{name}?{sas}", expires)

    def blobs(self, service_id: str) -> Iterator[tuple[str, int]]:
        """(name, size) of every blob in the service's container; none before it has one."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated("cannot list collected data"):
            try:
                for blob in self.client.get_container_client(container_name(service_id)).list_blobs():
                    yield blob.name, int(blob.size or 0)
            except ResourceNotFoundError:  # no container: nothing collected yet
                return

    def chunks(self, service_id: str, name: str) -> Iterator[bytes]:
        with _translated(f"cannot read {name}"):
            blob = self.client.get_blob_client(container_name(service_id), name)
            yield from blob.download_blob().chunks()

    def close(self) -> None:
        self.client.close()


def _create(container: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        container.create_container()
    except ResourceExistsError:  # from an earlier deploy, or another worker just now
        pass


def _translated(what: str) -> contextlib.AbstractContextManager[None]:
    return translated(f"data collection storage: {what}", StorageError)
