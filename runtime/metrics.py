"""Prometheus metrics, correct across gunicorn workers, cheap on the request path.

Each worker writes its own float64 cells in the shared memory (``shared_memory.py``): a fixed
table of counters and histogram buckets indexed by small integers, updated with a
few ``memoryview`` stores under a thread lock (about a microsecond per request).
``/metrics`` sums the archive row (dead workers) and every live row under the memory's
lock and renders the text format with ``prometheus_client``'s metric families.

Why not ``prometheus_client`` multiprocess mode: it keeps one mmap file per worker
per metric type and looks labels up per call; measured in
``bench/runtime/metrics_cost.py`` it costs several times more per request than these
cells, needs a wiped directory per start and ``mark_process_dead`` bookkeeping, and
still leaves dead workers' gauge files to manage. Labels here have fixed value sets
(routes, status codes, reasons), so fixed cells lose nothing.

Exposed (all prefixed ``moma_``):
  instance{instance}                      gauge   always 1: which container answered
  requests_total{route,status}            counter
  request_duration_seconds{route}         histogram
  requests_in_flight                      gauge   HTTP requests being handled now
  scoring_in_flight                       gauge   run() calls holding an admission slot
  queue_depth                             gauge   requests waiting for a slot
  queue_wait_seconds                      histogram
  rejections_total{reason}                counter (queue_full, queue_timeout)
  driver_errors_total{kind}               counter (exception, bad_output, timeout)
  connections_dropped_total{reason}       counter clients closed by the worker's event loop:
                                          head_timeout, body_timeout, silent (sent
                                          nothing), head_too_large, body_too_large,
                                          answer_stalled (did not read its answer)
  datacollection_rows_collected_total     counter rows made by collectors and automatic capture
  datacollection_rows_written_total{sink} counter rows a sink stored (local, blob, debug)
  datacollection_rows_dropped_total{reason} counter (queue_full, too_large, unsupported,
                                          error, shutdown)
  datacollection_sink_errors_total{sink}  counter failed writes (each is retried)
  datacollection_queued_rows              gauge   rows waiting to be written
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import Any

from .oip.routes import ROUTES as OIP_ROUTES
from .shared_memory import SharedMemory

ROUTES = ("/", "/livez", "/readyz", "/score", "/swagger.json", "/metrics", *OIP_ROUTES, "other")
ROUTE_INDEX = {route: index for index, route in enumerate(ROUTES) if route != "other"}
OTHER_ROUTE = len(ROUTES) - 1
STATUSES = (200, 400, 401, 404, 405, 413, 415, 429, 500, 503, 504, "other")
STATUS_INDEX = {status: index for index, status in enumerate(STATUSES) if status != "other"}
OTHER_STATUS = len(STATUSES) - 1
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REJECT_REASONS = ("queue_full", "queue_timeout")
DRIVER_ERROR_KINDS = ("exception", "bad_output", "timeout")
DROP_REASONS = ("head_timeout", "body_timeout", "silent", "head_too_large", "body_too_large",
                "answer_stalled")
DC_SINKS = ("local", "blob", "debug")
DC_DROP_REASONS = ("queue_full", "too_large", "unsupported", "error", "shutdown")


class Layout:
    """Cell offsets inside one row."""

    def __init__(self) -> None:
        offset = 0
        self.requests = offset
        offset += len(ROUTES) * len(STATUSES)
        self.latency_width = len(LATENCY_BUCKETS) + 3  # buckets, +Inf, sum, count
        self.latency = offset
        offset += len(ROUTES) * self.latency_width
        self.queue_width = len(QUEUE_BUCKETS) + 3
        self.queue = offset
        offset += self.queue_width
        self.rejections = offset
        offset += len(REJECT_REASONS)
        self.driver_errors = offset
        offset += len(DRIVER_ERROR_KINDS)
        self.in_flight = offset
        offset += 1
        self.connections_dropped = offset
        offset += len(DROP_REASONS)
        self.dc_collected = offset
        offset += 1
        self.dc_written = offset
        offset += len(DC_SINKS)
        self.dc_dropped = offset
        offset += len(DC_DROP_REASONS)
        self.dc_sink_errors = offset
        offset += len(DC_SINKS)
        self.dc_queued = offset
        offset += 1
        self.cells = offset
        self.gauges = frozenset({self.in_flight, self.dc_queued})


LAYOUT = Layout()


def new_shared_memory(state_dir: str | None = None, limit: int = 0,
                      max_queue: int = 0) -> SharedMemory:
    """Shared memory for these metrics and the given admission limits."""
    return SharedMemory(LAYOUT.cells, LAYOUT.gauges, state_dir=state_dir, limit=limit,
                        max_queue=max_queue)


class Metrics:
    """The recorder one worker uses; all methods are cheap and never raise."""

    def __init__(self, memory: SharedMemory, instance: str = "") -> None:
        self.memory = memory
        self.cells = memory.cells
        self.instance = instance
        self._lock = threading.Lock()

    def request_started(self) -> None:
        cells = self.cells.mine()
        with self._lock:
            cells[LAYOUT.in_flight] += 1.0

    def request_finished(self, route: int, status: int, seconds: float) -> None:
        cells = self.cells.mine()
        status_at = STATUS_INDEX.get(status, OTHER_STATUS)
        histogram = LAYOUT.latency + route * LAYOUT.latency_width
        bucket = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            cells[LAYOUT.in_flight] -= 1.0
            cells[LAYOUT.requests + route * len(STATUSES) + status_at] += 1.0
            cells[histogram + bucket] += 1.0
            cells[histogram + len(LATENCY_BUCKETS) + 1] += seconds
            cells[histogram + len(LATENCY_BUCKETS) + 2] += 1.0

    def queue_waited(self, seconds: float) -> None:
        cells = self.cells.mine()
        histogram = LAYOUT.queue
        bucket = bisect.bisect_left(QUEUE_BUCKETS, seconds)
        with self._lock:
            cells[histogram + bucket] += 1.0
            cells[histogram + len(QUEUE_BUCKETS) + 1] += seconds
            cells[histogram + len(QUEUE_BUCKETS) + 2] += 1.0

    def rejected(self, reason: str) -> None:
        self._bump(LAYOUT.rejections + REJECT_REASONS.index(reason))

    def driver_error(self, kind: str) -> None:
        self._bump(LAYOUT.driver_errors + DRIVER_ERROR_KINDS.index(kind))

    def connection_dropped(self, reason: str) -> None:
        self._bump(LAYOUT.connections_dropped + DROP_REASONS.index(reason))

    def _bump(self, cell: int, amount: float = 1.0) -> None:
        cells = self.cells.mine()
        with self._lock:
            cells[cell] += amount

    # -- data collection (runtime/datacollection/hub.py's Recorder) -----------------------
    def dc_collected(self, rows: int) -> None:
        self._bump(LAYOUT.dc_collected, rows)

    def dc_written(self, sink: str, rows: int) -> None:
        self._bump(LAYOUT.dc_written + DC_SINKS.index(sink), rows)

    def dc_dropped(self, reason: str, rows: int) -> None:
        self._bump(LAYOUT.dc_dropped + DC_DROP_REASONS.index(reason), rows)

    def dc_sink_error(self, sink: str) -> None:
        self._bump(LAYOUT.dc_sink_errors + DC_SINKS.index(sink))

    def dc_queued(self, rows: float) -> None:
        cells = self.cells.mine()
        with self._lock:
            cells[LAYOUT.dc_queued] = float(rows)

    # -- reading ------------------------------------------------------------------------
    def totals(self) -> tuple[list[float], int, int]:
        """Cells summed over the archive and live rows; slots held; queue depth."""
        return (self.cells.totals(), *self.memory.admission.totals())

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(*self.totals(), instance=self.instance))
        return generate_latest(registry)


class _Collector:
    def __init__(self, totals: list[float], held: int, waiting: int, instance: str = "") -> None:
        self.totals, self.held, self.waiting, self.instance = totals, held, waiting, instance

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        totals = self.totals
        info = GaugeMetricFamily("moma_instance", "Always 1; names the container these totals are of.",
                                 labels=["instance"])
        info.add_metric([self.instance], 1.0)
        yield info
        requests = CounterMetricFamily("moma_requests", "HTTP requests answered, by route "
                                       "and status.", labels=["route", "status"])
        for route_at, route in enumerate(ROUTES):
            for status_at, status in enumerate(STATUSES):
                value = totals[LAYOUT.requests + route_at * len(STATUSES) + status_at]
                if value:
                    requests.add_metric([route, str(status)], value)
        yield requests

        latency = HistogramMetricFamily("moma_request_duration_seconds",
                                        "Time from request start to response, by route.",
                                        labels=["route"])
        for route_at, route in enumerate(ROUTES):
            histogram = LAYOUT.latency + route_at * LAYOUT.latency_width
            if totals[histogram + len(LATENCY_BUCKETS) + 2]:
                latency.add_metric([route], _buckets(totals, histogram, LATENCY_BUCKETS),
                                   totals[histogram + len(LATENCY_BUCKETS) + 1])
        yield latency

        queue = HistogramMetricFamily("moma_queue_wait_seconds",
                                      "Time admitted requests waited for a slot.")
        queue.add_metric([], _buckets(totals, LAYOUT.queue, QUEUE_BUCKETS),
                         totals[LAYOUT.queue + len(QUEUE_BUCKETS) + 1])
        yield queue

        yield GaugeMetricFamily("moma_requests_in_flight", "HTTP requests being handled.",
                                value=totals[LAYOUT.in_flight])
        yield GaugeMetricFamily("moma_scoring_in_flight", "run() calls holding an admission "
                                "slot (timed-out calls included until they return).",
                                value=self.held)
        yield GaugeMetricFamily("moma_queue_depth", "Requests waiting for an admission slot.",
                                value=self.waiting)

        rejections = CounterMetricFamily("moma_rejections", "Requests refused with 429, by "
                                         "reason.", labels=["reason"])
        for at, reason in enumerate(REJECT_REASONS):
            rejections.add_metric([reason], totals[LAYOUT.rejections + at])
        yield rejections

        errors = CounterMetricFamily("moma_driver_errors", "Scoring calls that failed in the "
                                     "driver, by kind.", labels=["kind"])
        for at, kind in enumerate(DRIVER_ERROR_KINDS):
            errors.add_metric([kind], totals[LAYOUT.driver_errors + at])
        yield errors

        dropped = CounterMetricFamily("moma_connections_dropped", "Clients the worker closed "
                                      "for being too slow or sending too much, by reason.",
                                      labels=["reason"])
        for at, reason in enumerate(DROP_REASONS):
            dropped.add_metric([reason], totals[LAYOUT.connections_dropped + at])
        yield dropped

        yield CounterMetricFamily("moma_datacollection_rows_collected", "Rows made by data "
                                  "collectors and automatic capture.",
                                  value=totals[LAYOUT.dc_collected])
        written = CounterMetricFamily("moma_datacollection_rows_written", "Rows a data "
                                      "collection sink stored, by sink.", labels=["sink"])
        errors = CounterMetricFamily("moma_datacollection_sink_errors", "Failed data "
                                     "collection writes, by sink (each is retried).",
                                     labels=["sink"])
        for at, sink in enumerate(DC_SINKS):
            written.add_metric([sink], totals[LAYOUT.dc_written + at])
            errors.add_metric([sink], totals[LAYOUT.dc_sink_errors + at])
        yield written
        yield errors
        dropped = CounterMetricFamily("moma_datacollection_rows_dropped", "Collected rows "
                                      "never written, by reason.", labels=["reason"])
        for at, reason in enumerate(DC_DROP_REASONS):
            dropped.add_metric([reason], totals[LAYOUT.dc_dropped + at])
        yield dropped
        yield GaugeMetricFamily("moma_datacollection_queued_rows", "Collected rows waiting "
                                "to be written (queued or kept while a sink is down).",
                                value=totals[LAYOUT.dc_queued])


def _buckets(totals: list[float], start: int,
             bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    """Cumulative bucket counts, as the text format wants them."""
    cumulative, running = [], 0.0
    for at, bound in enumerate(bounds):
        running += totals[start + at]
        cumulative.append((repr(bound), running))
    running += totals[start + len(bounds)]
    cumulative.append(("+Inf", running))
    return cumulative
