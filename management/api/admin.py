"""Administration (a moma extension): accounts and API tokens, for ``moma account``
and ``moma token``. Needs an admin token."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify

from ..errors import BadRequest, Detail, Forbidden, NotFound
from ..store import Account, get_store
from .requests import current_token, json_body

blueprint = Blueprint("admin", __name__, url_prefix="/api/admin")

ACCOUNT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
SCOPE_PART = re.compile(r"[A-Za-z0-9._-]{1,64}")


@blueprint.before_request
def _admins_only() -> None:
    token = current_token()
    if token is not None and not token.admin:
        raise Forbidden("administration needs an admin token")


@blueprint.get("/accounts")
def list_accounts() -> Response:
    return jsonify({"value": [account.as_json() for account in get_store().accounts.list()]})


@blueprint.post("/accounts")
def create_account() -> Response:
    sub, rg, name = _scope(json_body())
    return jsonify(get_store().accounts.create(sub, rg, name).as_json())


@blueprint.get("/tokens")
def list_tokens() -> Response:
    return jsonify({"value": [token.as_json() for token in get_store().tokens.list()]})


@blueprint.post("/tokens")
def create_token() -> Response:
    body = json_body()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not SCOPE_PART.fullmatch(name):
        raise BadRequest("name is required: 1 to 64 of letters, digits, '.', '_', '-'")
    account = _account(*_scope(body)) if body.get("accountName") else None
    secret, token = get_store().tokens.create(name, account.id if account else None)
    return jsonify({**token.as_json(), "token": secret})


@blueprint.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Response:
    if not get_store().tokens.revoke(token_id):
        raise NotFound(f"no live token {token_id}")
    return jsonify({"id": token_id, "revoked": True})


def _scope(body: Any) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object with subscriptionId, resourceGroupName, accountName")
    sub, rg, name = (body.get(key, "default") for key in ("subscriptionId", "resourceGroupName", "accountName"))
    problems = [Detail("InvalidField", f"{key}: {value!r} is not allowed")
                for key, value in (("subscriptionId", sub), ("resourceGroupName", rg))
                if not isinstance(value, str) or not SCOPE_PART.fullmatch(value)]
    if not isinstance(name, str) or not ACCOUNT_NAME.fullmatch(name):
        problems.append(Detail("InvalidField", f"accountName: {name!r} must be 1 to 32 lower-case letters, digits "
                                               "and inner hyphens (it names image repositories)"))
    if problems:
        raise BadRequest(problems[0].message, problems)
    return sub, rg, name


def _account(sub: str, rg: str, name: str) -> Account:
    account = get_store().accounts.find(sub, rg, name)
    if account is None:
        raise NotFound(f"account {sub}/{rg}/{name} not found")
    return account
