"""The console's Flask app: its pages, its static files, the headers every answer carries
and the one place errors become pages (the API's message and request id, never a trace)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, g, render_template, request
from jinja2 import StrictUndefined
from werkzeug.exceptions import HTTPException

from . import auth, images, live, models, overview, services
from .api_client import ApiError
from .sessions import Sessions

PREFIX = "/ui"
log = logging.getLogger("moma.console")

# Scripts and styles only from our own static files: no inline script, no eval, no other origin
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def create_console(api: Flask) -> Flask:
    settings = api.config["MOMA_SETTINGS"]
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.extensions["moma.api"] = api
    app.extensions["moma.console.sessions"] = Sessions(settings.home)
    app.config["MOMA_SECURE_COOKIES"] = settings.public_url.startswith("https://")
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.filters.update(size=_size)
    app.jinja_env.globals.update(console_accounts=auth.accounts)
    for blueprint in (auth.blueprint, overview.blueprint, models.blueprint, images.blueprint, services.blueprint,
                      live.blueprint):
        app.register_blueprint(blueprint)
    app.after_request(_security_headers)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _api_error(error: ApiError) -> Any:
    if error.status == 401 and g.get("session") is not None:
        return auth.expired(error.message, error.request_id)  # the token was revoked since sign-in
    return _error_page(error.status, error.message, error.request_id)


def _http_error(exc: HTTPException) -> Any:
    return _error_page(exc.code or 500, exc.description or exc.name, "")


def _unexpected(exc: Exception) -> Any:
    request_id = str(uuid.uuid4())
    log.exception("console error, request id %s", request_id)
    return _error_page(500, f"internal error; quote request id {request_id} to the operator", request_id)


def _error_page(status: int, message: str, request_id: str) -> Any:
    g.pop("scope", None)  # no navigation within an account the page could not show
    if not auth.wants_html():
        return {"message": message, "requestId": request_id}, status
    return render_template("error.html", status=status, message=message, request_id=request_id), status


def _size(value: float | None) -> str:
    """Bytes for people: 1.2 KiB, 433.0 MiB."""
    if value is None:
        return "—"
    if value < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"
