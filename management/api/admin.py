"""Administration (a moma extension): accounts and API tokens, for ``moma account``
and ``moma token``. Needs an admin token.

Bodies are validated whole: an unknown field is a 400, never ignored. An admin token is
made only when the body says ``"admin": true``; every other token request must name its
account, so a misspelled or empty ``accountName`` cannot turn into an admin token."""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Blueprint, Response, jsonify

from ..errors import Detail, Forbidden, NotFound, ValidationFailed
from ..store import Account
from .extensions import get_store
from .request_context import is_admin, json_body
from .schemas import validate

blueprint = Blueprint("admin", __name__, url_prefix="/api/admin")

SCOPE_FIELDS = ("subscriptionId", "resourceGroupName", "accountName")


@blueprint.before_request
def _admins_only() -> None:
    if not is_admin():
        raise Forbidden("administration needs an admin token")


@blueprint.get("/accounts")
def list_accounts() -> Response:
    return jsonify({"value": [account.as_json() for account in get_store().accounts.list()]})


@blueprint.post("/accounts")
def create_account() -> Response:
    body = validate(json_body(), "AccountRequest")
    return jsonify(get_store().accounts.create(*_scope(body)).as_json())


@blueprint.get("/tokens")
def list_tokens() -> Response:
    return jsonify({"value": [token.as_json() for token in get_store().tokens.list()]})


@blueprint.post("/tokens")
def create_token() -> Response:
    body = validate(json_body(), "TokenRequest")
    named = [field for field in SCOPE_FIELDS if field in body]
    if body.get("admin"):
        if named:
            _refuse("an admin token belongs to no account: leave out subscriptionId, resourceGroupName and "
                    "accountName, or leave out \"admin\" for a token of that account",
                    f"{', '.join(named)}: not allowed with \"admin\": true")
        account_id = None
    elif "accountName" not in body:
        _refuse('accountName is required for an account token; ask for an admin token with "admin": true',
                "accountName: is required")
    else:
        account_id = _account(*_scope(body)).id
    secret, token = get_store().tokens.create(body["name"], account_id)
    return jsonify({**token.as_json(), "token": secret})


@blueprint.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Response:
    if not get_store().tokens.revoke(token_id):
        raise NotFound(f"no live token {token_id}")
    return jsonify({"id": token_id, "revoked": True})


def _scope(body: dict[str, Any]) -> tuple[str, str, str]:
    return body.get("subscriptionId", "default"), body.get("resourceGroupName", "default"), body["accountName"]


def _account(sub: str, rg: str, name: str) -> Account:
    account = get_store().accounts.find(sub, rg, name)
    if account is None:
        raise NotFound(f"account {sub}/{rg}/{name} not found")
    return account


def _refuse(message: str, detail: str) -> NoReturn:
    raise ValidationFailed(message, [Detail("InvalidField", detail)])
