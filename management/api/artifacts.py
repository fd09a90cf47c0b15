"""Artifact upload (a moma extension): the CLI streams a local file here (with the
``sha256`` it has, which the upload must match) and registers the returned
``artifact://`` URL in a model or manifest."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import BadRequest, UnsupportedMediaType
from .extensions import get_artifacts, get_store
from .request_context import current_account, settings

blueprint = Blueprint("artifacts", __name__, url_prefix="/artifacts")


@blueprint.post("")
def upload() -> Response:
    name = request.args.get("name", "")
    if not name:
        raise BadRequest("the name query parameter (the file's name) is required")
    if request.mimetype != "application/octet-stream":
        raise UnsupportedMediaType("upload the file's bytes as application/octet-stream")
    limit = settings().max_artifact_bytes
    request.max_content_length = limit
    stored = get_artifacts().put(request.stream, name, limit, request.args.get("sha256"))
    get_store().artifacts.record(current_account().id, stored.sha256, stored.size)
    return jsonify({"url": stored.url, "sha256": stored.sha256, "size": stored.size})
