"""Bounded queues of spans and log records, and the thread that exports them.

The request path only appends to a deque (dropping, and counting, when it is full); one
thread per worker process takes batches off the queues and hands them to the exporters,
and every ``metric_interval_s`` asks for the metrics and exports them too. An exporter
that fails (a refused connection, an error status, no answer within its timeout) loses
that batch (counted as ``export_failed``) and is left alone for a backoff that doubles up
to 30 s, while the queues keep taking new items up to their bound: a slow or dead
collector costs the requests nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .settings import TelemetrySettings

log = logging.getLogger("moma.runtime")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
LOG_EVERY_S = 30.0


class ExportError(Exception):
    """An exporter could not deliver a batch (the batch is dropped)."""


class Exporter(Protocol):
    name: str

    def spans(self, batch: Sequence[Any]) -> None: ...
    def logs(self, batch: Sequence[Any]) -> None: ...
    def metrics(self, data: Any) -> None: ...
    def close(self) -> None: ...


class Recorder(Protocol):
    """Where exports and drops are counted (``runtime.metrics.Metrics``: ``/metrics``)."""

    def telemetry_exported(self, signal: str, items: int) -> None: ...
    def telemetry_dropped(self, signal: str, reason: str, items: int) -> None: ...


class _Target:
    """One exporter and its backoff."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.retry_at = 0.0
        self.backoff = 0.0
        self.logged_at = -LOG_EVERY_S

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def succeeded(self) -> None:
        self.backoff = self.retry_at = 0.0

    def failed(self, now: float, signal: str, exc: BaseException) -> None:
        self.backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, self.backoff * 2))
        self.retry_at = now + self.backoff
        if now - self.logged_at >= LOG_EVERY_S:
            self.logged_at = now
            log.warning("telemetry: the %s exporter failed to send %s (%s); retrying in %.1f s, "
                        "dropping what does not fit the queue meanwhile",
                        self.exporter.name, signal, exc, self.backoff)


class Pipeline:
    def __init__(self, settings: TelemetrySettings, exporters: Sequence[Exporter],
                 recorder: Recorder, metrics: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.targets = [_Target(exporter) for exporter in exporters]
        self.recorder = recorder
        self.collect_metrics = metrics
        self._spans: deque[Any] = deque()
        self._logs: deque[Any] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- producers (any thread; never blocks) ---------------------------------------------
    def has_room_for_a_span(self) -> bool:
        return len(self._spans) < self.settings.span_queue

    def put_span(self, item: Any) -> None:
        self._put("spans", self._spans, self.settings.span_queue, self.settings.span_batch, item)

    def put_log(self, item: Any) -> None:
        self._put("logs", self._logs, self.settings.log_queue, self.settings.log_batch, item)

    def _put(self, signal: str, queue: deque[Any], bound: int, batch: int, item: Any) -> None:
        if len(queue) >= bound:
            self.recorder.telemetry_dropped(signal, "queue_full", 1)
            return
        queue.append(item)
        if len(queue) >= batch and not self._wake.is_set():
            self._wake.set()

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="moma-telemetry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        settings = self.settings
        period = min(settings.span_delay_s, settings.log_delay_s)
        next_metrics = time.monotonic() + settings.metric_interval_s
        next_whole = time.monotonic() + period
        while not self._stop.is_set():
            now = time.monotonic()
            timeout = max(0.0, min(next_whole, next_metrics) - now)
            backing_off = min((target.retry_at for target in self.targets), default=0.0) - now
            if backing_off > 0:  # nothing can be sent before then: a put must not wake us
                self._stop.wait(min(timeout, backing_off))
            else:
                self._wake.wait(timeout)
            self._wake.clear()
            whole = time.monotonic() >= next_whole  # else a full batch woke us
            if whole:
                next_whole = time.monotonic() + period
            self._flush(whole)
            if time.monotonic() >= next_metrics:
                next_metrics = time.monotonic() + settings.metric_interval_s
                self.export_metrics()

    def flush_queues(self) -> None:
        """Export everything queued now, batch by batch (shutdown)."""
        self._flush(whole=True)

    def _flush(self, whole: bool) -> None:
        with self._lock:
            self._drain("spans", self._spans, self.settings.span_batch, whole)
            self._drain("logs", self._logs, self.settings.log_batch, whole)

    def _drain(self, signal: str, queue: deque[Any], size: int, whole: bool) -> None:
        """Full batches, while there are; with ``whole`` (the delay is up, or shutdown),
        then what is left of the items queued when it began. Items that arrive while a
        batch is sent wait for a full batch or the next delay: sending them at once would
        keep the thread posting small batches back to back under load. While every
        exporter backs off, what is queued stays (up to the queue's bound)."""
        left = len(queue) if whole else 0
        while any(target.ready(time.monotonic()) for target in self.targets):
            count = min(size, len(queue))
            if count < size:
                count = min(count, left)
                if not count:
                    return
            batch = [queue.popleft() for _ in range(count)]
            left = max(0, left - count)
            self._send(signal, batch, count)

    def export_metrics(self) -> None:
        if self.collect_metrics is None:
            return
        try:
            data = self.collect_metrics()
        except Exception:
            log.exception("telemetry: collecting metrics failed")
            return
        with self._lock:
            self._send("metrics", data, 1)

    def _send(self, signal: str, batch: Any, items: int) -> None:
        now = time.monotonic()
        for target in self.targets:
            if not target.ready(now):
                self.recorder.telemetry_dropped(signal, "export_failed", items)
                continue
            try:
                getattr(target.exporter, signal)(batch)
            except ExportError as exc:
                target.failed(now, signal, exc)
                self.recorder.telemetry_dropped(signal, "export_failed", items)
            except Exception as exc:
                log.error("telemetry: the %s exporter raised", target.exporter.name, exc_info=exc)
                target.failed(now, signal, exc)
                self.recorder.telemetry_dropped(signal, "export_failed", items)
            else:
                target.succeeded()
                self.recorder.telemetry_exported(signal, items)

    def shutdown(self, timeout_s: float) -> None:
        """Stop the thread, then export what is queued and the last metrics (each exporter
        within its timeout, ``OTEL_EXPORTER_OTLP_TIMEOUT``); what is left is dropped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.flush_queues()
        self.export_metrics()
        for signal, queue in (("spans", self._spans), ("logs", self._logs)):
            if queue:
                self.recorder.telemetry_dropped(signal, "export_failed", len(queue))
                queue.clear()
        for target in self.targets:
            try:
                target.exporter.close()
            except Exception:
                log.warning("telemetry: closing the %s exporter failed", target.exporter.name,
                            exc_info=True)
