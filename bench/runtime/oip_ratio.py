"""The Open Inference Protocol's cost against ``/score``, measured on one server.

    .venv/bin/python bench/runtime/oip_ratio.py [--pairs 8] [--duration 5] [--baseline DIR]

``bench_runtime.py --cases ours,ours-v2`` starts a new server for every round of every
case, and two servers of the same code differ by more than the two routes do (which
worker gets which connections, where memory lands). Here one server (the "ours" case:
2 workers, keys, admission) answers both calls, one-row iris over ``POST /score`` and
the same row over ``POST /v2/models/iris/infer``, in alternating wrk runs; each pair
gives a ratio of req/s and of server CPU per request, and the medians of the pairs'
ratios are printed. ``--baseline DIR`` (a ``git worktree add DIR <commit>``) measures
that checkout's runtime the same way, on a server of its own, after this one.

Run ``bench/bench_runtime.py`` once first, or let this script write its work directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_runtime import BASELINES, OIP_BODY, case_spec, free_port, prepare_work, serving, wrk_with_cpu

ROUTES = {"/score": None, "/v2/models/iris/infer": OIP_BODY}  # None: the case's own body


def measure(case: str, pairs: int, duration: int, connections: int) -> list[dict[str, float]]:
    """Per pair: req/s and CPU µs per request of each route, the order alternating."""
    port = free_port()
    spec = case_spec(case, port, threads=4)
    runs = []
    with serving(spec, port, f"oip_ratio-{case}") as proc:
        for pair in range(pairs):
            routes = list(ROUTES) if pair % 2 == 0 else list(ROUTES)[::-1]
            run = {}
            for path in routes:
                route = dict(spec, path=path, body=ROUTES[path] or spec["body"])
                result = wrk_with_cpu(port, route, proc, duration, connections, 2, warm_up_s=1)
                if result["non2xx"] or result["socket_errors"]:
                    raise RuntimeError(f"{path}: {result['non2xx']} non-2xx answers "
                                       f"{result['socket_errors']}")
                run[path] = {"rps": result["rps"], "cpu_us": result["cpu_us"]}
            runs.append(run)
    return runs


def report(name: str, runs: list[dict]) -> None:
    score, v2 = "/score", "/v2/models/iris/infer"
    throughput = [run[v2]["rps"] / run[score]["rps"] for run in runs]
    cpu = [run[v2]["cpu_us"] / run[score]["cpu_us"] for run in runs]
    print(f"{name}: /v2 / /score throughput x{statistics.median(throughput):.2f} "
          f"(pairs {min(throughput):.2f}..{max(throughput):.2f}; target >= 0.90), CPU per "
          f"request x{statistics.median(cpu):.2f}; /score "
          f"{statistics.median(run[score]['rps'] for run in runs):.0f} req/s "
          f"{statistics.median(run[score]['cpu_us'] for run in runs):.0f} µs, /v2 "
          f"{statistics.median(run[v2]['rps'] for run in runs):.0f} req/s "
          f"{statistics.median(run[v2]['cpu_us'] for run in runs):.0f} µs (medians of "
          f"{len(runs)} pairs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="alternating pairs of runs (8)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--baseline", type=Path, help="also measure this checkout's runtime")
    args = parser.parse_args()
    prepare_work()
    cases = {"this checkout": "ours"}
    if args.baseline is not None:
        BASELINES["base"] = args.baseline.resolve()
        cases[f"baseline {args.baseline}"] = "ours@base"
    for name, case in cases.items():
        report(name, measure(case, args.pairs, args.duration, args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
