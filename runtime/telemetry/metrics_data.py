"""This worker's request metrics as OpenTelemetry metrics, read from the cells the
request path already counts in (``runtime/metrics.py``): exporting them costs the
requests nothing. Cumulative, from the worker's start; each worker is a
``service.instance.id`` of its own (see ``setup.py``).

  moma.requests                 counter        {http.route, http.response.status_code}
  moma.requests.server_errors   counter        the 5xx of moma.requests
  moma.requests.rejected        counter        429s, {moma.rejection.reason}
  moma.requests.active          updowncounter  requests being handled
  moma.request.duration         histogram (s)  {http.route}
  moma.queue.wait               histogram (s)  admitted requests' wait for a slot
  moma.driver.errors            counter        {moma.driver_error.kind}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from ..metrics import DRIVER_ERROR_KINDS, LATENCY_BUCKETS, LAYOUT, QUEUE_BUCKETS, REJECT_REASONS, ROUTES, STATUSES

CUMULATIVE = AggregationTemporality.CUMULATIVE


class MetricsReader:
    def __init__(self, cells: Callable[[], list[float]], resource: Resource,
                 scope: InstrumentationScope) -> None:
        self.cells = cells
        self.resource = resource
        self.scope = scope
        self.started_ns = time.time_ns()

    def __call__(self) -> MetricsData:
        cells, now = self.cells(), time.time_ns()
        points = _Points(self.started_ns, now)
        requests, errors = [], []
        for route_at, route in enumerate(ROUTES):
            for status_at, status in enumerate(STATUSES):
                count = cells[LAYOUT.requests + route_at * len(STATUSES) + status_at]
                if count:
                    point = points.number({"http.route": route,
                                           "http.response.status_code": status}, count)
                    requests.append(point)
                    if isinstance(status, int) and status >= 500:
                        errors.append(point)
        durations = [points.histogram({"http.route": route}, cells,
                                      LAYOUT.latency + at * LAYOUT.latency_width, LATENCY_BUCKETS)
                     for at, route in enumerate(ROUTES)]
        metrics = [
            _sum("moma.requests", "HTTP requests answered.", "{request}", requests),
            _sum("moma.requests.server_errors", "Requests answered with a 5xx status.",
                 "{request}", errors),
            _sum("moma.requests.rejected", "Requests refused with 429 by admission control.",
                 "{request}", [points.number({"moma.rejection.reason": reason},
                                             cells[LAYOUT.rejections + at])
                               for at, reason in enumerate(REJECT_REASONS)]),
            _sum("moma.requests.active", "Requests being handled.", "{request}",
                 [points.number({}, cells[LAYOUT.in_flight])], monotonic=False),
            Metric("moma.request.duration", "Time from a request's start to its answer.", "s",
                   Histogram([point for point in durations if point.count], CUMULATIVE)),
            Metric("moma.queue.wait", "Time admitted requests waited for a slot.", "s",
                   Histogram([points.histogram({}, cells, LAYOUT.queue, QUEUE_BUCKETS)],
                             CUMULATIVE)),
            _sum("moma.driver.errors", "Scoring calls that failed in the driver.", "{call}",
                 [points.number({"moma.driver_error.kind": kind}, cells[LAYOUT.driver_errors + at])
                  for at, kind in enumerate(DRIVER_ERROR_KINDS)]),
        ]
        return MetricsData([ResourceMetrics(self.resource, [ScopeMetrics(self.scope, metrics, "")],
                                            "")])


class _Points:
    def __init__(self, start_ns: int, now_ns: int) -> None:
        self.start_ns, self.now_ns = start_ns, now_ns

    def number(self, attributes: dict[str, Any], value: float) -> NumberDataPoint:
        return NumberDataPoint(attributes, self.start_ns, self.now_ns, int(value))

    def histogram(self, attributes: dict[str, Any], cells: list[float], start: int,
                  bounds: tuple[float, ...]) -> HistogramDataPoint:
        """Our cells hold per-bucket counts (bounds, then +Inf), the sum and the count,
        as OpenTelemetry's explicit-bucket histogram does."""
        buckets = [int(count) for count in cells[start:start + len(bounds) + 1]]
        return HistogramDataPoint(attributes, self.start_ns, self.now_ns,
                                  int(cells[start + len(bounds) + 2]),
                                  cells[start + len(bounds) + 1], buckets, list(bounds),
                                  None, None)  # type: ignore[arg-type]  # min, max: not kept


def _sum(name: str, description: str, unit: str, points: list[NumberDataPoint],
         monotonic: bool = True) -> Metric:
    return Metric(name, description, unit, Sum(points, CUMULATIVE, monotonic))
