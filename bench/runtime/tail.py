"""Where the latency's tail comes from under wrk on the same cores (issue 19, goal 3): for
"ours" and bare Flask sync, per round, what wrk sees and what the server's processes
went through in the same seconds.

    .venv/bin/python bench/runtime/tail.py [--rounds 3] [--duration 8] [--connections 16]

Per case it prints the medians of the rounds:

- wrk's req/s and p50/p90/p99, and Little's law's mean (connections / req/s): a closed
  loop of N connections waits N / throughput on average whatever the server does;
- the server's own time per request ("ours": ``moma_request_duration_seconds``, from the
  app's first line to its response) and the share of requests that took over 10 ms in
  the server, against the share over 10 ms that wrk saw;
- scheduler wait per request: the time the server's threads were runnable but not
  running (``/proc/<pid>/task/<tid>/schedstat``), i.e. waiting for a core that wrk or
  another worker held;
- balance: the busier worker's share of the workers' CPU (0.50 is even);
- the busiest thread's share of each worker's CPU (1.00: one thread did all the work, so
  threads of a worker could not have fought over the GIL).

Run ``bench/bench_runtime.py`` once first, or let this script write its work directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_runtime import KEY, case_spec, free_port, prepare_work, process_tree, serving, wrk

CASES = ("ours", "bare-sync")
SLOW_S = 0.010


def threads_of(root: int) -> dict[int, list[tuple[int, int, int]]]:
    """For each process in ``root``'s tree: (cpu ns, run-queue wait ns, tid) per thread."""
    found: dict[int, list[tuple[int, int, int]]] = {}
    for pid in process_tree(root):
        rows = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                cpu, wait, _ = (int(value) for value in (task / "schedstat").read_text().split())
            except (OSError, ValueError):
                continue
            rows.append((cpu, wait, int(task.name)))
        found[pid] = rows
    return found


def scrape(port: int) -> dict[str, float]:
    """The /score latency histogram's cumulative buckets, sum and count ("ours" only)."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "moma_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("route") == "/score":
                values[sample.name.rsplit("_", 1)[1] + sample.labels.get("le", "")] = sample.value
    return values


def difference(after: dict, before: dict) -> dict:
    return {key: after[key] - before.get(key, 0.0) for key in after}


def cpu_by_worker(before: dict, after: dict, master: int) -> list[tuple[float, float]]:
    """Per worker process: (its CPU ns in the run, its busiest thread's share of it)."""
    workers = []
    for pid, rows in after.items():
        if pid == master:
            continue
        earlier = {tid: cpu for cpu, _, tid in before.get(pid, [])}
        spent = [cpu - earlier.get(tid, 0) for cpu, _, tid in rows]
        total = sum(spent)
        if total > 0:
            workers.append((total, max(spent) / total))
    return workers


def run(case: str, arguments: argparse.Namespace) -> dict:
    port = free_port()
    spec = case_spec(case, port, arguments.threads)
    with serving(spec, port, f"tail-{case}") as proc:
        wrk(port, spec, 2, arguments.connections, arguments.wrk_threads)  # warm-up
        histogram_before = scrape(port) if case == "ours" else {}
        before = threads_of(proc.pid)
        result = wrk(port, spec, arguments.duration, arguments.connections, arguments.wrk_threads)
        after = threads_of(proc.pid)
        histogram = difference(scrape(port), histogram_before) if case == "ours" else {}
    waited = sum(wait for rows in after.values() for _, wait, _ in rows) - \
        sum(wait for rows in before.values() for _, wait, _ in rows)
    workers = cpu_by_worker(before, after, proc.pid)
    total = sum(cpu for cpu, _ in workers)
    result.update(
        little_ms=arguments.connections / result["rps"] * 1000,
        sched_wait_us=waited / result["requests"] / 1000,
        busier_worker=max(cpu for cpu, _ in workers) / total,
        busiest_thread=min(share for _, share in workers),
    )
    if histogram:
        result["server_mean_ms"] = histogram["sum"] / histogram["count"] * 1000
        result["server_over_10ms"] = 1 - histogram[f"bucket{SLOW_S}"] / histogram["count"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    arguments = parser.parse_args()
    prepare_work()
    results: dict[str, list[dict]] = {case: [] for case in CASES}
    for number in range(arguments.rounds):
        for case in CASES if number % 2 == 0 else reversed(CASES):
            results[case].append(run(case, arguments))
            print(f"round {number + 1} {case}: " + ", ".join(
                f"{key} {value:.3g}" for key, value in results[case][-1].items()
                if isinstance(value, float)), flush=True)
    keys = ("rps", "p50", "p90", "p99", "little_ms", "server_mean_ms", "server_over_10ms",
            "sched_wait_us", "busier_worker", "busiest_thread")
    print("\n| case | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys))
    for case, rounds in results.items():
        cells = [statistics.median(r[key] for r in rounds) if key in rounds[0] else None for key in keys]
        print(f"| {case} | " + " | ".join("–" if cell is None else f"{cell:.3g}" for cell in cells) + " |")


if __name__ == "__main__":
    main()
