"""Models: register, list (by name, tag, and ``sha256``: uploaded with those bytes), get."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from ..artifacts import SCHEME
from ..errors import BadRequest, Detail, NotFound
from .extensions import get_store
from .pagination import page_args, paginated
from .request_context import current_account, json_body
from .schemas import validate
from .urls import check_url

blueprint = Blueprint("models", __name__, url_prefix="/models")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@blueprint.post("")
def register() -> Response:
    body = validate(json_body(), "Model")
    check_url(body["url"], "url")
    return jsonify(get_store().models.register(current_account().id, body))


@blueprint.get("")
def list_models() -> Response:
    count, after = page_args()
    filters = {"name": request.args.get("name"), "tag": request.args.get("tag")}
    digest = request.args.get("sha256")
    page = get_store().models.list(current_account().id, after=after, limit=count, url_prefix=_artifact_prefix(digest),
                                   **filters)
    return jsonify(paginated(page, {**filters, "sha256": digest}))


@blueprint.get("/<model_id>")
def get_model(model_id: str) -> Response:
    model = get_store().models.get(current_account().id, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return jsonify(model)


def _artifact_prefix(digest: str | None) -> str | None:
    """Models uploaded with these bytes: their URL is ``artifact://sha256/<digest>/<file name>``.
    How the CLI finds a model it would otherwise upload again."""
    if digest is None:
        return None
    if not _SHA256.fullmatch(digest):
        raise BadRequest(f"sha256 must be 64 lowercase hex digits, got {digest[:80]!r}",
                         [Detail("InvalidSha256", "sha256: not a sha256 hex digest")])
    return f"{SCHEME}://sha256/{digest}/"
