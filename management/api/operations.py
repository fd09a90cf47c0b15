"""Operations: 200 in every state; ``resourceLocation`` ends in the resource id."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import NotFound
from .extensions import get_store
from .request_context import current_account

blueprint = Blueprint("operations", __name__, url_prefix="/operations")


@blueprint.get("/<operation_id>")
def get_operation(operation_id: str) -> Response:
    account = current_account()
    operation = get_store().operations.get(account.id, operation_id)
    if operation is None:
        raise NotFound(f"operation {operation_id} not found")
    return jsonify(operation.as_json(account.path))
