"""The driver's ``print`` and ``logging`` output as OpenTelemetry log records.

Each record carries the trace and span ids of the current request's span (the context
``tracer.py`` attaches around a request), so a backend shows a request's prints beside
its span. Lines still reach the container's stdout and stderr as before: the capture
writes through. Records of the exporters' own libraries are not captured (an export
that fails must not produce records to export).
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource

from ..logs import REQUEST_ID

NOT_CAPTURED = ("opentelemetry", "azure", "urllib3", "requests", "msal", "msrest")
LINE_LIMIT = 16384  # characters of one printed line kept in a record
_SEVERITY = ((logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
             (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
             (logging.WARNING, SeverityNumber.WARN, "WARN"),
             (logging.INFO, SeverityNumber.INFO, "INFO"),
             (logging.NOTSET, SeverityNumber.DEBUG, "DEBUG"))


class QueueLogProcessor(LogRecordProcessor):
    """Hands every record to the pipeline's bounded queue (``put``), as the SDK's batch
    processor does to its own: a readable copy without the context it was made in."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        self.put = put

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = copy.copy(log_record.log_record)
        record.context = Context()
        # Optional in the dataclass, but the SDK's Logger.emit always sets the provider's.
        resource = cast(Resource, log_record.resource)
        self.put(ReadableLogRecord(log_record=record, resource=resource,
                                   instrumentation_scope=log_record.instrumentation_scope,
                                   limits=log_record.limits))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    for threshold, number, text in _SEVERITY:
        if levelno >= threshold:
            return number, text
    return SeverityNumber.DEBUG, "DEBUG"


def _attributes() -> dict[str, Any]:
    request_id = REQUEST_ID.get()
    return {"moma.request_id": request_id} if request_id else {}


class LogHandler(logging.Handler):
    """``logging`` records → OpenTelemetry log records (the SDK's own handler is deprecated)."""

    def __init__(self, provider: Any) -> None:
        super().__init__()
        self.provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_CAPTURED):
            return
        try:
            number, text = _severity(record.levelno)
            attributes = {**_attributes(), "code.function.name": record.funcName,
                          "code.line.number": record.lineno, "log.logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__qualname__
                attributes["exception.message"] = str(record.exc_info[1])
            self.provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9), observed_timestamp=time.time_ns(),
                severity_number=number, severity_text=text, body=record.getMessage(),
                attributes=attributes)
        except Exception:  # noqa: BLE001 - telemetry never fails the code that logs
            pass


class PrintCapture:
    """``sys.stdout`` / ``sys.stderr`` that also makes a log record of every line written
    (per thread, so lines of concurrent requests never mix)."""

    def __init__(self, stream: Any, logger: Any, iostream: str) -> None:
        self.stream = stream
        self.logger = logger
        self.iostream = iostream
        self.severity = (SeverityNumber.INFO, "INFO") if iostream == "stdout" \
            else (SeverityNumber.WARN, "WARN")
        self._pending = threading.local()

    def write(self, text: str) -> int:
        written: int = self.stream.write(text)
        try:
            pending = getattr(self._pending, "text", "") + text
            if "\n" in pending:
                *lines, pending = pending.split("\n")
                for line in lines:
                    if line.strip():
                        self._emit(line[:LINE_LIMIT])
            self._pending.text = pending[-LINE_LIMIT:]
        except Exception:  # noqa: BLE001 - a print never fails because of telemetry
            pass
        return written

    def _emit(self, line: str) -> None:
        number, text = self.severity
        self.logger.emit(timestamp=time.time_ns(), severity_number=number, severity_text=text,
                         body=line, attributes={**_attributes(), "log.iostream": self.iostream})

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def capture(provider: Any) -> Callable[[], None]:
    """Capture prints and ``logging`` (the root logger, which drivers' loggers reach, and
    ``moma.runtime``'s own records); returns the function that undoes it."""
    handler = LogHandler(provider)
    root = logging.getLogger()
    runtime_logger = logging.getLogger("moma.runtime")
    fallback = None
    if not root.handlers:
        # Without handlers, logging writes warnings to stderr by itself (lastResort); a
        # handler of ours would end that, so keep it explicitly.
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setLevel(logging.WARNING)
        root.addHandler(fallback)
    root.addHandler(handler)
    runtime_logger.addHandler(handler)
    printer = provider.get_logger("moma.driver.print")
    saved = sys.stdout, sys.stderr
    sys.stdout = PrintCapture(sys.stdout, printer, "stdout")
    sys.stderr = PrintCapture(sys.stderr, printer, "stderr")

    def undo() -> None:
        sys.stdout, sys.stderr = saved
        root.removeHandler(handler)
        runtime_logger.removeHandler(handler)
        if fallback is not None:
            root.removeHandler(fallback)

    return undo
