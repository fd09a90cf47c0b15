"""Per-request cost of cross-worker metrics: prometheus_client multiprocess mode against
the runtime's shared-memory cells (runtime/metrics.py).

    .venv/bin/python bench/runtime/metrics_cost.py

Both record what the runtime records for one scoring request: in-flight up and down,
requests_total{route,status}, the latency histogram{route}, the queue-wait histogram.
"""

from __future__ import annotations

import os
import sys
import tempfile
import timeit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 100_000


def prometheus_multiprocess(directory: str):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import Counter, Gauge, Histogram

    requests = Counter("req", "r", ["route", "status"])
    latency = Histogram("lat", "l", ["route"])
    queue = Histogram("qw", "q")
    in_flight = Gauge("inflight", "i", multiprocess_mode="livesum")

    def one() -> None:
        in_flight.inc()
        queue.observe(0.0)
        in_flight.dec()
        requests.labels("/score", "200").inc()
        latency.labels("/score").observe(0.0012)
    return one


def ours(directory: str):
    sys.path.insert(0, ROOT)
    from runtime.metrics import ROUTE_INDEX, Metrics, new_shared_memory

    metrics = Metrics(new_shared_memory(directory))
    score = ROUTE_INDEX["/score"]

    def one() -> None:
        metrics.request_started()
        metrics.queue_waited(0.0)
        metrics.request_finished(score, 200, 0.0012)
    return one


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        results = {}
        for name, make in (("prometheus_client multiprocess", prometheus_multiprocess),
                           ("runtime shared cells", ours)):
            one = make(directory)
            one()
            results[name] = min(timeit.repeat(one, number=N, repeat=5)) / N * 1e6
        for name, us in results.items():
            print(f"{name:<32} {us:6.2f} us per request")
        names = list(results)
        print(f"ratio: {results[names[0]] / results[names[1]]:.1f}x")


if __name__ == "__main__":
    main()
