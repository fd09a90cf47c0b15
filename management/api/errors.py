"""Every error leaves as the spec's ErrorResponse, from this one place: our own
errors, the store's (a taken name 409, a row that is not there 404, references to rows
that are not there 400), Werkzeug's HTTP errors (unknown route, wrong method, body too
large...), and anything unexpected (500, logged with its traceback and the request id)."""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import (
    BadRequest,
    Conflict,
    Detail,
    MethodNotAllowed,
    MomaError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..store.errors import AlreadyExists, MissingReferences, NotStored, StoreError

_HTTP = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge, 415: UnsupportedMediaType}
_STORE: dict[type[StoreError], type[MomaError]] = {AlreadyExists: Conflict, NotStored: NotFound,
                                                   MissingReferences: BadRequest}


def init_app(app: Flask) -> None:
    app.register_error_handler(MomaError, error_response)
    app.register_error_handler(StoreError, _store_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def error_response(error: MomaError) -> Response:
    response = jsonify(error.as_json())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="moma"'
    return response


def _store_error(exc: StoreError) -> Response:
    error = _STORE.get(type(exc), MomaError)(exc.message, [Detail(code, message) for code, message in exc.details])
    return error_response(error)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 404:
        error: MomaError = NotFound(f"no route {request.method} {request.path}")
    elif status == 405:
        allowed = ", ".join(sorted(exc.valid_methods or [])) if hasattr(exc, "valid_methods") else ""
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.path}; allowed: {allowed}")
    elif status == 413:
        limit = request.max_content_length
        error = PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    else:
        error = _HTTP.get(status, MomaError)(exc.description or exc.name)
        error.status = status
        error.code = exc.name.replace(" ", "")
    response = error_response(error)
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    request_id = getattr(g, "request_id", "")
    from flask import current_app

    current_app.logger.exception("unhandled error in request %s", request_id)
    return error_response(MomaError(f"internal error; quote request id {request_id} to the operator"))
