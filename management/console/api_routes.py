"""API routes the console needs and the API did not have (moma extensions). They sit
behind the API's own authentication and, under an account, its account check, exactly
like every other route:

- ``GET /api/console/whoami``: the token's kind and, for an account token, its account;
- ``GET <account>/console/summary``: counts of models, manifests, images and services
  by state, and the last operations;
- ``GET <account>/console/artifactSizes?sha256=...``: sizes of artifacts the account uploaded;
- ``GET <account>/console/images/<id>/labels``: the labels of a built image, read from
  the Docker engine within ``MOMA_ENGINE_DEADLINE_SECONDS``.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request

from builder.engine import DockerEngine
from builder.errors import BuilderError

from ..api.extensions import get_store
from ..api.request_context import current_account, current_token, is_admin, settings
from ..engines.deadline import Deadline
from ..errors import BadRequest, NotFound, ServiceUnavailable
from . import queries

blueprint = Blueprint("console_api", __name__, url_prefix="/api/console")
account_blueprint = Blueprint("console_account_api", __name__, url_prefix="/console")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_DIGESTS = 1000


@blueprint.get("/whoami")
def whoami() -> Response:
    token = current_token()
    account = None
    if token is not None and token.account_id is not None:
        found = get_store().accounts.get(token.account_id)
        account = found.as_json() if found else None
    return jsonify({"admin": is_admin(), "tokenName": token.name if token else None, "account": account})


@account_blueprint.get("/summary")
def summary() -> Response:
    account = current_account()
    return jsonify(queries.summary(get_store().engine, account.id, account.path))


@account_blueprint.get("/artifactSizes")
def artifact_sizes() -> Response:
    digests = request.args.getlist("sha256")
    if len(digests) > MAX_DIGESTS or not all(_SHA256.fullmatch(digest) for digest in digests):
        raise BadRequest(f"sha256 takes up to {MAX_DIGESTS} digests of 64 lowercase hex digits")
    return jsonify(queries.artifact_sizes(get_store().engine, current_account().id, digests))


@account_blueprint.get("/images/<image_id>/labels")
def image_labels(image_id: str) -> Response:
    image = get_store().images.get(current_account().id, image_id)
    if image is None:
        raise NotFound(f"image {image_id} not found")
    location = image.get("imageLocation")
    if image["creationState"] != "Succeeded" or not location:
        return jsonify({})
    try:  # an engine that does not answer in time is a 504 EngineTimeout
        labels = _deadline().call("builder", f"image {image_id}", lambda: _labels(location))
    except (BuilderError, OSError) as exc:  # the SDK's API errors are requests' HTTPErrors, OSErrors
        raise ServiceUnavailable(f"cannot read the labels of image {image_id}: {exc}") from exc
    return jsonify(labels)


def _deadline() -> Deadline:
    """One per process, so that an engine that hangs is not asked again until it answers."""
    return current_app.extensions.setdefault("moma.console.deadline", Deadline(settings().engine_deadline_seconds))


def _labels(reference: str) -> dict[str, str]:
    engine = DockerEngine.from_env()
    try:
        return engine.image_labels(reference)
    finally:
        engine.client.close()
