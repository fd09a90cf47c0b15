"""Azure Monitor (``APPLICATIONINSIGHTS_CONNECTION_STRING``): Microsoft's OpenTelemetry
exporters, which send to the ingestion endpoint the connection string names.

Request spans become SDK ``ReadableSpan``s here, on the exporter's thread. The
exporters' extras are turned off: offline storage (failed batches written to disk and
resent: a dead endpoint would fill the disk of a read-only container's /tmp instead
of dropping and counting), and the statistics and remote configuration the package
sends to Microsoft's own endpoints (nothing leaves for anywhere but the connection
string's endpoint).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from .pipeline import ExportError
from .spans import RequestSpan, SharedAttributes, exception_event, request_attributes

# The package's own telemetry and remote configuration (sent to Microsoft, not to the user)
PHONE_HOME_OFF = ("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
                  "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED")


def quiet_exporter_package() -> None:
    """Before the exporters are made: none of the package's calls home."""
    for name in PHONE_HOME_OFF:
        os.environ[name] = "true"


class AzureMonitorExporter:
    name = "azure_monitor"

    def __init__(self, connection_string: str, timeout_s: float, resource: Resource,
                 scope: InstrumentationScope, shared: SharedAttributes) -> None:
        quiet_exporter_package()
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorLogExporter,
            AzureMonitorMetricExporter,
            AzureMonitorTraceExporter,
        )
        options: dict[str, Any] = {"connection_string": connection_string,
                                   "disable_offline_storage": True, "timeout": timeout_s,
                                   "retry_total": 0}  # the pipeline retries, after a backoff
        self._traces = AzureMonitorTraceExporter(**options)
        self._logs = AzureMonitorLogExporter(**options)
        self._metrics = AzureMonitorMetricExporter(**options)
        self.resource = resource
        self.scope = scope
        self.shared = shared

    def spans(self, batch: Sequence[Any]) -> None:
        spans = [self.readable(item) if isinstance(item, RequestSpan) else item for item in batch]
        _check("spans", self._traces.export(spans))

    def logs(self, batch: Sequence[Any]) -> None:
        _check("logs", self._logs.export(batch))

    def metrics(self, data: Any) -> None:
        _check("metrics", self._metrics.export(data))

    def readable(self, span: RequestSpan) -> ReadableSpan:
        state = TraceState.from_header([span.trace_state]) if span.trace_state else None
        context = SpanContext(span.trace_id, span.span_id, False, TraceFlags(span.trace_flags), state)
        parent = SpanContext(span.trace_id, span.parent_id, True, TraceFlags(span.trace_flags), state) \
            if span.parent_id else None
        event = exception_event(span)
        return ReadableSpan(
            name=span.name, context=context, parent=parent, resource=self.resource,
            attributes={**self.shared.of(span), **request_attributes(span)},
            events=[Event("exception", event, span.end_ns)] if event is not None else (),
            kind=SpanKind.SERVER,
            status=Status(StatusCode.ERROR, span.error_message) if span.failed else Status(),
            start_time=span.start_ns, end_time=span.end_ns, instrumentation_scope=self.scope)

    def close(self) -> None:
        for exporter in (self._traces, self._logs, self._metrics):
            exporter.shutdown()


def _check(signal: str, result: Any) -> None:
    if getattr(result, "name", "") != "SUCCESS":
        raise ExportError(f"Azure Monitor did not accept the {signal} ({getattr(result, 'name', result)})")
