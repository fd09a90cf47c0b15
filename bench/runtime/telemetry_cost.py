"""Per-request CPU of telemetry, in process: two scoring apps of the bench's "ours" driver,
one with telemetry on (exporting to a receiver in another process) and one off, called
alternately, the calling thread's CPU measured (``time.thread_time``), so the machine's
drift between rounds cancels out and no server or client shares the measure.

    .venv/bin/python bench/runtime/telemetry_cost.py [--rounds 20] [--calls 500]

Run ``bench/bench_runtime.py`` once first: it writes the driver, model and key file under
bench/.venvs/work. Prints the median of the rounds' differences (on − off) for telemetry
as it ships, and with the request span dropped before it is encoded or queued (what the
rest of telemetry costs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".venvs" / "work"
BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]}).encode()
RECEIVER = ("import sys, time; sys.path.insert(0, sys.argv[1]); "
            "from bench.runtime.otlp_receiver import OtlpReceiver; "
            "print(OtlpReceiver(decode=False).start().url, flush=True); time.sleep(3600)")


def call(app: Any) -> None:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/score", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(BODY)), "wsgi.input": io.BytesIO(BODY),
               "HTTP_AUTHORIZATION": "Bearer bench-primary-key", "SERVER_NAME": "bench", "SERVER_PORT": "1",
               "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1"}
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    if not statuses[0].startswith("200"):
        raise SystemExit(f"the app answered {statuses[0]}")


def cpu_per_call(app: Any, calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        call(app)
    return (time.thread_time() - started) / calls * 1e6


def difference(on: Any, off: Any, rounds: int, calls: int) -> float:
    """Median over the rounds of CPU µs per call on − off (each round alternates which goes first)."""
    differences = []
    for number in range(rounds):
        pair: dict[str, float] = {}
        for name, app in ((("on", on), ("off", off)) if number % 2 == 0 else (("off", off), ("on", on))):
            pair[name] = cpu_per_call(app, calls)
        differences.append(pair["on"] - pair["off"])
    return statistics.median(differences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=500)
    arguments = parser.parse_args()
    if not (WORK / "ours" / "score.py").exists():
        raise SystemExit("run bench/bench_runtime.py once first (it writes bench/.venvs/work)")
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        url = receiver.stdout.readline().strip()  # type: ignore[union-attr]
        os.chdir(WORK / "ours")
        sys.path.insert(0, str(ROOT))
        os.environ.update(MOMA_KEYS_FILE=str(WORK / "keys"), LOG_LEVEL="warning")
        from runtime.app import create_app

        off = create_app()
        on = create_app({"AML_APP_INSIGHTS_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": url,
                         "MOMA_SERVICE_NAME": "bench", "MOMA_SERVICE_ID": "bench"})
        for app in (off, on):
            for _ in range(300):
                call(app)
        gate = on.wsgi_app
        print(f"telemetry on - off, CPU µs per request (median of {arguments.rounds} rounds of "
              f"{arguments.calls} calls each way):")
        print(f"  as it ships                           {difference(on, off, arguments.rounds, arguments.calls):7.1f}")
        queue: Callable[[Any], None] = gate.tracer.put
        gate.tracer.put = lambda span: None
        print(f"  request span dropped before encoding  {difference(on, off, arguments.rounds, arguments.calls):7.1f}")
        gate.tracer.put = queue
    finally:
        receiver.kill()


if __name__ == "__main__":
    main()
