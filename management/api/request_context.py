"""What every request goes through before its view: a request id, the api-version
check, the bearer token, no NUL characters in the URL (nor in JSON bodies), and for
account routes the account (404 when unknown, or when the token belongs to another
account, so accounts cannot be probed)."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from ..config import SUPPORTED_API_VERSIONS, Settings
from ..errors import BadRequest, Detail, NotFound, Unauthorized, UnsupportedMediaType
from ..store import Account, Token
from .extensions import get_store

ACCOUNT_PREFIX = "/api/subscriptions/<sub>/resourceGroups/<rg>/accounts/<account>"
UNVERSIONED = ("/swagger.json", "/api/admin/")


def init_app(app: Flask) -> None:
    app.url_value_preprocessor(_authenticate)
    app.url_value_preprocessor(_refuse_nul_in_url)
    app.after_request(_request_ids)


def account_blueprint() -> Blueprint:
    blueprint = Blueprint("account", __name__, url_prefix=ACCOUNT_PREFIX)
    blueprint.url_value_preprocessor(_resolve_account)
    return blueprint


def settings() -> Settings:
    return current_app.config["MOMA_SETTINGS"]


def link(target: str) -> str:
    """A link for clients to ``target`` (a path and query): on ``MOMA_PUBLIC_URL`` when it
    is set, else host-relative; never on the request's Host header, which the client
    chose and a link follower would trust."""
    return settings().public_url.rstrip("/") + target


def current_account() -> Account:
    return g.account


def current_token() -> Token | None:
    return g.get("token")


def is_admin() -> bool:
    """An admin token, or authentication switched off."""
    token = current_token()
    return token is None or token.admin


def json_body() -> Any:
    """The request's JSON body: 415 unless it is JSON, 400 when it does not parse."""
    if not request.is_json:
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.mimetype or 'none'}")
    _check_streamed_size()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # not a ValueError, so get_json lets it through
        raise BadRequest("the request body is nested too deeply",
                         [Detail("InvalidJson", "the body could not be parsed as JSON")]) from None
    if body is None and request.get_data(cache=True):
        raise BadRequest("the request body is not valid JSON",
                         [Detail("InvalidJson", "the body could not be parsed as JSON")])
    if body is None:
        raise BadRequest("the request body is empty; a JSON object is required")
    _refuse_nul(_strings(body), "the request body")
    return body


def _strings(body: Any) -> list[str]:
    """Every key and string value in a parsed JSON body, at any depth (without recursion:
    the parser allows nesting deeper than a recursive walk would survive)."""
    found, pending = [], [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            pending += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            pending += value
    return found


def _refuse_nul_in_url(endpoint: str | None, values: dict[str, Any] | None) -> None:
    _refuse_nul([request.path, *request.args.keys(), *request.args.values()], "the URL")


def _refuse_nul(texts: list[str], where: str) -> None:
    """PostgreSQL text cannot hold NUL characters (it fails the statement): refuse them on
    every backend alike, as the client's error they are."""
    if any("\x00" in text for text in texts):
        raise BadRequest(f"{where} contains a NUL character (\\u0000 or %00), which is not allowed",
                         [Detail("InvalidCharacter", f"{where}: NUL characters are not allowed")])


def _check_streamed_size() -> None:
    """413 for a streamed (chunked) body over the limit. Werkzeug cuts such a body at the
    limit without a word, and only a read past the cut raises its 413; without this the
    cut body would be parsed as if whole (400 at best). A body of exactly the limit
    cannot be told from a longer one, so it is refused too."""
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(request.get_data(cache=True)) >= limit:
        request.stream.read(1)


def _authenticate(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.request_id = str(uuid.uuid4())
    if request.path.startswith("/api/") and not request.path.startswith(UNVERSIONED):
        _check_api_version()
    if not settings().auth:
        g.token = None
        return
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not secret.strip():
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    token = get_store().tokens.authenticate(secret.strip())
    if token is None:
        raise Unauthorized("the bearer token is not valid or was revoked")
    g.token = token


def _check_api_version() -> None:
    version = request.args.get("api-version")
    if version not in SUPPORTED_API_VERSIONS:
        given = (f"api-version {version!r} is not supported" if version
                 else "the api-version query parameter is required")
        raise BadRequest(f"{given}; supported versions: {', '.join(SUPPORTED_API_VERSIONS)}",
                         [Detail("InvalidApiVersion", f"use ?api-version={SUPPORTED_API_VERSIONS[0]}")])


def _resolve_account(endpoint: str | None, values: dict[str, Any] | None) -> None:
    assert values is not None
    sub, rg, name = values.pop("sub"), values.pop("rg"), values.pop("account")
    account = get_store().accounts.find(sub, rg, name)
    token = g.get("token")
    if account is None or (token is not None and not token.admin and token.account_id != account.id):
        raise NotFound(f"account {sub}/{rg}/{name} not found")
    g.account = account


def _request_ids(response: Response) -> Response:
    response.headers["x-ms-request-id"] = g.get("request_id") or str(uuid.uuid4())
    client_id = request.headers.get("x-ms-client-request-id")
    if client_id:
        response.headers["x-ms-client-request-id"] = client_id[:200]
    return response


def empty_response(status: int, **headers: str) -> Response:
    """A bodiless answer (202, 200 on delete, 204), typed like every other answer."""
    response = Response(status=status, mimetype="application/json")
    response.headers.update(headers)
    return response
