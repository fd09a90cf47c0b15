"""A scoring request's span as the request path records it: a few slots, filled in
place, turned into attributes only on the exporter's thread.

Attribute names follow OpenTelemetry's HTTP semantic conventions where there is one
(``http.request.method``, ``http.route``, ``url.path``, ``http.response.status_code``,
``error.type``, ``container.id``) and are ``moma.*`` otherwise. What is the same for
every request of a route (its name, the service, the container, the image's model) is
in :class:`SharedAttributes`, encoded once per route; the rest in
:func:`request_attributes`.
"""

from __future__ import annotations

import re
from typing import Any

from .settings import BODY_LIMIT

# W3C Trace Context: version-traceid-parentid-flags; a later version may append fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
SAMPLED = 0x01
TRACESTATE_LIMIT = 512  # characters of a caller's tracestate kept (W3C: propagate at least 512)
TRACESTATE_ENTRY_LIMIT = 128  # entries longer than this go first when it must be cut


def parse_traceparent(header: str) -> tuple[int, int, int] | None:
    """(trace id, parent span id, trace flags) of a valid ``traceparent``, else None."""
    found = _TRACEPARENT.fullmatch(header.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest) or (rest and not rest.startswith("-")):
        return None
    trace, parent = int(trace_id, 16), int(span_id, 16)
    if not trace or not parent:
        return None
    return trace, parent, int(flags, 16)


def bounded_tracestate(header: str) -> str:
    """The caller's ``tracestate``, cut to ``TRACESTATE_LIMIT`` characters the way W3C
    Trace Context says to: whole entries, the longest (over 128 characters) first, then
    from the right. A client must not make every one of its spans kilobytes long."""
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    if len(",".join(entries)) <= TRACESTATE_LIMIT:
        return ",".join(entries)
    entries = [entry for entry in entries if len(entry) <= TRACESTATE_ENTRY_LIMIT]
    while entries and len(",".join(entries)) > TRACESTATE_LIMIT:
        entries.pop()
    return ",".join(entries)


class Route:
    """What every span of one traced route shares."""
    __slots__ = ("template", "oip")

    def __init__(self, template: str, oip: bool) -> None:
        self.template = template
        self.oip = oip


class RequestSpan:
    """One request's span, written by the request's thread, read by the exporter's once
    the request ended (it is queued only then)."""
    __slots__ = ("trace_id", "span_id", "parent_id", "trace_flags", "trace_state", "start_ns",
                 "end_ns", "route", "method", "path", "request_id", "status", "model",
                 "model_version", "queue_wait_s", "admission", "error_type", "error_message",
                 "body", "tokens", "encoded")
    # set by the tracer once the request's ids and times are known
    trace_id: int
    span_id: int
    trace_flags: int
    start_ns: int
    end_ns: int
    tokens: Any  # (OpenTelemetry's context token, ours) while the span is current

    def __init__(self, route: Route, method: str, path: str, request_id: str) -> None:
        self.route = route
        self.method = method
        self.path = path
        self.request_id = request_id
        self.parent_id = 0
        self.trace_state = ""
        self.status = 0
        self.model: str | None = None
        self.model_version: str | None = None
        self.queue_wait_s: float | None = None
        self.admission: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.body: bytes | None = None
        self.encoded: bytes | None = None  # its OTLP bytes, written as the request ends

    @property
    def name(self) -> str:
        return f"{self.method} {self.route.template}"

    @property
    def failed(self) -> bool:
        """Server spans are errors for 5xx answers only (4xx is the client's)."""
        return self.status >= 500


class SharedAttributes:
    """The attributes a span shares with every span of its route and method: the
    service, the container and, on ``/score``, the image's model (an OIP request names
    its model: :func:`request_attributes`)."""

    def __init__(self, service: dict[str, Any], image_model: dict[str, Any]) -> None:
        self.service = service
        self.image_model = image_model

    @staticmethod
    def key(span: RequestSpan) -> tuple[str, str]:
        return span.route.template, span.method

    def of(self, span: RequestSpan) -> dict[str, Any]:
        attributes = {"http.request.method": span.method, "http.route": span.route.template,
                      **self.service}
        if not span.route.oip:
            attributes.update(self.image_model)
        return attributes


def request_attributes(span: RequestSpan) -> dict[str, Any]:
    """The attributes of this request alone."""
    attributes: dict[str, Any] = {"url.path": span.path, "moma.request_id": span.request_id,
                                  "http.response.status_code": span.status}
    if span.model is not None:
        attributes["moma.model.name"] = span.model
        if span.model_version is not None:
            attributes["moma.model.version"] = span.model_version
    if span.admission is not None:
        attributes["moma.admission"] = span.admission
    if span.queue_wait_s is not None:
        attributes["moma.queue_wait_ms"] = span.queue_wait_s * 1000.0
    if span.error_type is not None:
        attributes["error.type"] = span.error_type
    elif span.failed:
        attributes["error.type"] = str(span.status)
    if span.body is not None:
        attributes["moma.request.body"] = span.body[:BODY_LIMIT].decode("utf-8", "replace")
        if len(span.body) > BODY_LIMIT:
            attributes["moma.request.body_truncated"] = True
    return attributes


def exception_event(span: RequestSpan) -> dict[str, Any] | None:
    """The semantic conventions' ``exception`` event of a driver error (type and message;
    never the traceback, which is in the container's log with the request id)."""
    if span.error_message is None or span.error_type is None:
        return None
    return {"exception.type": span.error_type, "exception.message": span.error_message}
