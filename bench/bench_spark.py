"""`make bench-spark`: the SparkPython runtime on the Spark iris example.

Trains the example pipeline on the host (pyspark), then measures: the cold image build
(fresh wheelhouse, no layer cache), container start to ready (2 CPUs, 2 GiB, read-only
root and a tmpfs /tmp, as the local engine runs services), the first request after
ready, one-row latencies from one keep-alive client (p50/p99), and req/s with p99 under
wrk at 1 and 4 connections. Targets: first request after ready < 1 s (issue 8); p99 for
one row <= 50 ms sequential (issue 19; < 100 ms in issue 8).

``--baseline DIR`` builds the same project a second time with another checkout's builder
and runtime (``git worktree add DIR <commit>``; built in a subprocess with DIR first on
``sys.path``), runs both containers side by side and measures them in the same sitting:
the sequential requests in interleaved rounds, then wrk case after case. The result
holds one entry per case (``ours``, ``base``) and a before/after table.

    python bench/bench_spark.py [--duration 10] [--requests 300] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import requests
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_runtime import parse_wrk  # noqa: E402
from builder.build import Builder, BuildOptions  # noqa: E402
from builder.config import BuilderConfig  # noqa: E402
from builder.manifest import load_manifest  # noqa: E402

EXAMPLE = ROOT / "examples" / "spark-iris"
LABEL_KEY, LABEL_VALUE = "moma.bench", uuid.uuid4().hex[:8]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ROUNDS = 5  # --baseline: the sequential requests of each case in this many interleaved rounds
# Run with the baseline checkout first on sys.path: its builder, templates and runtime.
BASELINE_BUILD = """
import sys
from pathlib import Path
from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.manifest import load_manifest
manifest, home, key, value = sys.argv[1:]
builder = Builder(BuilderConfig.from_env({"MOMA_HOME": home}))
options = BuildOptions(name="bench-spark-iris", tag="baseline", labels={key: value})
print(builder.build(load_manifest(Path(manifest)), options).reference)
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (10)")
    parser.add_argument("--requests", type=int, default=300, help="sequential one-row requests (300)")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="another checkout to compare with")
    arguments = parser.parse_args()
    client = docker.from_env()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="moma-bench-spark-") as work_dir:
        work = Path(work_dir)
        try:
            project = make_project(work / "spark-iris", results)
            references = {"ours": cold_build(project, work / "home", results)}
            if arguments.baseline is not None:
                references["base"] = baseline_build(arguments.baseline, project, work / "home")
            measure_services(client, references, arguments, results)
        finally:
            for container in client.containers.list(all=True, filters={"label": f"{LABEL_KEY}={LABEL_VALUE}"}):
                container.remove(force=True)
            for image in client.images.list(filters={"label": f"{LABEL_KEY}={LABEL_VALUE}"}):
                client.images.remove(image.id, force=True)
    report(results)
    return 0


def make_project(directory: Path, results: dict) -> Path:
    directory.mkdir(parents=True)
    for name in ("score.py", "service_schema.json", "manifest.yml"):
        shutil.copy(EXAMPLE / name, directory / name)
    started = time.monotonic()
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(directory)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results["train_s"] = time.monotonic() - started
    return directory


def cold_build(project: Path, home: Path, results: dict) -> str:
    log("cold build (fresh wheelhouse, no layer cache) ...")
    builder = Builder(BuilderConfig.from_env({"MOMA_HOME": str(home)}))
    options = BuildOptions(name="bench-spark-iris", tag="1", labels={LABEL_KEY: LABEL_VALUE}, no_cache=True)
    started = time.monotonic()
    result = builder.build(load_manifest(project / "manifest.yml"), options)
    results["cold_build_s"] = time.monotonic() - started
    image = docker.from_env().images.get(result.reference)
    results["image_mb"] = image.attrs["Size"] / 1e6
    results["spark_version"] = image.labels.get("moma.spark-version")
    return result.reference


