"""A telemetry receiver (on 127.0.0.1 unless told another local address, e.g. the Docker
bridge's gateway for containers): OTLP/HTTP (protobuf) and Azure Monitor's ingestion
API (Breeze, ``POST /v2.1/track``, JSON envelopes), for the tests and the benchmark
(no real collector can be installed here).

``OtlpReceiver(decode=True)`` keeps every span, log record and metric it receives,
decoded with ``opentelemetry-proto`` (tests); ``decode=False`` only counts requests and
bytes (the benchmark: a receiver sharing the cores must cost little). ``stall=True``
accepts connections and never answers (a collector that hangs).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OTLP_PATHS = ("/v1/traces", "/v1/logs", "/v1/metrics")
BREEZE_PATH = "/v2.1/track"


class OtlpReceiver:
    def __init__(self, decode: bool = True, stall: bool = False, host: str = "127.0.0.1") -> None:
        self.decode = decode
        self.stall = stall
        self.spans: list[tuple[dict[str, Any], Any]] = []  # (resource attributes, Span)
        self.logs: list[tuple[dict[str, Any], Any]] = []
        self.metrics: list[tuple[dict[str, Any], Any]] = []
        self.envelopes: list[dict[str, Any]] = []  # Azure Monitor
        self.requests: dict[str, int] = {}
        self.bytes = 0
        self._changed = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.stall:
                    receiver._release.wait()
                    return
                status = receiver._receive(self.path, body, self.headers.get("Content-Encoding"))
                answer = b"{}" if self.path == BREEZE_PATH else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if answer
                                 else "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- receiving -----------------------------------------------------------------------------
    def _receive(self, path: str, body: bytes, encoding: str | None) -> int:
        if path not in (*OTLP_PATHS, BREEZE_PATH):
            return 404
        with self._changed:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.bytes += len(body)
            if self.decode:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                if path == BREEZE_PATH:
                    self.envelopes.extend(json.loads(body))
                else:
                    self._decode(path, body)
            self._changed.notify_all()
        return 200

    def _decode(self, path: str, body: bytes) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans += [(attributes(resource.resource.attributes), span)
                                   for span in scope.spans]
        elif path == "/v1/logs":
            request = ExportLogsServiceRequest.FromString(body)
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    self.logs += [(attributes(resource.resource.attributes), record)
                                  for record in scope.log_records]
        else:
            request = ExportMetricsServiceRequest.FromString(body)
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    self.metrics += [(attributes(resource.resource.attributes), metric)
                                     for metric in scope.metrics]

    def wait_for(self, condition: Callable[["OtlpReceiver"], Any], timeout: float = 30.0) -> Any:
        """Wait until ``condition(self)`` is truthy; return its value (AssertionError after
        ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver did not get what was awaited within "
                                         f"{timeout} s (requests so far: {self.requests})")
                self._changed.wait(left)


def value_of(any_value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    return getattr(any_value, kind) if kind else None


def attributes(key_values: Any) -> dict[str, Any]:
    return {item.key: value_of(item.value) for item in key_values}
