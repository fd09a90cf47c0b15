"""Spans of the management API and worker (``MOMA_TELEMETRY_MANAGEMENT``), to the
server's telemetry destination (``MOMA_TELEMETRY_OTLP_ENDPOINT`` and/or
``MOMA_TELEMETRY_CONNECTION_STRING``), with OpenTelemetry's SDK (``pip install
'moma[telemetry]'``).

One trace per API request: its SERVER span (named after the route's template, never
the tenant's names in the path); an operation it queues carries the span's
``traceparent`` in its payload (``store/operations.py``); the worker's span of that
operation (``moma.operation.id``) continues the trace, and its steps are children (a
build, with the build log's lines as events; a deploy's workload and engine call).
Off (the default), nothing of OpenTelemetry is imported and every function here is a
no-op.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("moma.tracing")
TRACEPARENT = "traceparent"

_tracer: Any = None
_provider: Any = None


def start(settings: "Settings", role: str) -> bool:
    """Export this process's spans (``role``: ``api`` or ``worker``); True when on."""
    global _tracer, _provider
    if not settings.telemetry_management:
        return False
    if not settings.telemetry_otlp_endpoint and not settings.telemetry_connection_string:
        raise ValueError("MOMA_TELEMETRY_MANAGEMENT needs MOMA_TELEMETRY_OTLP_ENDPOINT or "
                         "MOMA_TELEMETRY_CONNECTION_STRING: where the spans go")
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ValueError(f"MOMA_TELEMETRY_MANAGEMENT needs OpenTelemetry ({exc.name}): "
                         "pip install 'moma[telemetry]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": f"moma-{role}",
                                                        "service.namespace": "moma"}))
    for exporter in _exporters(settings):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("moma.management")
    return True


def _exporters(settings: "Settings") -> list[Any]:
    exporters: list[Any] = []
    if settings.telemetry_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from .service_telemetry import otlp_headers
        exporters.append(OTLPSpanExporter(endpoint=settings.telemetry_otlp_endpoint.rstrip("/") + "/v1/traces",
                                          headers=otlp_headers(settings.telemetry_otlp_headers)))
    if settings.telemetry_connection_string:
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        exporters.append(AzureMonitorTraceExporter(connection_string=settings.telemetry_connection_string,
                                                   disable_offline_storage=True))
    return exporters


def shutdown() -> None:
    """Export what is queued (the process is ending)."""
    if _provider is not None:
        _provider.shutdown()


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, traceparent: str | None = None,
         server: bool = False) -> Iterator[Any]:
    """A span around the block (current inside it), the child of ``traceparent`` when
    given, else of the current span; yields it (None when off)."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent}) if traceparent else None
    with _tracer.start_as_current_span(name, context=context, attributes=dict(attributes or {}),
                                       kind=SpanKind.SERVER if server else SpanKind.INTERNAL) as current:
        yield current


class TracedApp:
    """WSGI middleware: a SERVER span per API request (the caller's ``traceparent``
    continued), named by :func:`name_request_span` once Flask matched the route."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "")
        with span(method, {"http.request.method": method}, traceparent=environ.get("HTTP_TRACEPARENT"),
                  server=True) as current:
            def recorded(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                current.set_attribute("http.response.status_code", int(status.split(" ", 1)[0]))
                return start_response(status, headers, exc_info)
            return self.app(environ, recorded)


def name_request_span(response: Any) -> Any:
    """Flask ``after_request``: the span's name and route from the matched rule."""
    from flask import request
    from opentelemetry import trace

    rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
    current = trace.get_current_span()
    current.update_name(f"{request.method} {rule}")
    current.set_attribute("http.route", rule)
    return response


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, for work another process continues."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)
