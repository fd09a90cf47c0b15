"""Telemetry turned on, in one worker process: the resource, the exporters, the
pipeline and its thread, the request tracer, OpenTelemetry's global tracer and logger
providers (for the driver's own spans and logs) and the capture of its prints.
Imported only when telemetry is on: it is where OpenTelemetry is first imported.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .. import __version__, contract
from ..model_map import ModelMap
from ..oip.names import ModelNames
from . import driver_logs
from .metrics_data import MetricsReader
from .pipeline import Exporter, Pipeline, Recorder
from .settings import TelemetrySettings
from .spans import Route, SharedAttributes
from .tracer import RequestTracer, ScoringObserver
from .wire import SpanEncoder

SCOPE = "moma.runtime"
_CONTAINER_ID = re.compile(r"/(?:docker/containers|docker|containers)/([0-9a-f]{64})\b")


class Telemetry:
    """What ``create_app`` wires in: the tracer for ``Gate``, the observer for ``Scorer``."""

    def __init__(self, tracer: RequestTracer, pipeline: Pipeline, undo: Callable[[], None],
                 providers: tuple[Any, ...]) -> None:
        self.tracer = tracer
        self.observer = ScoringObserver()
        self.pipeline = pipeline
        self._undo = undo
        self._providers = providers

    def shutdown(self, timeout_s: float) -> None:
        self._undo()
        self.pipeline.shutdown(timeout_s)


class _QueueSpanProcessor(SpanProcessor):
    """The driver's own spans (made with the OpenTelemetry API) into the pipeline's queue."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        self.put = put

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.put(span)


def start(settings: TelemetrySettings, environ: Mapping[str, Any], *, instance: str,
          model_map: ModelMap, names: ModelNames, routes: dict[int, Route],
          recorder: Recorder, cells: Callable[[], list[float]]) -> Telemetry:
    service_id = (environ.get(contract.ENV_SERVICE_ID) or "").strip() or None
    container = container_id()
    resource = Resource.create(_resource_attributes(environ, instance, model_map, service_id,
                                                    container))
    scope = InstrumentationScope(SCOPE, __version__)
    shared = SharedAttributes({"moma.service.id": service_id, "container.id": container},
                              _image_model(model_map))
    exporters, encoder = _exporters(settings, resource, scope, shared)
    pipeline = Pipeline(settings, exporters, recorder, MetricsReader(cells, resource, scope))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(_QueueSpanProcessor(pipeline.put_span))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(driver_logs.QueueLogProcessor(pipeline.put_log))
    set_logger_provider(logger_provider)
    undo = driver_logs.capture(logger_provider)
    pipeline.start()
    tracer = RequestTracer(routes, names, _queue_request_span(pipeline, encoder),
                           settings.request_body, settings.follow_caller_sampling)
    return Telemetry(tracer, pipeline, undo, (tracer_provider, logger_provider))


def _exporters(settings: TelemetrySettings, resource: Resource, scope: InstrumentationScope,
               shared: SharedAttributes) -> tuple[list[Exporter], SpanEncoder | None]:
    """The exporters, and the OTLP span encoder when there is an OTLP exporter."""
    exporters: list[Exporter] = []
    encoder = None
    if settings.otlp_endpoint is not None:
        from .otlp import OtlpExporter
        encoder = SpanEncoder(dict(resource.attributes), scope.name, scope.version or "", shared)
        exporters.append(OtlpExporter(settings, encoder))
    if settings.connection_string is not None:
        from .azure import AzureMonitorExporter
        exporters.append(AzureMonitorExporter(settings.connection_string, settings.otlp_timeout_s,
                                              resource, scope, shared))
    return exporters, encoder


def _queue_request_span(pipeline: Pipeline, encoder: SpanEncoder | None) -> Callable[[Any], None]:
    """How a request span ends: queued, and encoded first for OTLP (``SpanEncoder.encode``)
    unless the queue is full (a span about to be dropped is not worth encoding)."""
    if encoder is None:
        return pipeline.put_span
    encode, put, has_room = encoder.encode, pipeline.put_span, pipeline.has_room_for_a_span

    def queue(span: Any) -> None:
        if has_room():
            encode(span)
        put(span)
    return queue


def _resource_attributes(environ: Mapping[str, Any], instance: str, model_map: ModelMap,
                         service_id: str | None, container: str | None) -> dict[str, Any]:
    """Who sends: the service, this worker process (each is an instance: its metrics are
    its own), the container, the image."""
    attributes: dict[str, Any] = {
        "service.name": (environ.get("MOMA_SERVICE_NAME") or "").strip() or "moma-runtime",
        "service.instance.id": f"{instance}/{os.getpid()}",
        "moma.instance": instance,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        "telemetry.sdk.name": "moma",
    }
    optional = {"service.namespace": model_map.account.get("accountName"),
                "moma.service.id": service_id, "moma.image.id": environ.get("MOMA_IMAGE_ID") or None,
                "container.id": container}
    attributes.update({key: value for key, value in optional.items() if value})
    return attributes


def _image_model(model_map: ModelMap) -> dict[str, Any]:
    """On ``/score`` a span names the image's model (several: their names, comma-separated)."""
    models = model_map.models
    if not models:
        return {}
    return {"moma.model.name": ",".join(model.name for model in models),
            "moma.model.version": ",".join(model.version or "" for model in models)}


def container_id() -> str | None:
    """The container's id as Docker names it (cgroup v1 paths, or v2's mount table)."""
    for path in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                found = _CONTAINER_ID.search(fh.read())
        except OSError:
            continue
        if found is not None:
            return found.group(1)
    return None
