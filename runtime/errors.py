"""Errors of the scoring runtime.

One tree. Every HTTP error a client can see is a ``ScoringError``; ``describe`` gives
any error's status, code, message and headers, which ``app.py`` renders as moma's
``{"message", "code"}`` JSON and ``oip/`` as the Open Inference Protocol's ``{"error"}``::

    ScoringError                 status  code                      extra headers
    ├── BadInput                 400     bad_input
    ├── Unauthorized             401     unauthorized              WWW-Authenticate: Bearer
    ├── NotFound                 404     not_found                 (an unknown OIP model or version)
    ├── UnsupportedMediaType     415     unsupported_media_type
    ├── Overloaded               429     overloaded                Retry-After
    ├── DriverError              500     driver_error              x-ms-run-function-failed: True
    │   └── BadOutput            500     driver_error              x-ms-run-function-failed: True
    ├── NotReady                 503     not_ready                 Retry-After
    └── ScoringTimeout           504     timeout                   x-ms-run-function-failed: True

    ConfigError (a ValueError, not an HTTP error): a bad environment variable or
    settings value; raised at start-up so the process fails loudly.
    SchemaError (a ConfigError): an unusable service_schema.json; the runtime turns
    it into the FAILED state, like a failing init().

Werkzeug's own HTTP errors (404, 405, 413) are answered in the same JSON shape with
a code derived from their name (``not_found``, ``method_not_allowed``, ...).
"""

from __future__ import annotations

import http

from werkzeug.exceptions import HTTPException


class ConfigError(ValueError):
    """A setting (environment variable or config key) has an unusable value."""


class SchemaError(ConfigError):
    """The service schema file cannot be used."""


class ScoringError(Exception):
    """Base of every error answered to a scoring client."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> list[tuple[str, str]]:
        return []


class BadInput(ScoringError):
    status = 400
    code = "bad_input"


class Unauthorized(ScoringError):
    status = 401
    code = "unauthorized"

    def headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", "Bearer")]


class NotFound(ScoringError):
    status = 404
    code = "not_found"


class UnsupportedMediaType(ScoringError):
    status = 415
    code = "unsupported_media_type"


class Overloaded(ScoringError):
    """No admission slot (queue full, or waited too long). ``reason`` labels metrics."""

    status = 429
    code = "overloaded"

    def __init__(self, message: str, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", str(self.retry_after_s))]


class DriverError(ScoringError):
    """The user's run() raised; the message is the exception's, never a traceback."""

    status = 500
    code = "driver_error"
    kind = "exception"

    def headers(self) -> list[tuple[str, str]]:
        return [("x-ms-run-function-failed", "True")]


class BadOutput(DriverError):
    """run() returned a value that cannot be encoded as JSON."""

    kind = "bad_output"


class NotReady(ScoringError):
    status = 503
    code = "not_ready"

    def headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "1")]


class ScoringTimeout(ScoringError):
    status = 504
    code = "timeout"

    def headers(self) -> list[tuple[str, str]]:
        return [("x-ms-run-function-failed", "True")]


def describe(exc: BaseException) -> tuple[int, str, str, list[tuple[str, str]]]:
    """Status, code, message and extra headers of any error a request can end with."""
    if isinstance(exc, ScoringError):
        return exc.status, exc.code, exc.message, exc.headers()
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        phrase = http.HTTPStatus(status).phrase
        code = "_".join(phrase.lower().replace("-", " ").split())
        headers = []
        allowed = getattr(exc, "valid_methods", None)  # werkzeug's MethodNotAllowed only
        if status == 405 and allowed:
            headers = [("Allow", ", ".join(allowed))]
        return status, code, exc.description or phrase, headers
    return 500, "internal_error", "internal server error", []