def baseline_build(checkout: Path, project: Path, home: Path) -> str:
    log(f"baseline build with {checkout} ...")
    done = subprocess.run([sys.executable, "-c", BASELINE_BUILD, str(project / "manifest.yml"), str(home),
                           LABEL_KEY, LABEL_VALUE], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the baseline build failed:\n{done.stderr[-4000:]}")
    return done.stdout.strip().splitlines()[-1]


def measure_services(client, references: dict[str, str], arguments: argparse.Namespace, results: dict) -> None:
    """Both containers up, then the sequential requests in interleaved rounds, then wrk."""
    cases = {case: start_service(client, reference) for case, reference in references.items()}
    for case, service in cases.items():
        results[case] = service.results
    body = {"input_df": [ROW]}
    rounds = ROUNDS if len(cases) > 1 else 1
    latencies: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(rounds):
        for case, service in cases.items():
            latencies[case] += service.sequential(body, arguments.requests // rounds)
    for case, service in cases.items():
        values = sorted(latencies[case])
        service.results["sequential"] = {"n": len(values), "p50_ms": statistics.median(values),
                                         "p99_ms": values[int(len(values) * 0.99) - 1]}
        for connections in (1, 4):
            service.results[f"wrk_c{connections}"] = run_wrk(service.port, body, arguments.duration, connections)


class Service:
    def __init__(self, container: Container, port: int) -> None:
        self.container = container
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.results: dict[str, object] = {}

    def sequential(self, body: dict, count: int) -> list[float]:
        latencies = []
        with requests.Session() as session:
            for _ in range(count):
                sent = time.perf_counter()
                session.post(self.url + "/score", json=body, timeout=30).raise_for_status()
                latencies.append((time.perf_counter() - sent) * 1000)
        return latencies


def start_service(client, reference: str) -> Service:
    """Run as the local engine runs services: 2 CPUs, 2 GiB, read-only root, tmpfs /tmp
    (noexec); until /readyz answers 200, then the first request."""
    started = time.monotonic()
    container = client.containers.run(
        reference, detach=True, labels={LABEL_KEY: LABEL_VALUE}, ports={"5001/tcp": ("127.0.0.1", None)},
        nano_cpus=2_000_000_000, mem_limit="2g", read_only=True, tmpfs={"/tmp": "rw,size=256m"},
        environment={"ACCESS_LOG": "false"})
    container.reload()
    service = Service(container, int(container.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"]))
    while True:
        try:
            if requests.get(service.url + "/readyz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() - started > 300:
            raise SystemExit(f"not ready after 300 s:\n{container.logs().decode(errors='replace')[-4000:]}")
        time.sleep(0.05)
    service.results["start_to_ready_s"] = time.monotonic() - started
    first = time.perf_counter()
    answer = requests.post(service.url + "/score", json={"input_df": [ROW]}, timeout=30)
    service.results["first_request_ms"] = (time.perf_counter() - first) * 1000
    answer.raise_for_status()
    return service


def run_wrk(port: int, body: dict, duration: int, connections: int) -> dict:
    if not shutil.which("wrk"):
        return {"skipped": "wrk is not installed"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name,
                          f"http://127.0.0.1:{port}/score"], capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    return parse_wrk(out)


def report(results: dict) -> None:
    print(json.dumps(results, indent=2, default=str))
    cases = [case for case in ("base", "ours") if case in results]
    if len(cases) > 1:
        print(table(results, cases))
    ours = results.get("ours") or {}
    sequential = ours.get("sequential") or {}
    verdicts = {
        "first request after ready < 1 s": ours.get("first_request_ms", 1e9) < 1000,
        "p99 one row <= 50 ms (sequential)": sequential.get("p99_ms", 1e9) <= 50,
    }
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")


def table(results: dict, cases: list[str]) -> str:
    """The before/after table (Markdown) of one run."""
    rows = [("one row, sequential: p50 ms", lambda r: r["sequential"]["p50_ms"]),
            ("one row, sequential: p99 ms", lambda r: r["sequential"]["p99_ms"]),
            ("first request after ready, ms", lambda r: r["first_request_ms"]),
            ("start to ready, s", lambda r: r["start_to_ready_s"]),
            ("wrk 1 connection: req/s", lambda r: r["wrk_c1"].get("rps")),
            ("wrk 1 connection: p99 ms", lambda r: r["wrk_c1"].get("p99")),
            ("wrk 4 connections: req/s", lambda r: r["wrk_c4"].get("rps")),
            ("wrk 4 connections: p99 ms", lambda r: r["wrk_c4"].get("p99"))]
    lines = ["| measure | " + " | ".join(cases) + " | ratio |", "|---|" + "---:|" * (len(cases) + 1)]
    for name, value in rows:
        values = [value(results[case]) for case in cases]
        ratio = f"×{values[-1] / values[0]:.2f}" if all(isinstance(v, (int, float)) and v for v in values) else ""
        lines.append(f"| {name} | " + " | ".join(_number(v) for v in values) + f" | {ratio} |")
    return "\n".join(lines)


def _number(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
