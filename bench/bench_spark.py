"""`make bench-spark`: the SparkPython runtime on the Spark iris example.

Trains the example pipeline on the host (pyspark), then measures: the cold image build
(fresh wheelhouse, no layer cache), container start to ready (2 CPUs, 2 GiB, read-only
root and a tmpfs /tmp, as the local engine runs services), the first request after
ready, one-row latencies from one keep-alive client (p50/p99), and req/s with p99 under
wrk at 1 and 4 connections. Targets (issue 8): first request after ready < 1 s; p99 for
one row < 100 ms.

    python bench/bench_spark.py [--duration 10] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_runtime import parse_wrk  # noqa: E402
from builder.build import Builder, BuildOptions  # noqa: E402
from builder.config import BuilderConfig  # noqa: E402
from builder.manifest import load_manifest  # noqa: E402

EXAMPLE = ROOT / "examples" / "spark-iris"
LABEL_KEY, LABEL_VALUE = "moma.bench", uuid.uuid4().hex[:8]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (10)")
    parser.add_argument("--requests", type=int, default=300, help="sequential one-row requests (300)")
    arguments = parser.parse_args()
    client = docker.from_env()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="moma-bench-spark-") as work_dir:
        work = Path(work_dir)
        try:
            project = make_project(work / "spark-iris", results)
            reference = cold_build(project, work / "home", results)
            measure_service(client, reference, arguments, results)
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


def measure_service(client, reference: str, arguments: argparse.Namespace, results: dict) -> None:
    started = time.monotonic()
    container = client.containers.run(
        reference, detach=True, labels={LABEL_KEY: LABEL_VALUE}, ports={"5001/tcp": ("127.0.0.1", None)},
        nano_cpus=2_000_000_000, mem_limit="2g", read_only=True, tmpfs={"/tmp": "rw,size=256m"},
        environment={"ACCESS_LOG": "false"})
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"])
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() - started > 300:
            raise SystemExit(f"not ready after 300 s:\n{container.logs().decode(errors='replace')[-4000:]}")
        time.sleep(0.05)
    results["start_to_ready_s"] = time.monotonic() - started
    body = {"input_df": [ROW]}
    first = time.perf_counter()
    answer = requests.post(url + "/score", json=body, timeout=30)
    results["first_request_ms"] = (time.perf_counter() - first) * 1000
    answer.raise_for_status()

    with requests.Session() as session:
        latencies = []
        for _ in range(arguments.requests):
            sent = time.perf_counter()
            session.post(url + "/score", json=body, timeout=30).raise_for_status()
            latencies.append((time.perf_counter() - sent) * 1000)
    latencies.sort()
    results["sequential"] = {"n": len(latencies), "p50_ms": statistics.median(latencies),
                             "p99_ms": latencies[int(len(latencies) * 0.99) - 1]}
    for connections in (1, 4):
        results[f"wrk_c{connections}"] = run_wrk(port, body, arguments.duration, connections)


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
    sequential = results.get("sequential") or {}
    verdicts = {
        "first request after ready < 1 s": results.get("first_request_ms", 1e9) < 1000,
        "p99 one row < 100 ms (sequential)": sequential.get("p99_ms", 1e9) < 100,
    }
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")


if __name__ == "__main__":
    raise SystemExit(main())
