"""Where one SparkPython one-row request spends its time, in this process.

Builds the runtime's session (``runtime.spark``), loads the Spark iris example's driver
and pipeline (trained on the fly unless ``--project`` holds one), then times N one-row
requests split in their three parts: the rows → DataFrame (``SparkInput``), the driver's
``run()`` (``PipelineModel.transform`` + ``select``), and the answer (``to_plain``, the
collect). It counts the py4j round trips of each part, times the JVM methods called and
the analyzer's and optimizer's rules (``RuleExecutor``) and, with ``--cprofile``, prints
the Python functions that took the most time.

``--runtime DIR`` imports the runtime of another checkout (the numbers before a change).

    python bench/profile_spark.py [--requests 300] [--project DIR] [--runtime DIR] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pstats
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "spark-iris"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


class Py4jCalls:
    """Counts the commands py4j sends to the JVM (pinned-thread and classic gateways)."""

    def __init__(self) -> None:
        from py4j import clientserver, java_gateway

        self.count = 0
        self.spent: dict[str, list[float]] = {}  # JVM method -> seconds of each call
        for connection in (clientserver.ClientServerConnection, java_gateway.GatewayConnection):
            original = connection.send_command

            def counted(this: Any, command: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.count += 1
                before = time.perf_counter()
                try:
                    return _original(this, command, *args, **kwargs)
                finally:
                    lines = command.split("\n")
                    name = lines[2] if lines[0] == "c" else lines[0] + (lines[1] if len(lines) > 1 else "")
                    self.spent.setdefault(name, []).append(time.perf_counter() - before)
            connection.send_command = counted  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--project", type=Path, help="a directory holding iris_pipeline/ (default: train one)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--runtime", type=Path, help="the checkout whose runtime/ to import (default: this one)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting on top of the runtime's (repeatable)")
    parser.add_argument("--cprofile", action="store_true")
    arguments = parser.parse_args()
    if arguments.conf:
        os.environ["PYSPARK_SUBMIT_ARGS"] = shlex.join(
            [part for setting in arguments.conf for part in ("--conf", setting)] + ["pyspark-shell"])
    if arguments.runtime is not None:
        sys.path.insert(0, str(arguments.runtime.resolve()))
    with tempfile.TemporaryDirectory(prefix="moma-profile-spark-") as work:
        project = arguments.project or train(Path(work))
        return profile(project, arguments)


def train(work: Path) -> Path:
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(work)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return work


def profile(project: Path, arguments: argparse.Namespace) -> int:
    from runtime import spark, spark_encoding
    from runtime.schema import load_schema

    print(f"runtime: {Path(spark.__file__).parent}", file=sys.stderr)
    calls = Py4jCalls()
    os.chdir(project)  # before the JVM starts: the driver loads the model by a relative path
    runtime = spark.SparkRuntime.start({**os.environ, "SPARK_MASTER": arguments.master,
                                        "SPARK_DRIVER_MEMORY": "1024m", "SPARK_WARMUP": "off"})
    session = runtime.session
    schema = load_schema(str(EXAMPLE / "service_schema.json"), spark=runtime.input_converter)
    assert schema is not None
    [spec] = schema.inputs
    convert = runtime.input_converter(spec)
    driver = _import(EXAMPLE / "score.py", runtime.namespace)
    driver.init()
    parts: dict[str, Callable[[Any], Any]] = {
        "rows -> DataFrame": convert,
        "run(): transform + select": driver.run,
        "answer: collect + to_plain": spark_encoding.to_plain,
    }
    for _ in range(50):  # the runtime's warm-up, roughly
        spark_encoding.to_plain(driver.run(convert([ROW])))
    rules = session._jvm.org.apache.spark.sql.catalyst.rules.RuleExecutor
    rules.resetMetrics()
    calls.spent.clear()
    times: dict[str, list[float]] = {name: [] for name in (*parts, "total")}
    counts: dict[str, int] = {}
    profiler = cProfile.Profile() if arguments.cprofile else None
    for _ in range(arguments.requests):
        value: Any = [ROW]
        begun = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for name, part in parts.items():
            before, sent = time.perf_counter(), calls.count
            value = part(value)
            times[name].append((time.perf_counter() - before) * 1000)
            counts[name] = counts.get(name, 0) + calls.count - sent
        if profiler is not None:
            profiler.disable()
        times["total"].append((time.perf_counter() - begun) * 1000)
    counts["total"] = sum(counts.values())
    report = {name: {"p50_ms": round(statistics.median(values), 2),
                     "p99_ms": round(sorted(values)[int(len(values) * 0.99) - 1], 2),
                     "py4j_calls": round(counts[name] / arguments.requests, 1)}
              for name, values in times.items()}
    system = session._jvm.java.lang.System
    round_trips = []
    for _ in range(1000):
        before = time.perf_counter()
        system.nanoTime()
        round_trips.append((time.perf_counter() - before) * 1e6)
    print(json.dumps({"answer": value, "parts": report,
                      "py4j_round_trip_us": {"p50": round(statistics.median(round_trips), 1),
                                             "p99": round(sorted(round_trips)[989], 1)}}, indent=2))
    print(f"Catalyst (analyzer and optimizer rules): "
          f"{rules.getCurrentMetrics().time() / 1e6 / arguments.requests:.2f} ms/request; "
          f"the rules that took longest:", file=sys.stderr)
    print("\n".join(rules.dumpTimeSpent().splitlines()[:14]), file=sys.stderr)
    slowest = sorted(calls.spent.items(), key=lambda item: -sum(item[1]))[:25]
    for name, spent in slowest:
        per_request = sum(spent) * 1000 / arguments.requests
        print(f"{per_request:8.2f} ms/request  {len(spent) / arguments.requests:6.1f} calls  "
              f"{name}", file=sys.stderr)
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    session.stop()
    return 0


def _import(path: Path, namespace: dict[str, Any]) -> Any:
    spec = importlib.util.spec_from_file_location("score", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    vars(module).update(namespace)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    raise SystemExit(main())
