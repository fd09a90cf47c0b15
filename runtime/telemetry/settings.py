"""Telemetry settings from the environment (standard library only: read when telemetry
is off too, and then nothing of OpenTelemetry is imported).

``AML_APP_INSIGHTS_ENABLED`` (the service's ``appInsightsEnabled``) turns it on; the
destination is OpenTelemetry's own variable for a collector (``OTEL_EXPORTER_OTLP_*``,
OTLP over HTTP with protobuf bodies) and/or Azure Monitor's connection string
(``APPLICATIONINSIGHTS_CONNECTION_STRING``). The batching variables are OpenTelemetry's
(``OTEL_BSP_*`` for spans, ``OTEL_BLRP_*`` for log records, ``OTEL_METRIC_EXPORT_*``)
with their specified defaults.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .. import contract
from ..config import parse_bool, parse_int
from ..errors import ConfigError

ENABLED = contract.ENV_APP_INSIGHTS_ENABLED
OTLP_ENDPOINT = contract.ENV_OTLP_ENDPOINT
OTLP_HEADERS = contract.ENV_OTLP_HEADERS
OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
CONNECTION_STRING = contract.ENV_APPINSIGHTS_CONNECTION_STRING
REQUEST_BODY = contract.ENV_TELEMETRY_REQUEST_BODY
SAMPLER = contract.ENV_TRACES_SAMPLER
SAMPLERS = {"always_on": False, "parentbased_always_on": True}  # → follow the caller's sampling
BODY_LIMIT = 8192  # bytes of an opted-in request body put on its span


@dataclasses.dataclass(frozen=True)
class TelemetrySettings:
    enabled: bool = False
    otlp_endpoint: str | None = None  # base URL; /v1/traces, /v1/metrics, /v1/logs are added
    otlp_headers: tuple[tuple[str, str], ...] = ()
    otlp_timeout_s: float = 10.0
    connection_string: str | None = None
    request_body: bool = False  # the user opted in: request bodies (up to BODY_LIMIT) on spans
    follow_caller_sampling: bool = False  # parentbased_always_on: a caller's sampled=0 holds
    span_queue: int = 2048
    span_batch: int = 512
    span_delay_s: float = 5.0
    log_queue: int = 2048
    log_batch: int = 512
    log_delay_s: float = 1.0
    metric_interval_s: float = 60.0

    @classmethod
    def load(cls, environ: Mapping[str, Any]) -> "TelemetrySettings":
        enabled = parse_bool(ENABLED, environ.get(ENABLED), False)
        if not enabled:
            return cls()
        endpoint = (environ.get(OTLP_ENDPOINT) or "").strip() or None
        if endpoint is not None:
            _check_endpoint(endpoint)
        span_queue = parse_int("OTEL_BSP_MAX_QUEUE_SIZE", environ.get("OTEL_BSP_MAX_QUEUE_SIZE"), 2048, 1)
        log_queue = parse_int("OTEL_BLRP_MAX_QUEUE_SIZE", environ.get("OTEL_BLRP_MAX_QUEUE_SIZE"), 2048, 1)
        return cls(
            enabled=True,
            otlp_endpoint=endpoint,
            otlp_headers=parse_headers(environ.get(OTLP_HEADERS) or ""),
            otlp_timeout_s=_millis(environ, OTLP_TIMEOUT, 10000),
            connection_string=(environ.get(CONNECTION_STRING) or "").strip() or None,
            request_body=parse_bool(REQUEST_BODY, environ.get(REQUEST_BODY), False),
            follow_caller_sampling=_sampler(environ),
            span_queue=span_queue,
            span_batch=min(span_queue, parse_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                                                 environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), 512, 1)),
            span_delay_s=_millis(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000),
            log_queue=log_queue,
            log_batch=min(log_queue, parse_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
                                               environ.get("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"), 512, 1)),
            log_delay_s=_millis(environ, "OTEL_BLRP_SCHEDULE_DELAY", 1000),
            metric_interval_s=_millis(environ, "OTEL_METRIC_EXPORT_INTERVAL", 60000),
        )

    @property
    def destination_missing(self) -> str | None:
        """Why an enabled telemetry cannot export, or None."""
        if self.enabled and self.otlp_endpoint is None and self.connection_string is None:
            return (f"{ENABLED} is true but no destination is set: set {OTLP_ENDPOINT} (an "
                    f"OTLP/HTTP collector) or {CONNECTION_STRING} (Azure Monitor)")
        return None


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs, comma-separated, values
    percent-encoded (the OpenTelemetry specification's format)."""
    headers = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), urllib.parse.unquote(value.strip())
        if not sep or not key or any(ord(c) < 0x21 or c in '()<>@,;:\\"/[]?={}' for c in key) \
                or any(ord(c) < 0x20 and c != "\t" for c in value):
            raise ConfigError(f"{OTLP_HEADERS} must be key=value pairs separated by commas")
        headers.append((key, value))
    return tuple(headers)


def _check_endpoint(endpoint: str) -> None:
    try:
        parts = urllib.parse.urlsplit(endpoint)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"{OTLP_ENDPOINT} must be an http(s)://host[:port][/path] URL, "
                          f"got {endpoint!r}")


def _sampler(environ: Mapping[str, Any]) -> bool:
    """``OTEL_TRACES_SAMPLER``: always_on (moma's default: every request, as Application
    Insights had it) or parentbased_always_on (the caller's sampled flag decides)."""
    name = (environ.get(SAMPLER) or "always_on").strip().lower()
    if name not in SAMPLERS:
        raise ConfigError(f"{SAMPLER} must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return SAMPLERS[name]


def _millis(environ: Mapping[str, Any], name: str, default: int) -> float:
    return parse_int(name, environ.get(name), default, 1) / 1000.0
