"""`make bench-api`: register many models through the API, then page through them.

Starts a real `moma serve` (gunicorn, SQLite in a fresh MOMA_HOME, or the database of
--database-url), registers --models models over HTTP from --threads client threads,
then follows nextLink through the whole list with pages of 100. Prints registrations
per second, p50/p99 per page, and the median of the first and last tenth of the pages
(keyset pagination: the end of the list must not be slower than its start).
Targets (issue "Management API"): p99 page < 25 ms, no slower at the end.

    python bench/bench_api.py [--models 100000] [--threads 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.moma_server import MomaServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default SQLite in a temp MOMA_HOME")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="moma-bench-api-") as home:
        env = {"MOMA_DATABASE_URL": arguments.database_url} if arguments.database_url else {}
        server = MomaServer(Path(home), env).start()
        try:
            rate = register(server, arguments.models, arguments.threads)
            pages = page_through(server)
        finally:
            server.stop()
    report(arguments, rate, pages)


def register(server: MomaServer, count: int, threads: int) -> float:
    remaining = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        client = server.client()
        while True:
            with lock:
                index = next(remaining, None)
            if index is None:
                return
            client.call("POST", "/models", json={
                "name": f"model-{index % 1000}", "tags": [f"t{index % 7}"], "url": f"https://example.org/{index}.pkl",
                "mimeType": "application/octet-stream", "unpack": False})

    started = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.monotonic() - started)


def page_through(server: MomaServer) -> list[tuple[float, int]]:
    client = server.client()
    timings: list[tuple[float, int]] = []
    started = time.perf_counter()
    body = client.call("GET", "/models", params={"count": 100}).json()
    timings.append((time.perf_counter() - started, len(body["value"])))
    while body.get("nextLink"):
        started = time.perf_counter()
        body = client.get_url(body["nextLink"]).json()
        timings.append((time.perf_counter() - started, len(body["value"])))
    return timings


def report(arguments: argparse.Namespace, rate: float, pages: list[tuple[float, int]]) -> None:
    millis = [seconds * 1000 for seconds, _ in pages]
    tenth = max(1, len(millis) // 10)
    ordered = sorted(millis)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    backend = "PostgreSQL" if arguments.database_url else "SQLite"
    print(f"{arguments.models} models on {backend}, {arguments.threads} client threads:")
    print(f"  registrations per second          {rate:8.0f}")
    print(f"  pages of 100 read                 {len(pages):8d} ({sum(n for _, n in pages)} models)")
    print(f"  page latency p50                  {statistics.median(millis):8.2f} ms")
    print(f"  page latency p99                  {p99:8.2f} ms   target < 25 ms")
    print(f"  first tenth of the list, median   {statistics.median(millis[:tenth]):8.2f} ms")
    print(f"  last tenth of the list, median    {statistics.median(millis[-tenth:]):8.2f} ms")


if __name__ == "__main__":
    main()
