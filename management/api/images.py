"""Images: create (202 + Operation-Location, built by the worker), list (by
manifestId, manifestName), get, and the build log (a moma extension)."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from builder.dockerfile import check_runtime_supported
from builder.errors import UnsupportedRuntime

from ..config import SUPPORTED_API_VERSIONS
from ..errors import BadRequest, Detail, NotFound
from .extensions import get_store
from .pagination import page_args, paginated
from .request_context import current_account, empty_response, json_body, link, settings
from .schemas import validate

blueprint = Blueprint("images", __name__, url_prefix="/images")


@blueprint.post("")
def create() -> Response:
    account = current_account()
    body = validate(json_body(), "ImageRequest")
    manifest = get_store().manifests.get(account.id, body["manifestId"])
    if manifest is None:
        raise BadRequest(f"manifest {body['manifestId']} is not registered in this account",
                         [Detail("ManifestNotFound", f"manifestId: {body['manifestId']} not found")])
    try:
        check_runtime_supported(manifest["targetRuntime"]["runtimeType"])
    except UnsupportedRuntime as exc:
        raise BadRequest(str(exc), [Detail("UnsupportedRuntime", str(exc))]) from exc
    log_uri = f"{account.path}/images/{{id}}/buildLog?api-version={SUPPORTED_API_VERSIONS[0]}"
    _, operation_id = get_store().images.create(account.id, body, manifest, log_uri)
    return empty_response(202, **{"Operation-Location": f"{account.path}/operations/{operation_id}"})


@blueprint.get("")
def list_images() -> Response:
    count, after = page_args()
    manifest_id, manifest_name = request.args.get("manifestId"), request.args.get("manifestName")
    page = get_store().images.list(current_account().id, manifest_id=manifest_id, manifest_name=manifest_name,
                                   after=after, limit=count)
    filters = {"manifestId": manifest_id, "manifestName": manifest_name}
    return jsonify(paginated(page, filters, [_external(image) for image in page.items]))


@blueprint.get("/<image_id>")
def get_image(image_id: str) -> Response:
    return jsonify(_external(_image(image_id)))


@blueprint.get("/<image_id>/buildLog")
def build_log(image_id: str) -> Response:
    """From the store, where workers write it; a log file in this host's ``$MOMA_HOME``
    (where builds wrote before) is still served."""
    _image(image_id)
    text = get_store().build_logs.read(image_id)
    if text is not None:
        return send_file(io.BytesIO(text.encode()), mimetype="text/plain", max_age=0)
    path = settings().builder_config().build_log_dir / f"{image_id}.log"
    if not path.exists():
        raise NotFound(f"image {image_id} has no build log yet")
    return send_file(path, mimetype="text/plain", max_age=0)


def _image(image_id: str) -> dict[str, Any]:
    image = get_store().images.get(current_account().id, image_id)
    if image is None:
        raise NotFound(f"image {image_id} not found")
    return image


def _external(image: dict[str, Any]) -> dict[str, Any]:
    """Host-relative links become absolute on MOMA_PUBLIC_URL when it is set."""
    uri = image.get("imageBuildLogUri", "")
    if uri.startswith("/"):
        image["imageBuildLogUri"] = link(uri)
    return image
