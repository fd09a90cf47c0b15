"""Where a service's collected model data goes (``dataCollection.storageEnabled``).

With ``MOMA_DATA_COLLECTION_STORAGE`` (an Azure Storage connection string with the
account key, the account reachable from the containers) each service's rows go to a
blob container of its own, and its containers get only a SAS on it as
``AML_MODEL_DC_STORAGE`` (``collection_storage.py``; ``engines/environment.py`` puts
it in their environment). Without it they go to the local
sink: the host directory ``$MOMA_HOME/services/<id>/data``, which the local engine
mounts into the container. ``GET .../services/<id>/data`` reads either. Engines that
cannot mount a host directory (swarm) collect only to blob storage; turning storage on
there without it is a 400.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .collection_storage import CollectionStorage
from .config import Settings
from .engines import data_dir
from .errors import BadRequest, Detail
from .store import Service


def storage_enabled(service: Service) -> bool:
    return bool((service.settings.get("dataCollection") or {}).get("storageEnabled"))


def open_storage(settings: Settings) -> CollectionStorage | None:
    """The operator's storage account, when collection goes to blob storage."""
    if not settings.data_collection_storage:
        return None
    return CollectionStorage(settings.data_collection_storage, settings.data_collection_sas_seconds)


def collection_url(service: Service, storage: CollectionStorage | None) -> str | None:
    """For a service that collects to blob storage, a new SAS URL on its own container
    (``AML_MODEL_DC_STORAGE``; never the account's connection string)."""
    if storage is None or not storage_enabled(service):
        return None
    return storage.grant(service.id).url


def local_data_dir(settings: Settings, service: Service) -> Path | None:
    """The host directory of the local sink, when this service writes there."""
    if storage_enabled(service) and not settings.data_collection_storage:
        return data_dir(settings.services_dir, service.id)
    return None


def check_sink(body: dict[str, Any], compute_kind: str, settings: Settings) -> None:
    """A request that turns storage on where no sink can take the rows is refused,
    rather than collecting nothing: only the local engine has the local sink."""
    asked = bool((body.get("dataCollection") or {}).get("storageEnabled"))
    if asked and compute_kind != "local" and not settings.data_collection_storage:
        raise BadRequest(f"dataCollection.storageEnabled on a {compute_kind} compute needs Azure Blob Storage: "
                         "set MOMA_DATA_COLLECTION_STORAGE (a connection string the containers can reach) "
                         "on the moma server, or use the local compute",
                         [Detail("NotSupported", "dataCollection.storageEnabled: no local sink on "
                                                 f"{compute_kind} computes")])
