"""A service's collected model data (a moma extension): ``GET .../services/<id>/data``
lists the files, ``GET .../services/<id>/data/rows`` streams the rows of one
identifier (CSV with its header, or JSON Lines), both filtered by ``since``. They are
read from the service's local sink directory, or, with ``MOMA_DATA_COLLECTION_STORAGE``,
from its blob container with the operator's key."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ..collected_data import (
    BlobSource,
    DataFile,
    DataSource,
    LocalSource,
    SinceError,
    list_files,
    parse_since,
    read_rows,
)
from ..data_collection import open_storage, storage_enabled
from ..engines import data_dir
from ..errors import BadRequest, NotFound
from ..store import Account, Service
from .extensions import get_store
from .request_context import current_account, settings

blueprint = Blueprint("service_data", __name__)
_IDENTIFIER = re.compile(r"[A-Za-z0-9._-]{1,128}")
MIMETYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@blueprint.get("/services/<service_id>/data")
def list_data(service_id: str) -> Response:
    service, identifier, since = _query(current_account(), service_id)
    with contextlib.closing(_source(service)) as source:
        return jsonify({"value": [item.as_json() for item in list_files(source, identifier, since)]})


@blueprint.get("/services/<service_id>/data/rows")
def rows(service_id: str) -> Response:
    service, identifier, since = _query(current_account(), service_id)
    if identifier is None:
        raise BadRequest("identifier is required: rows of different identifiers have different columns "
                         "(e.g. identifier=inputs or identifier=prediction)")
    source = _source(service)
    try:
        files = list_files(source, identifier, since)
        formats = {item.format for item in files}
        if len(formats) > 1:
            raise BadRequest(f"identifier {identifier} has both CSV and JSON Lines files (the format changed): "
                             "pick a since on one side of the change; GET .../data lists the files")
    except BaseException:
        source.close()
        raise
    mimetype = MIMETYPES[formats.pop() if formats else "csv"]
    return Response(stream_with_context(_chunks(source, files, since)), mimetype=mimetype)


def _query(account: Account, service_id: str) -> tuple[Service, str | None, str | None]:
    """The service, and the filters."""
    service = get_store().services.get(account.id, service_id)
    if service is None:
        raise NotFound(f"service {service_id} not found")
    identifier = request.args.get("identifier") or None
    if identifier is not None and not _IDENTIFIER.fullmatch(identifier):
        raise BadRequest(f"identifier must be 1 to 128 letters, digits, '.', '_' or '-', got {identifier!r}")
    try:
        since = parse_since(request.args["since"]) if request.args.get("since") else None
    except SinceError as exc:
        raise BadRequest(str(exc)) from None
    return service, identifier, since


def _source(service: Service) -> DataSource:
    """Where the service's rows are; when there is no such place, why."""
    directory = data_dir(settings().services_dir, service.id)
    if directory.is_dir():
        return LocalSource(directory)
    if not storage_enabled(service):
        raise BadRequest(f"service {service.name} does not collect model data: dataCollection.storageEnabled "
                         f"is false (moma service update -i {service.id} --collect-model-data true)")
    storage = open_storage(settings())
    if storage is not None:
        return BlobSource(storage, service.id)
    compute = get_store().computes.get(service.account_id, service.compute)
    if compute is not None and compute.kind != "local":
        raise BadRequest(f"service {service.name} runs on {compute.kind} compute {compute.name}, which has no local "
                         "data directory: set MOMA_DATA_COLLECTION_STORAGE to collect to Azure Blob Storage")
    return LocalSource(directory)  # nothing collected yet


def _chunks(source: DataSource, files: list[DataFile], since: str | None) -> Iterator[bytes]:
    """Rows gathered into chunks of about 64 KiB."""
    with contextlib.closing(source):
        pending: list[str] = []
        size = 0
        for row in read_rows(source, files, since):
            pending.append(row)
            size += len(row)
            if size >= 65536:
                yield "".join(pending).encode()
                pending, size = [], 0
        if pending:
            yield "".join(pending).encode()
