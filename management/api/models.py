"""Models: register, list (by name, tag), get."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import NotFound
from ..store import get_store
from .pagination import page_args, paginated
from .requests import current_account, json_body
from .schemas import validate
from .urls import check_url

blueprint = Blueprint("models", __name__, url_prefix="/models")


@blueprint.post("")
def register() -> Response:
    body = validate(json_body(), "Model")
    check_url(body["url"], "url")
    return jsonify(get_store().models.register(current_account().id, body))


@blueprint.get("")
def list_models() -> Response:
    count, after = page_args()
    filters = {"name": request.args.get("name"), "tag": request.args.get("tag")}
    page = get_store().models.list(current_account().id, after=after, limit=count, **filters)
    return jsonify(paginated(page, filters))


@blueprint.get("/<model_id>")
def get_model(model_id: str) -> Response:
    model = get_store().models.get(current_account().id, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return jsonify(model)
