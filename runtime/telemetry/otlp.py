"""OTLP over HTTP with protobuf bodies (``OTEL_EXPORTER_OTLP_ENDPOINT``): one kept-alive
connection, ``POST {endpoint}/v1/traces|logs|metrics``, a timeout on every send.

Request spans are encoded by ``wire.py``; the driver's own spans, log records and the
metrics by OpenTelemetry's encoders. Two encoded ``ExportTraceServiceRequest`` bodies
joined are one whose ``resource_spans`` are both (protobuf merges repeated fields), so
a batch holding both kinds is sent as one request.
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from .. import __version__
from .pipeline import ExportError
from .settings import TelemetrySettings
from .spans import RequestSpan
from .wire import SpanEncoder

PATHS = {"spans": "/v1/traces", "logs": "/v1/logs", "metrics": "/v1/metrics"}


class OtlpExporter:
    name = "otlp"

    def __init__(self, settings: TelemetrySettings, encoder: SpanEncoder) -> None:
        assert settings.otlp_endpoint is not None
        parts = urllib.parse.urlsplit(settings.otlp_endpoint)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        base = parts.path.rstrip("/")
        self.paths = {signal: base + path for signal, path in PATHS.items()}
        self.timeout_s = settings.otlp_timeout_s
        self.headers = {"Content-Type": "application/x-protobuf",
                        "User-Agent": f"moma-runtime/{__version__}", **dict(settings.otlp_headers)}
        self.encoder = encoder
        self._connection: http.client.HTTPConnection | None = None

    def spans(self, batch: Sequence[Any]) -> None:
        ours = [item for item in batch if isinstance(item, RequestSpan)]
        theirs = [item for item in batch if not isinstance(item, RequestSpan)]
        body = self.encoder.request(ours) if ours else b""
        if theirs:
            body += encode_spans(theirs).SerializeToString()
        self._post("spans", body)

    def logs(self, batch: Sequence[Any]) -> None:
        self._post("logs", encode_logs(batch).SerializeToString())

    def metrics(self, data: Any) -> None:
        self._post("metrics", encode_metrics(data).SerializeToString())

    def _post(self, signal: str, body: bytes) -> None:
        connection = self._connection
        if connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            connection = self._connection = kind(self.host, self.port, timeout=self.timeout_s)
        try:
            connection.request("POST", self.paths[signal], body, self.headers)
            response = connection.getresponse()
            answer = response.read()
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ExportError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status < 300:
            raise ExportError(f"{self.paths[signal]} answered {response.status} "
                              f"{answer[:200].decode('utf-8', 'replace')}")

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
