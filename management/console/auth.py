"""Signing in and out, the session of every request, CSRF, and the account a page is of.

Sign-in takes an API token and asks the API who it is (``/api/console/whoami``): a
token the API refuses never makes a session. The session cookie is HttpOnly,
SameSite=Strict, scoped to ``/ui/``, and Secure when the console is served over TLS.
Every state-changing request must carry the session's CSRF token (a form field, or the
``X-CSRF-Token`` header) and, when the browser sends one, an ``Origin`` of this host.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import urllib.parse
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for

from .api_client import Api, ApiError, Scope
from .sessions import LIFETIME_SECONDS, Session, Sessions

COOKIE = "moma_console"
SIGN_IN_COOKIE = "moma_console_signin"  # the sign-in form's CSRF token, before there is a session
OPEN_ENDPOINTS = ("auth.sign_in", "static")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
NOTICES = {"signedout": "You signed out.", "expired": "Your session ended; sign in again."}
ACCOUNT_PREFIX = "/accounts/<sub>/<rg>/<account>"
_NEXT = re.compile(r"/[A-Za-z0-9._~/%?=&+-]*")

blueprint = Blueprint("auth", __name__)


@blueprint.before_app_request
def _load_session() -> Response | None:
    g.session = _sessions().load(request.cookies.get(COOKIE))
    if g.session is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.method in SAFE_METHODS and wants_html():
            return redirect(url_for("auth.sign_in", next=request.script_root + request.full_path.rstrip("?")))
        abort(401, "sign in first")
    if request.method not in SAFE_METHODS:
        _check_csrf()
    return None


@blueprint.get("/")
def home() -> Response:
    return redirect(url_for("overview.show", **_home_scope()))


@blueprint.route("/signin", methods=["GET", "POST"])
def sign_in() -> Any:
    if request.method == "GET":
        return _sign_in_page(notice=NOTICES.get(request.args.get("notice", ""), ""))
    token = request.form.get("token", "").strip()
    if not token:
        return _sign_in_page(error="Paste an API token."), 400
    try:
        who = Api(current_app.extensions["moma.api"], token).get("/api/console/whoami")
    except ApiError as exc:
        return _sign_in_page(error=exc.message, request_id=exc.request_id), exc.status
    account = Scope.of(who["account"]).parts if who.get("account") else None
    session, cookie = _sessions().start(token, bool(who["admin"]), account)
    g.session = session
    response = redirect(_next_page() or url_for("overview.show", **_home_scope()), 303)
    _set_cookie(response, COOKIE, cookie, LIFETIME_SECONDS)
    response.delete_cookie(SIGN_IN_COOKIE, path=_cookie_path())
    return response


@blueprint.post("/signout")
def sign_out() -> Response:
    _sessions().end(g.session.id)
    response = redirect(url_for("auth.sign_in", notice="signedout"), 303)
    response.delete_cookie(COOKIE, path=_cookie_path())
    return response


@blueprint.get("/switch")
def switch() -> Response:
    """The account switcher's target: ``account`` is ``subscription/resource group/name``."""
    parts = request.args.get("account", "").split("/")
    if len(parts) != 3 or not all(parts):
        abort(400, "account must be subscription/resourceGroup/name")
    return redirect(url_for("overview.show", sub=parts[0], rg=parts[1], account=parts[2]))


def expired(message: str, request_id: str) -> Response:
    """The API refused the session's token (revoked since): end the session, and say so
    (a page's script gets the API's error)."""
    _sessions().end(g.session.id)
    if wants_html():
        response = redirect(url_for("auth.sign_in", notice="expired"), 303)
    else:
        response = Response(json.dumps({"message": message, "requestId": request_id}), 401,
                            mimetype="application/json")
    response.delete_cookie(COOKIE, path=_cookie_path())
    return response


def wants_html() -> bool:
    """A browser navigating (or a client that did not say); not the page's script."""
    return not request.accept_mimetypes or request.accept_mimetypes.accept_html


def api() -> Api:
    """The API, as the signed-in user."""
    if "api" not in g:
        g.api = Api(current_app.extensions["moma.api"], g.session.token)
    return g.api


def scope() -> Scope:
    return g.scope


def accounts() -> list[Scope]:
    """The accounts the user may switch between: every account for an admin token."""
    session: Session = g.session
    if not session.admin:
        return [Scope(*session.account)] if session.account else []
    return [Scope.of(account) for account in api().get("/api/admin/accounts")["value"]]


def account_blueprint(name: str) -> Blueprint:
    """A blueprint of pages of one account: the account comes from the URL, and
    ``url_for`` fills it in from the page being rendered."""
    pages = Blueprint(name, __name__, url_prefix=ACCOUNT_PREFIX)
    pages.url_value_preprocessor(_pop_scope)
    pages.url_defaults(_add_scope)
    return pages


def _pop_scope(endpoint: str | None, values: dict[str, Any] | None) -> None:
    assert values is not None
    g.scope = Scope(values.pop("sub"), values.pop("rg"), values.pop("account"))


def _add_scope(endpoint: str, values: dict[str, Any]) -> None:
    current = g.get("scope")
    if current is not None and "account" not in values:
        values.update(sub=current.subscription_id, rg=current.resource_group, account=current.account)


def _home_scope() -> dict[str, str]:
    session: Session = g.session
    if session.account:
        sub, rg, name = session.account
    else:
        known = accounts()
        default = Scope("default", "default", "default")
        sub, rg, name = (default if default in known or not known else known[0]).parts
    return {"sub": sub, "rg": rg, "account": name}


def _next_page() -> str | None:
    """Where the user was going before signing in: a path of this console, nothing else
    (never another site: ``//host`` or a backslash could leave it)."""
    target = request.values.get("next", "")
    if _NEXT.fullmatch(target) and target.startswith(f"{request.script_root}/") and "//" not in target:
        return target
    return None


def _sign_in_page(error: str = "", request_id: str = "", notice: str = "") -> Response:
    csrf = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = Response(render_template("signin.html", csrf=csrf, error=error, request_id=request_id,
                                        notice=notice, next=_next_page() or ""))
    _set_cookie(response, SIGN_IN_COOKIE, csrf, 3600)
    return response


def _check_csrf() -> None:
    expected = g.session.csrf if g.session is not None else request.cookies.get(SIGN_IN_COOKIE, "")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, "the form is stale or did not come from this console (CSRF token missing or wrong); "
                   "reload the page and try again")
    origin = request.headers.get("Origin")
    if origin and urllib.parse.urlsplit(origin).netloc != request.host:
        abort(403, f"a request from {origin} may not change anything here")


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=_cookie_path(), httponly=True, samesite="Strict",
                        secure=request.is_secure or current_app.config["MOMA_SECURE_COOKIES"])


def _cookie_path() -> str:
    return f"{request.script_root}/"


def _sessions() -> Sessions:
    return current_app.extensions["moma.console.sessions"]
