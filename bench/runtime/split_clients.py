"""Clients that write a request's headers and body apart (http.client, requests): how
many requests the worker answers inline, and its CPU per request, with the request's
rest awaited (runtime/workers.py) and without.

    .venv/bin/python bench/runtime/split_clients.py [--hogs 2] [--rounds 3]

The worker peeks at a request before answering it inline; a body that has not arrived
yet sent the request to a pool thread before. On an idle machine the body is nearly
always there by then; when the cores are busy (``--hogs N`` spins N processes) it often
is not. 8 http.client threads with keep-alive connections against 2 workers running
the tests' ``threads.py`` driver (it answers which thread ran it).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
DRIVER = ROOT / "tests" / "runtime" / "fixtures" / "threads.py"
sys.path.insert(0, str(ROOT))

from runtime import workers  # noqa: E402


class NoAwait(workers.ScoringWorker):
    """The worker as it was: a request whose rest is not here yet goes to the pool."""

    def _dispatch(self, conn, may_wait):  # type: ignore[no-untyped-def]
        super()._dispatch(conn, False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load(port: int, seconds: float, clients: int) -> tuple[collections.Counter, list[float]]:
    body = json.dumps({"sleep": 0}).encode()
    counts: collections.Counter = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: collections.Counter = collections.Counter()
        took: list[float] = []
        while (started := time.monotonic()) < stop:
            conn.request("POST", "/score", body, {"Content-Type": "application/json"})
            thread = json.loads(conn.getresponse().read())["thread"]
            took.append(time.monotonic() - started)
            mine["inline" if thread == "MainThread" else "pool"] += 1
        conn.close()
        with lock:
            counts.update(mine)
            latencies.extend(took)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts, sorted(latencies)


def _cpu_seconds(pid: int) -> float:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    total = 0
    for each in [pid, *map(int, children.stdout.split())]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(variant: str, seconds: float, clients: int, work: Path) -> dict:
    port = _free_port()
    app = work / "app"
    app.mkdir(exist_ok=True)
    (app / "score.py").write_bytes(DRIVER.read_bytes())
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench' / 'runtime'}",
           "PORT": str(port), "MOMA_BIND": "127.0.0.1", "WORKERS": "2",
           "MOMA_STATE_DIR": str(work), "ACCESS_LOG": "false",
           "INLINE_BUDGET_MS": "0" if variant == "pool" else ""}
    args = [str(GUNICORN), "--config", "python:runtime.gunicorn_conf"]
    if variant == "no-await":
        args += ["--worker-class", "split_clients.NoAwait"]
    server = subprocess.Popen([*args, "runtime.wsgi:app"], cwd=app, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        _wait_ready(port)
        _load(port, 1.0, clients)  # warm: the workers' fast streaks
        before = _cpu_seconds(server.pid)
        counts, latencies = _load(port, seconds, clients)
        cpu = _cpu_seconds(server.pid) - before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    total = counts["inline"] + counts["pool"]
    return {"req/s": total / seconds, "inline %": 100 * counts["inline"] / total,
            "server CPU us/req": 1e6 * cpu / total,
            "p50 ms": 1e3 * latencies[len(latencies) // 2],
            "p99 ms": 1e3 * latencies[int(len(latencies) * 0.99)]}


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the server on port {port} did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hogs", type=int, default=2, help="busy processes meanwhile")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(options.hogs)]
    results: dict[str, list[dict]] = {"await": [], "no-await": [], "pool": []}
    try:
        with tempfile.TemporaryDirectory() as work:
            for _ in range(options.rounds):
                for variant in results:
                    results[variant].append(
                        measure(variant, options.seconds, options.clients, Path(work)))
    finally:
        for hog in hogs:
            hog.kill()
    print(f"{options.clients} http.client threads, 2 workers, {options.hogs} busy processes,"
          f" medians of {options.rounds} rounds")
    print(f"{'variant':10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'inline %':>9}"
          f" {'server CPU us/req':>18}")
    for variant, rounds in results.items():
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(f"{variant:10} {median['req/s']:8.0f} {median['p50 ms']:7.2f}"
              f" {median['p99 ms']:7.2f} {median['inline %']:9.1f}"
              f" {median['server CPU us/req']:18.0f}")


if __name__ == "__main__":
    main()
