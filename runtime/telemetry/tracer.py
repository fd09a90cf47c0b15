"""The request path's side of telemetry: a span per scoring request, the caller's trace
continued, and the span handed to the driver as OpenTelemetry's current span.

``Gate`` calls :meth:`RequestTracer.begin` and :meth:`RequestTracer.end` around a
request on a traced route (``/score`` and the Open Inference Protocol's routes but its
health checks); ``Scorer`` tells :class:`ScoringObserver` the admission outcome, the
queue wait and a driver error. Between the two, the span is OpenTelemetry's current
span (a ``NonRecordingSpan`` carrying its ids), so a driver's own spans, made with the
OpenTelemetry API, are its children, and its log records and prints carry its ids.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from random import getrandbits
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from ..oip.names import ModelNames
from ..oip.routes import Match
from .settings import BODY_LIMIT
from .spans import SAMPLED, RequestSpan, Route, bounded_tracestate, parse_traceparent

CURRENT: ContextVar[RequestSpan | None] = ContextVar("moma_request_span", default=None)


class RequestTracer:
    def __init__(self, routes: dict[int, Route], names: ModelNames, put: Any,
                 request_body: bool, follow_caller_sampling: bool = False) -> None:
        self.routes = routes  # metric route index → traced route
        self.names = names
        self.put = put  # Pipeline.put_span
        self.request_body = request_body
        # False (always_on): every request is recorded, a caller's "not sampled" too, so
        # no client hides its requests; its trace is continued all the same.
        self.follow_caller_sampling = follow_caller_sampling

    def begin(self, environ: dict[str, Any], route: int, request_id: str,
              oip: Match | None) -> RequestSpan | None:
        traced = self.routes.get(route)
        if traced is None:
            return None
        span = RequestSpan(traced, environ.get("REQUEST_METHOD", ""),
                           environ.get("PATH_INFO", ""), request_id)
        header = environ.get("HTTP_TRACEPARENT")
        parent = parse_traceparent(header) if header else None
        state = None
        if parent is None:
            span.trace_id, span.trace_flags = getrandbits(128) or 1, SAMPLED
        else:
            span.trace_id, span.parent_id, flags = parent
            span.trace_flags = flags if self.follow_caller_sampling else flags | SAMPLED
            tracestate = environ.get("HTTP_TRACESTATE")
            if tracestate:
                state = TraceState.from_header([bounded_tracestate(tracestate)])
                span.trace_state = state.to_header()
        span.span_id = getrandbits(64) or 1
        if oip is not None and oip.name is not None:
            served = self.names.served.get(oip.name)
            span.model = oip.name
            span.model_version = oip.version or (served.version if served is not None else None)
        if self.request_body:
            environ["wsgi.input"] = _Tee(environ["wsgi.input"], span)
        span.start_ns = time.time_ns()
        current = NonRecordingSpan(SpanContext(span.trace_id, span.span_id, False,
                                               TraceFlags(span.trace_flags), state))
        span.tokens = (otel_context.attach(trace.set_span_in_context(current)), CURRENT.set(span))
        return span

    def end(self, span: RequestSpan, status: int) -> None:
        span.end_ns = time.time_ns()
        span.status = status
        context_token, current_token = span.tokens
        CURRENT.reset(current_token)
        otel_context.detach(context_token)
        span.tokens = None
        if span.trace_flags & SAMPLED:
            self.put(span)


class ScoringObserver:
    """What ``Scorer`` tells the current request's span."""

    @staticmethod
    def admitted(waited_s: float) -> None:
        span = CURRENT.get()
        if span is not None:
            span.admission, span.queue_wait_s = "admitted", waited_s

    @staticmethod
    def rejected(reason: str) -> None:
        span = CURRENT.get()
        if span is not None:
            span.admission = reason

    @staticmethod
    def failed(kind: str, exc: BaseException | None) -> None:
        """``kind``: exception (run() raised ``exc``), bad_output, timeout."""
        span = CURRENT.get()
        if span is None:
            return
        if exc is None:
            span.error_type = kind
            return
        span.error_type = type(exc).__qualname__
        span.error_message = str(exc)[:BODY_LIMIT]


class _Tee:
    """``wsgi.input`` that keeps the first ``BODY_LIMIT`` + 1 bytes read, for a span
    whose user opted in to request bodies."""

    def __init__(self, stream: Any, span: RequestSpan) -> None:
        self.stream = stream
        self.span = span

    def read(self, *args: Any) -> bytes:
        data: bytes = self.stream.read(*args)
        kept = self.span.body or b""
        if len(kept) <= BODY_LIMIT:
            self.span.body = kept + data[:BODY_LIMIT + 1 - len(kept)]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
