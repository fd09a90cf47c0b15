"""Scoring runtime benchmark: our runtime against its peers, one machine, one run.

    .venv/bin/python bench/bench_runtime.py [--duration 10] [--connections 16] [--rounds 1]

Every case serves the same one-row iris scikit-learn model (LogisticRegression, trained
here from the dataset scikit-learn ships) with 2 workers on 127.0.0.1 and is loaded
with ``wrk``. Cases:

  ours          our runtime (gunicorn_conf defaults: runtime.server.gthread.ScoringWorker,
                THREADS=4), keys ON, admission ON
                (MAX_CONCURRENT_REQUESTS=32, MAX_QUEUE=64), metrics ON, JSON access log ON;
                raw-body 2017 driver
  ours-gthread  the same on gunicorn's stock gthread worker instead of ours
                (runtime/server/gthread.py): what balancing, the inline path and one write
                per response are worth
  ours-sync     the same with WORKER_CLASS=sync (gunicorn sync workers)
  ours-schema   the same with a pandas service_schema.json (validation + DataFrame)
  ours-dc       "ours" with model data collection on: automatic capture of every input
                and prediction to the local sink (CSV files under bench/.venvs/work/dc)
  ours-otel     "ours" with telemetry on (appInsightsEnabled): a span per request, metrics
                and logs exported over OTLP/HTTP to a receiver in this process (it counts,
                it does not decode), OpenTelemetry's default batching
  ours-v2       "ours" called over the Open Inference Protocol: POST /v2/models/iris/infer,
                the row as an FP64 tensor "data" of shape [1, 4], same driver
  driver        no server: the driver's init(), then its run() called in a loop on one
                thread with the request's body, for the duration (the floor: CPU per
                call of the driver alone, against which the runtime's overhead is told)
  bare-gthread  bare Flask + gunicorn gthread (same threads as ours) calling predict
  bare-sync     bare Flask + gunicorn sync workers calling predict
  azureml       azureml-inference-server-http (azmlinfsrv --worker_count 2), same driver
  mlflow        mlflow models serve --env-manager local -w 2
  bentoml       bentoml serve, @bentoml.service(workers=2)
  mlserver      MLServer's sklearn runtime (mlserver start, 2 parallel workers), the same
                OIP request as ours-v2

Peers are installed on first run into virtualenvs under bench/.venvs/ (git-ignored by
the .gitignore written there) with pip from PyPI; a peer that fails to install or start
is reported and skipped. With ``--rounds N`` every case runs N times, interleaved (each round starting one
case later, so that no case always runs first), and
medians are printed. ``--baseline [NAME=]DIR`` (repeatable) runs each of our cases again
with the runtime of another checkout (``git worktree add DIR <commit>``), as
``<case>@NAME`` (``@base`` without a name), in the same rounds: before/after figures
from one sitting. ``--variant NAME:ENV=VALUE[,...]`` adds a case ``ours:NAME``, "ours"
with that environment (``--variant no-inline:INLINE_BUDGET_MS=0``: what the inline path
is worth). Besides wrk's req/s and latency, each case reports the CPU time
its server processes used per request (utime+stime of the whole process tree from
/proc): throughput moves with whatever else the machine runs, CPU per request much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.runtime.otlp_receiver import OtlpReceiver  # noqa: E402 - the path is set just above

APPS = Path(__file__).resolve().parent / "runtime" / "apps"
VENVS = ROOT / "bench" / ".venvs"
WORK = VENVS / "work"
PY = ROOT / ".venv" / "bin" / "python"
BIN = ROOT / ".venv" / "bin"
KEY = "bench-primary-key"
ROW = [5.1, 3.5, 1.4, 0.2]
PEERS = {  # venv name -> pip requirements (same scikit-learn/numpy as ours so the pickle loads)
    "azureml": ["azureml-inference-server-http", "scikit-learn==1.9.1", "joblib==1.6.0"],
    "mlflow": ["mlflow", "scikit-learn==1.9.1", "joblib==1.6.0"],
    "bentoml": ["bentoml", "scikit-learn==1.9.1", "joblib==1.6.0"],
    # uvloop 0.22+ raises in the asyncio.get_event_loop() MLServer 1.7's workers call
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0",
                 "scikit-learn==1.9.1", "joblib==1.6.0"],
}
OURS_ENV: list[str] = []
BASELINES: dict[str, Path] = {}  # --baseline: other checkouts whose runtime <case>@NAME runs
VARIANTS: dict[str, dict[str, str]] = {}  # --variant: ours:NAME -> its extra environment
CASES = ["driver", "ours", "ours-v2", "ours-gthread", "ours-sync", "ours-schema", "ours-dc", "ours-otel",
         "bare-gthread", "bare-sync", "azureml", "mlflow", "bentoml", "mlserver"]
OURS = ("ours", "ours-v2", "ours-gthread", "ours-sync", "ours-schema", "ours-dc", "ours-otel")
OIP_BODY = json.dumps({"inputs": [{"name": "data", "shape": [1, 4], "datatype": "FP64",
                                   "data": ROW}]})


def gunicorn_config(code: Path) -> str:
    """The gunicorn config module of a checkout's runtime (``--baseline`` may name one
    from before the server seam, when it was ``runtime/gunicorn_conf.py``)."""
    seam = code / "runtime" / "server" / "gunicorn_conf.py"
    return "python:runtime.server.gunicorn_conf" if seam.exists() else "python:runtime.gunicorn_conf"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- setup -------------------------------------------------------------------------------------
def ensure_venv(name: str) -> str | None:
    """Create bench/.venvs/<name> on first use. Returns None when ready, else why not."""
    VENVS.mkdir(parents=True, exist_ok=True)
    (VENVS / ".gitignore").write_text("*\n")
    venv = VENVS / name
    ready = venv / ".ready"
    if ready.exists() and ready.read_text().split() == PEERS[name]:
        return None
    log(f"setting up {name} in {venv} (first run only) ...")
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", *PEERS[name]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except subprocess.CalledProcessError as exc:
        return f"pip install failed: {(exc.stderr or '').strip()[-500:]}"
    ready.write_text(" ".join(PEERS[name]) + "\n")
    return None


def prepare_work() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    model = WORK / "model.pkl"
    if not model.exists():
        subprocess.run([str(PY), str(APPS / "train.py"), str(model)], check=True)
    for name, driver, schema in (("ours", "iris_score.py", None),
                                 ("ours-schema", "iris_schema_score.py", "iris_service_schema.json"),
                                 ("plain", "iris_score.py", None)):
        root = WORK / name
        root.mkdir(exist_ok=True)
        shutil.copy(model, root / "model.pkl")
        shutil.copy(APPS / driver, root / "score.py")
        if schema:
            shutil.copy(APPS / schema, root / "service_schema.json")
    (WORK / "ours" / "model_config_map.json").write_text(  # the OIP model is called iris
        json.dumps({"models": {"iris": {"id": "bench", "version": 1}}}))
    mlserver = WORK / "mlserver"
    mlserver.mkdir(exist_ok=True)
    shutil.copy(model, mlserver / "model.pkl")
    (mlserver / "model-settings.json").write_text(json.dumps({
        "name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.pkl"}}))
    shutil.copy(APPS / "bare_flask.py", WORK / "plain" / "bare_flask.py")
    shutil.copy(APPS / "bentoml_service.py", WORK / "plain" / "bentoml_service.py")
    (WORK / "keys").write_text(
        __import__("hashlib").sha256(KEY.encode()).hexdigest() + "\n" + "0" * 64 + "\n")


def mlflow_model() -> Path:
    target = WORK / "mlflow-model"
    if not target.exists():
        subprocess.run([str(VENVS / "mlflow" / "bin" / "python"), str(APPS / "mlflow_save.py"),
                        str(WORK / "model.pkl"), str(target)], check=True,
                       stdout=subprocess.DEVNULL)
    return target


# -- cases -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_spec(case: str, port: int, threads: int) -> dict:
    """argv, cwd, env, path, body and headers for one case."""
    case, _, baseline = case.partition("@")
    code = BASELINES[baseline] if baseline else ROOT
    variant = VARIANTS.get(case, {})
    case = "ours" if variant else case
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONUNBUFFERED="1")
    if case in PEERS:  # peers may spawn their own tools (mlflow runs `uvicorn`)
        env["PATH"] = f"{VENVS / case / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    body = json.dumps({"data": [ROW]})
    headers = {"Content-Type": "application/json"}
    plain = WORK / "plain"
    if case in OURS:
        env.update(PORT=str(port), MOMA_BIND="127.0.0.1", WORKERS="2", THREADS=str(threads),
                   MOMA_KEYS_FILE=str(WORK / "keys"), MAX_CONCURRENT_REQUESTS="32",
                   MAX_QUEUE="64", MAX_QUEUE_WAIT_MS="1000")
        headers["Authorization"] = f"Bearer {KEY}"
        if case == "ours-sync":
            env["WORKER_CLASS"] = "sync"
        if case == "ours-gthread":  # command-line settings override the config module's
            env["GUNICORN_CMD_ARGS"] = "--worker-class gthread"
        if case == "ours-dc":
            shutil.rmtree(WORK / "dc", ignore_errors=True)
            env.update(AML_MODEL_DC_STORAGE_ENABLED="true", AML_MODEL_DC_LOCAL_DIR=str(WORK / "dc"),
                       MOMA_SERVICE_NAME="bench")
        if case == "ours-otel":
            env.update(AML_APP_INSIGHTS_ENABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT=receiver().url,
                       MOMA_SERVICE_NAME="bench", MOMA_SERVICE_ID="bench")
        env.update(item.split("=", 1) for item in OURS_ENV)
        env.update(variant)
        if case == "ours-schema":
            body = json.dumps({"input_df": [dict(zip(
                ["sepal_length", "sepal_width", "petal_length", "petal_width"], ROW))]})
        argv = [str(BIN / "gunicorn"), "--config", gunicorn_config(code), "runtime.wsgi:app"]
        cwd = WORK / ("ours-schema" if case == "ours-schema" else "ours")
        if case == "ours-v2":
            return dict(argv=argv, cwd=cwd, env=env, path="/v2/models/iris/infer",
                        body=OIP_BODY, headers=headers)
        return dict(argv=argv, cwd=cwd, env=env, path="/score", body=body, headers=headers)
    if case == "bare-gthread":
        argv = [str(BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", str(threads),
                "-b", f"127.0.0.1:{port}", "--no-control-socket", "bare_flask:app"]
        return dict(argv=argv, cwd=plain, env=env, path="/score", body=body, headers=headers)
    if case == "bare-sync":
        argv = [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
                "--no-control-socket", "bare_flask:app"]
        return dict(argv=argv, cwd=plain, env=env, path="/score", body=body, headers=headers)
    if case == "azureml":
        argv = [str(VENVS / "azureml" / "bin" / "azmlinfsrv"), "--entry_script", "score.py",
                "--port", str(port), "--worker_count", "2"]
        return dict(argv=argv, cwd=WORK / "ours", env=env, path="/score", body=body,
                    headers=headers)
    if case == "mlflow":
        argv = [str(VENVS / "mlflow" / "bin" / "mlflow"), "models", "serve", "-m",
                str(mlflow_model()), "--env-manager", "local", "-h", "127.0.0.1",
                "-p", str(port), "-w", "2"]
        return dict(argv=argv, cwd=plain, env=env, path="/invocations",
                    body=json.dumps({"inputs": [ROW]}), headers=headers)
    if case == "bentoml":
        argv = [str(VENVS / "bentoml" / "bin" / "bentoml"), "serve", "bentoml_service:Iris",
                "--host", "127.0.0.1", "--port", str(port)]
        env.update(BENTOML_HOME=str(WORK / "bentoml-home"), BENTOML_DO_NOT_TRACK="True")
        return dict(argv=argv, cwd=plain, env=env, path="/score", body=body, headers=headers)
    if case == "mlserver":
        argv = [str(VENVS / "mlserver" / "bin" / "mlserver"), "start", str(WORK / "mlserver")]
        env.update(MLSERVER_HOST="127.0.0.1", MLSERVER_HTTP_PORT=str(port),
                   MLSERVER_GRPC_PORT=str(free_port()), MLSERVER_METRICS_PORT=str(free_port()),
                   MLSERVER_PARALLEL_WORKERS="2")
        return dict(argv=argv, cwd=WORK / "mlserver", env=env, path="/v2/models/iris/infer",
                    body=OIP_BODY, headers=headers)
    raise ValueError(case)


def request_once(port: int, spec: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{spec['path']}",
                                 data=spec["body"].encode(), headers=spec["headers"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(port: int, spec: dict, proc: subprocess.Popen, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            status, _ = request_once(port, spec)
            if status == 200:
                # every worker must be up: a few more successes in a row
                if all(request_once(port, spec)[0] == 200 for _ in range(20)):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"not ready within {limit:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def serving(spec: dict, port: int, log_name: str) -> Iterator[subprocess.Popen]:
    """A case's server, its output in ``WORK/logs/<log_name>.log``, every worker ready,
    stopped when the block ends."""
    logs = WORK / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / f"{log_name}.log", "w") as out:
        proc = subprocess.Popen(spec["argv"], cwd=spec["cwd"], env=spec["env"], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(port, spec, proc)
        yield proc
    finally:
        stop(proc)


def wrk_with_cpu(port: int, spec: dict, proc: subprocess.Popen, duration: int, connections: int,
                 wrk_threads: int, warm_up_s: int = 2) -> dict:
    """wrk's results after a warm-up, with the server's CPU µs per request (``cpu_us``)."""
    wrk(port, spec, warm_up_s, connections, wrk_threads)
    cpu_before = tree_cpu_seconds(proc.pid)
    result = wrk(port, spec, duration, connections, wrk_threads)
    result["cpu_us"] = (tree_cpu_seconds(proc.pid) - cpu_before) / result["requests"] * 1e6
    return result


def wrk(port: int, spec: dict, duration: int, connections: int, wrk_threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write('wrk.method = "POST"\n')
        fh.write(f"wrk.body = {json.dumps(spec['body'])}\n")
        for name, value in spec["headers"].items():
            fh.write(f'wrk.headers["{name}"] = "{value}"\n')
        script = fh.name
    try:
        out = subprocess.run(
            ["wrk", f"-t{wrk_threads}", f"-c{connections}", f"-d{duration}s", "--latency",
             "-s", script, f"http://127.0.0.1:{port}{spec['path']}"],
            check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script)
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$",
                                                    out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": lat.get("50"), "p90": lat.get("90"), "p99": lat.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "requests": total,
            "socket_errors": errors.group(0) if errors else ""}


def process_stats() -> dict[int, list[str]]:
    """Every process's /proc/<pid>/stat fields after its name (field 3 on), by pid."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    return stats


