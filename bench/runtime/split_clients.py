"""Clients that write a request's head and body apart (http.client, and so requests):
throughput, latency, how many requests the workers answer inline, and server CPU per
request, for this checkout's runtime against another's (``--baseline DIR``, e.g. a
``git worktree add DIR <commit>``) and against this one with the inline path off.

    .venv/bin/python bench/runtime/split_clients.py --baseline DIR [--rounds 3] [--hogs 0]

8 http.client threads with keep-alive connections against 2 workers running the tests'
``threads.py`` driver (it answers which thread ran it), variants interleaved per round,
medians printed. ``--hogs N`` spins N busy processes meanwhile (CPU contention).
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


def measure(code: Path, inline: bool, seconds: float, clients: int, work: Path) -> dict:
    port = _free_port()
    app = work / "app"
    app.mkdir(exist_ok=True)
    (app / "score.py").write_bytes(DRIVER.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(code), "PORT": str(port), "MOMA_BIND": "127.0.0.1",
           "WORKERS": "2", "MOMA_STATE_DIR": str(work), "ACCESS_LOG": "false",
           "INLINE_BUDGET_MS": "" if inline else "0"}
    seam = (code / "runtime" / "server" / "gunicorn_conf.py").exists()  # else a baseline from before it
    config = "python:runtime.server.gunicorn_conf" if seam else "python:runtime.gunicorn_conf"
    server = subprocess.Popen(
        [str(GUNICORN), "--config", config, "runtime.wsgi:app"],
        cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--hogs", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args()
    variants = {"this": (ROOT, True), "this, pool only": (ROOT, False)}
    if options.baseline:
        variants["baseline"] = (options.baseline.resolve(), True)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(options.hogs)]
    results: dict[str, list[dict]] = {name: [] for name in variants}
    try:
        with tempfile.TemporaryDirectory() as work:
            for _ in range(options.rounds):
                for name, (code, inline) in variants.items():
                    results[name].append(
                        measure(code, inline, options.seconds, options.clients, Path(work)))
    finally:
        for hog in hogs:
            hog.kill()
    print(f"{options.clients} http.client threads, 2 workers, {options.hogs} busy processes,"
          f" medians of {options.rounds} rounds")
    print(f"{'variant':16} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'inline %':>9}"
          f" {'server CPU us/req':>18}")
    for name, rounds in results.items():
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(f"{name:16} {median['req/s']:8.0f} {median['p50 ms']:7.2f}"
              f" {median['p99 ms']:7.2f} {median['inline %']:9.1f}"
              f" {median['server CPU us/req']:18.0f}")


if __name__ == "__main__":
    main()
