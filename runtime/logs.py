"""JSON log lines carrying the request id.

``REQUEST_ID`` is set by the app for the duration of each request (``app.py``), so any
record logged while a request is handled (our own, gunicorn's, or the driver's if it
logs through a handler with this formatter) carries ``request_id``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "moma_request_id", default=None)


def utc_timestamp(seconds: float) -> str:
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + \
        f".{int((seconds - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid, request_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            doc["request_id"] = request_id
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc_info"] = record.exc_text
        return json.dumps(doc, default=str)


def configure_runtime_logger(level: str = "INFO") -> logging.Logger:
    """The ``moma.runtime`` logger writing JSON to stderr (once per process)."""
    logger = logging.getLogger("moma.runtime")
    if not any(getattr(h, "_moma", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._moma = True  # type: ignore[attr-defined]  # marks our handler on the stdlib's class
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