def process_tree(root: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, fields in (stats if stats is not None else process_stats()).items():
        children.setdefault(int(fields[1]), []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of a process and all its descendants (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = process_stats()
    return sum((int(stats[pid][11]) + int(stats[pid][12])) / ticks
               for pid in process_tree(root, stats) if pid in stats)


_RECEIVER: list[OtlpReceiver] = []


def receiver() -> OtlpReceiver:
    """The ours-otel case's collector: one for the whole run, counting what arrives."""
    if not _RECEIVER:
        _RECEIVER.append(OtlpReceiver(decode=False).start())
    return _RECEIVER[0]


def metric_totals(port: int, names: dict[str, str]) -> dict:
    """Sums of the /metrics samples whose line starts with each name (key: name)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Authorization": f"Bearer {KEY}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        text = resp.read().decode()
    totals = {key: 0.0 for key in names.values()}
    for name, key in names.items():
        for line in text.splitlines():
            if line.startswith(name):
                totals[key] += float(line.rsplit(" ", 1)[1])
    return totals


def telemetry_counters(port: int) -> dict:
    """The ours-otel case's spans exported and dropped (/metrics), once the last batch
    went (OTEL_BSP_SCHEDULE_DELAY), and the OTLP requests the receiver got so far."""
    time.sleep(6)
    totals = metric_totals(port, {'moma_telemetry_exported_total{signal="spans"}': "exported",
                                  'moma_telemetry_dropped_total{reason="queue_full",signal="spans"}':
                                      "queue_full",
                                  'moma_telemetry_dropped_total{reason="export_failed",signal="spans"}':
                                      "export_failed"})
    totals["receiver_requests"] = sum(receiver().requests.values())
    totals["receiver_by_path"] = dict(receiver().requests)
    return totals


def on_off(results: dict, case: str, p99: bool) -> str:
    """A feature's case against "ours": throughput (target >= 0.9), p99 (<= 1.1), CPU, each
    the median of the rounds' ratios (the two ran next to each other in every round, so
    the machine's drift between rounds cancels out)."""
    def ratio(key: str) -> float:
        return statistics.median(on[key] / off[key] for on, off in zip(results[case], results["ours"]))
    tail = f"p99 x{ratio('p99'):.2f} (target <= 1.10), " if p99 else ""
    return (f"throughput x{ratio('rps'):.2f} (target >= 0.90), {tail}"
            f"CPU per request x{ratio('cpu_us'):.2f} (medians of the rounds' ratios)")


def collection_counters(port: int) -> dict:
    """The ours-dc case's data collection totals from /metrics, once the last flush ran,
    and the rows found in its CSV files (headers excluded)."""
    time.sleep(3)  # a flush interval and a bit
    totals: dict = metric_totals(port, {"moma_datacollection_rows_collected_total": "collected",
                                        'moma_datacollection_rows_written_total{sink="local"}': "written",
                                        "moma_datacollection_rows_dropped_total": "dropped"})
    totals["in_files"] = sum(max(0, len(path.read_bytes().splitlines()) - 1)
                             for path in (WORK / "dc").rglob("data.csv"))
    return totals


DRIVER_LOOP = """
import json, sys, time
import score
score.init()
body, seconds = sys.argv[1], float(sys.argv[2])
for _ in range(200):
    score.run(body)
calls, cpu, ends = 0, time.process_time(), time.monotonic() + seconds
while time.monotonic() < ends:
    for _ in range(100):
        score.run(body)
    calls += 100
print(json.dumps({"calls": calls, "cpu_s": time.process_time() - cpu}))
"""


def run_driver(args: argparse.Namespace) -> dict:
    """The driver case: run() of the "ours" driver in a loop, no server."""
    done = subprocess.run([str(BIN / "python"), "-c", DRIVER_LOOP, json.dumps({"data": [ROW]}),
                           str(args.duration)], cwd=WORK / "ours", capture_output=True, text=True,
                          check=True, env=dict(os.environ, PYTHONPATH=str(WORK / "ours")))
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rps": counts["calls"] / args.duration, "p50": None, "p99": None, "non2xx": 0,
            "requests": counts["calls"], "socket_errors": "",
            "cpu_us": counts["cpu_s"] / counts["calls"] * 1e6}


def run_case(case: str, args: argparse.Namespace) -> dict:
    if case == "driver":
        return run_driver(args)
    port = free_port()
    spec = case_spec(case, port, args.threads)
    with serving(spec, port, case) as proc:
        status, body = request_once(port, spec)
        if status != 200 or b"0" not in body:
            raise RuntimeError(f"unexpected answer {status} {body[:200]!r}")
        result = wrk_with_cpu(port, spec, proc, args.duration, args.connections, args.wrk_threads)
        if case == "ours-dc":
            result["collection"] = collection_counters(port)
        if case == "ours-otel":
            result["telemetry"] = telemetry_counters(port)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per case (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--ours-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for our runtime's cases (repeatable)")
    parser.add_argument("--baseline", action="append", default=[], metavar="[NAME=]DIR",
                        help="also run our cases with the runtime of this checkout, as "
                             "<case>@NAME (NAME: base) (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:ENV=VALUE,...",
                        help="also run 'ours' with this environment, as ours:NAME (repeatable)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        log("wrk is not installed (apt-get install wrk)")
        return 2
    cases = [c for c in args.cases.split(",") if c]
    OURS_ENV.extend(args.ours_env)
    for variant in args.variant:
        name, _, settings = variant.partition(":")
        VARIANTS[f"ours:{name}"] = dict(item.split("=", 1) for item in settings.split(",") if item)
        cases.insert(cases.index("ours") + 1 if "ours" in cases else 0, f"ours:{name}")
    for baseline in args.baseline:
        name, _, directory = baseline.rpartition("=")
        if not (Path(directory) / "runtime" / "wsgi.py").is_file():
            log(f"{directory} holds no runtime/")
            return 2
        BASELINES[name or "base"] = Path(directory).resolve()
    cases = [name for c in cases
             for name in (c, *(f"{c}@{b}" for b in BASELINES
                               if c.startswith("ours") and c not in VARIANTS))]
    skipped: dict[str, str] = {}
    for peer in PEERS:
        if peer in cases:
            why = ensure_venv(peer)
            if why:
                skipped[peer] = why
    prepare_work()
    results: dict[str, list[dict]] = {c: [] for c in cases if c not in skipped}
    for round_no in range(args.rounds):
        order = list(results)
        shift = round_no % len(order) if order else 0
        for case in order[shift:] + order[:shift]:
            if case not in results:
                continue
            log(f"round {round_no + 1}/{args.rounds}: {case} ...")
            try:
                results[case].append(run_case(case, args))
            except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the rest
                skipped[case] = f"{type(exc).__name__}: {exc} (see {WORK / 'logs' / case}.log)"
                del results[case]
    summary = {case: {k: statistics.median(r[k] for r in runs) if runs[0][k] is not None else None
                      for k in ("rps", "p50", "p99", "non2xx", "cpu_us")}
               for case, runs in results.items() if runs}
    print(f"\n{'case':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}"
          f"{'server CPU us/req':>19}"
          f"   (median of {args.rounds} run(s), {args.duration} s, {args.connections} conns)")
    for case, s in summary.items():
        latency = "".join(f"{s[k]:>10.2f}" if s[k] is not None else f"{'-':>10}" for k in ("p50", "p99"))
        print(f"{case:<20}{s['rps']:>10.0f}{latency}{s['non2xx']:>10.0f}{s['cpu_us']:>19.0f}")
    if "driver" in summary and "ours" in summary:
        floor, ours = summary["driver"]["cpu_us"], summary["ours"]["cpu_us"]
        print(f"\nruntime overhead: ours {ours:.0f} - driver {floor:.0f} = {ours - floor:.0f} µs of CPU a "
              f"request, x{(ours - floor) / floor:.2f} the driver's own (target <= 1.00)")
    if "ours-dc" in summary and "ours" in summary:
        counts = results["ours-dc"][-1]["collection"]
        print(f"\ndata collection on / off: {on_off(results, 'ours-dc', p99=False)}; "
              f"last run: {counts['collected']:.0f} rows collected, {counts['written']:.0f} "
              f"written, {counts['dropped']:.0f} dropped, {counts['in_files']} in the files")
    if "ours-otel" in summary and "ours" in summary:
        counts = results["ours-otel"][-1]["telemetry"]
        print(f"\ntelemetry on / off: {on_off(results, 'ours-otel', p99=True)}; "
              f"last run: {counts['exported']:.0f} spans exported, {counts['queue_full']:.0f} "
              f"dropped (queue full), {counts['export_failed']:.0f} dropped (export failed), "
              f"{counts['receiver_requests']:.0f} OTLP requests received in the whole run")
    for case, peer, target in (("ours-v2", "ours", 0.9), ("ours-v2", "mlserver", 2.0)):
        if case in summary and peer in summary:
            print(f"{case} / {peer}: throughput x{summary[case]['rps'] / summary[peer]['rps']:.2f} "
                  f"(target >= {target:.2f}), CPU per request "
                  f"x{summary[case]['cpu_us'] / summary[peer]['cpu_us']:.2f}")
    if "ours" in summary:
        print()
        for case, s in summary.items():
            if case not in ("ours", "driver"):
                print(f"ours / {case:<19} throughput x{summary['ours']['rps'] / s['rps']:.2f}"
                      f"   p99 {summary['ours']['p99']:.2f} vs {s['p99']:.2f} ms"
                      f"   CPU per request x{summary['ours']['cpu_us'] / s['cpu_us']:.2f}")
    for case, why in skipped.items():
        print(f"skipped {case}: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": results,
                                               "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
