"""Manifests: register (models must be registered, the driver must be an asset),
list (by modelId, manifestName), get."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..errors import Detail, NotFound, ValidationFailed
from .extensions import get_store
from .pagination import page_args, paginated
from .request_context import current_account, json_body
from .schemas import validate
from .urls import check_url

blueprint = Blueprint("manifests", __name__, url_prefix="/manifests")


@blueprint.post("")
def register() -> Response:
    body = validate(json_body(), "Manifest")
    _check_assets(body)
    return jsonify(get_store().manifests.register(current_account().id, body))


@blueprint.get("")
def list_manifests() -> Response:
    count, after = page_args()
    model_id, name = request.args.get("modelId"), request.args.get("manifestName")
    page = get_store().manifests.list(current_account().id, model_id=model_id, name=name, after=after, limit=count)
    return jsonify(paginated(page, {"modelId": model_id, "manifestName": name}))


@blueprint.get("/<manifest_id>")
def get_manifest(manifest_id: str) -> Response:
    manifest = get_store().manifests.get(current_account().id, manifest_id)
    if manifest is None:
        raise NotFound(f"manifest {manifest_id} not found")
    return jsonify(manifest)


def _check_assets(body: dict[str, Any]) -> None:
    ids = [asset["id"] for asset in body["assets"]]
    duplicates = sorted({asset_id for asset_id in ids if ids.count(asset_id) > 1})
    if duplicates:
        raise ValidationFailed(f"asset ids must be unique: {', '.join(duplicates)}",
                               [Detail("DuplicateAssetId", f"assets: {d} appears twice") for d in duplicates])
    if body["driverProgram"] not in ids:
        raise ValidationFailed(
            f"driverProgram {body['driverProgram']!r} must be the id of one of the manifest's assets",
            [Detail("InvalidField", f"driverProgram: not among the asset ids {', '.join(ids)}")])
    for index, asset in enumerate(body["assets"]):
        check_url(asset["url"], f"assets[{index}].url")
    for key, url in (body["targetRuntime"].get("properties") or {}).items():
        check_url(url, f"targetRuntime.properties.{key}")
