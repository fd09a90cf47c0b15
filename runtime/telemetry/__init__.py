"""Telemetry of a service with ``appInsightsEnabled``: OpenTelemetry traces, metrics and
logs, to an OTLP/HTTP collector or Azure Monitor.

Off (the default) this package imports nothing beyond the standard library and
``settings.py``: OpenTelemetry is imported by ``setup.py``, only when it is on. On::

    request ─► Gate ─► RequestTracer.begin (span ids; caller's traceparent; the span as
      │                OpenTelemetry's current span, for the driver)
      │        Scorer ─► ScoringObserver (admission, queue wait, driver error)
      │        driver: its OTel spans ─► TracerProvider ─┐, its prints and logging ─► LoggerProvider ─┐
      └─► Gate ─► RequestTracer.end ─► Pipeline.put_span ◄─┘                     Pipeline.put_log ◄─┘
    Pipeline thread (per worker): batches ─► OtlpExporter (wire.py, OTel's encoders) and/or
      AzureMonitorExporter; every OTEL_METRIC_EXPORT_INTERVAL the worker's metric cells
      (metrics_data.py); full queues and failed exports dropped and counted in /metrics.

Files: ``settings.py`` (environment), ``spans.py`` (the request span and its
attributes), ``tracer.py`` (request path), ``pipeline.py`` (queues, thread, backoff),
``wire.py`` (OTLP encoding of request spans), ``otlp.py``, ``azure.py`` (exporters),
``metrics_data.py``, ``driver_logs.py`` (prints and logging), ``setup.py`` (wiring).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .settings import TelemetrySettings
from .spans import Route

if TYPE_CHECKING:
    from ..model_map import ModelMap
    from ..oip.names import ModelNames
    from .pipeline import Recorder
    from .setup import Telemetry

__all__ = ["TelemetrySettings", "TelemetryUnavailable", "Route", "configure", "shutdown"]

log = logging.getLogger("moma.runtime")
SHUTDOWN_TIMEOUT_S = 5.0

_lock = threading.Lock()
_current: "Telemetry | None" = None


class TelemetryUnavailable(Exception):
    """Telemetry is on but cannot run: the worker fails with this reason."""


def configure(environ: Mapping[str, Any], *, instance: str, model_map: "ModelMap",
              names: "ModelNames", routes: dict[int, Route], recorder: "Recorder",
              cells: Callable[[], list[float]]) -> "Telemetry | None":
    """This process's telemetry, or None when it is off. Raises TelemetryUnavailable."""
    global _current
    try:
        settings = TelemetrySettings.load(environ)
    except ConfigError as exc:
        raise TelemetryUnavailable(str(exc)) from exc
    if not settings.enabled:
        return None
    missing = settings.destination_missing
    if missing is not None:
        raise TelemetryUnavailable(missing)
    try:
        from .setup import start
    except ImportError as exc:
        raise TelemetryUnavailable(
            f"telemetry is on but this image lacks the OpenTelemetry packages ({exc.name}): "
            f"rebuild the image with this moma version, or turn appInsightsEnabled off") from exc
    telemetry = start(settings, environ, instance=instance, model_map=model_map, names=names,
                      routes=routes, recorder=recorder, cells=cells)
    with _lock:
        previous, _current = _current, telemetry
        if previous is None:
            atexit.register(shutdown)
    if previous is not None:
        previous.shutdown(SHUTDOWN_TIMEOUT_S)
    log.info("telemetry on: %s", ", ".join(
        f"{kind} {where}" for kind, where in (("OTLP", settings.otlp_endpoint),
                                              ("Azure Monitor", settings.connection_string and
                                               "(connection string)")) if where))
    return telemetry


def shutdown() -> None:
    """Export what is queued (gunicorn's ``worker_exit``, ``atexit``)."""
    global _current
    with _lock:
        telemetry, _current = _current, None
    if telemetry is not None:
        telemetry.shutdown(SHUTDOWN_TIMEOUT_S)
