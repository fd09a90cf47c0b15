"""Errors of the management service. Every one becomes the spec's ErrorResponse
(``{"code", "message", "statusCode", "details": [{"code", "message"}]}``) in one
place (``api/errors.py``) and a CLI exit code in another.

MomaError                      500 InternalServerError
├── BadRequest                 400 BadRequest
│   └── ValidationFailed       400 ValidationError (details name each field)
├── Unauthorized               401 Unauthorized
├── Forbidden                  403 Forbidden
├── NotFound                   404 NotFound
├── MethodNotAllowed           405 MethodNotAllowed
├── Conflict                   409 Conflict
├── PayloadTooLarge            413 RequestEntityTooLarge
├── UnsupportedMediaType       415 UnsupportedMediaType
└── ServiceUnavailable         503 ServiceUnavailable (an engine cannot be reached)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detail:
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class MomaError(Exception):
    status = 500
    code = "InternalServerError"

    def __init__(self, message: str, details: list[Detail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message, "statusCode": self.status}
        if self.details:
            body["details"] = [detail.as_json() for detail in self.details]
        return body


class BadRequest(MomaError):
    status = 400
    code = "BadRequest"


class ValidationFailed(BadRequest):
    code = "ValidationError"


class Unauthorized(MomaError):
    status = 401
    code = "Unauthorized"


class Forbidden(MomaError):
    status = 403
    code = "Forbidden"


class NotFound(MomaError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(MomaError):
    status = 405
    code = "MethodNotAllowed"


class Conflict(MomaError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(MomaError):
    status = 413
    code = "RequestEntityTooLarge"


class UnsupportedMediaType(MomaError):
    status = 415
    code = "UnsupportedMediaType"


class ServiceUnavailable(MomaError):
    status = 503
    code = "ServiceUnavailable"
