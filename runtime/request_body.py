"""Reading a request's body from the WSGI environ, within the body limit."""

from __future__ import annotations

from typing import IO, Any

from werkzeug.exceptions import RequestEntityTooLarge

from .errors import BadInput

JSON = "application/json"


def is_json(content_type: str) -> bool:
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == JSON or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    stream: IO[bytes] = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            size = int(length)
        except ValueError:
            raise BadInput("invalid Content-Length") from None
        if size > limit:
            raise RequestEntityTooLarge(f"the request body is larger than {limit} bytes")
        return stream.read(size) if size > 0 else b""
    if environ.get("wsgi.input_terminated"):  # chunked: read to the end, within the limit
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise RequestEntityTooLarge(f"the request body is larger than {limit} bytes")
        return data
    return b""
