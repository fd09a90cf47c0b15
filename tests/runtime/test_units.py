"""Pure logic of the runtime, in process: schema, encoding, keys, cpu quota, settings,
admission and metrics on local shared memory, errors, the driver state machine."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime import cgroups as cpu
from runtime.admission import Admission
from runtime.app import error_parts
from runtime.config import Settings
from runtime.driver import Driver, Lifecycle, State
from runtime.encoding import encode_output
from runtime.errors import BadInput, BadOutput, ConfigError, NotReady, Overloaded, SchemaError, Unauthorized
from runtime.keys import KeyRing, bearer_token, hash_key, parse_key_hashes
from runtime.metrics import LAYOUT, ROUTE_INDEX, Metrics, new_shared_memory
from runtime.schema import load_schema, parse_schema, swagger_dtype
from tests.waiting import wait_for

from .conftest import absolute_imports

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# -- schema -------------------------------------------------------------------------------------
def test_fixture_schema_parses_without_touching_internal():
    schema = load_schema(str(FIXTURES / "service_schema.json"))
    assert [spec.name for spec in schema.inputs] == ["input_df"]
    row = {"sepal length (cm)": 1, "sepal width (cm)": 2.5, "petal length (cm)": 3,
           "petal width (cm)": 4}
    frame = schema.arguments({"input_df": [row]})["input_df"]
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(row)
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert schema.example == {"input_df": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
                                            "petal length (cm)": 1.4, "petal width (cm)": 0.2}]}


def test_schema_module_cannot_unpickle():
    import runtime.schema as module

    source = Path(module.__file__).read_text()
    assert "import pickle" not in source and "loads(" not in source.replace("json.loads(", "")


def test_pandas_columns_follow_the_declared_order_and_types():
    schema = parse_schema({"input": {"df": {"type": 3, "swagger": {
        "type": "array", "items": {"type": "object", "properties": {
            "b": {"type": "integer", "format": "int64"}, "a": {"type": "string"},
            "c": {"type": "boolean"}}}}}}})
    frame = schema.arguments({"df": [{"a": "x", "b": 1, "c": True}, {"c": False, "b": 2,
                                                                     "a": "y"}]})["df"]
    assert list(frame.columns) == ["b", "a", "c"]
    assert frame["b"].dtype == np.int64 and frame["c"].dtype == bool
    assert schema.arguments({"df": []})["df"].empty


def test_numpy_input_gets_the_swagger_dtype():
    schema = parse_schema({"input": {"arr": {"type": 1, "swagger": {
        "type": "array", "items": {"type": "array", "items": {
            "type": "number", "format": "float"}}}}, "k": {"type": 0, "swagger": {
                "type": "integer"}}}})
    kwargs = schema.arguments({"arr": [[1, 2], [3, 4]], "k": 3})
    assert kwargs["arr"].dtype == np.float32 and kwargs["arr"].shape == (2, 2)
    assert kwargs["k"] == 3


def test_validation_errors_name_the_path_and_unknown_keys():
    schema = load_schema(str(FIXTURES / "service_schema.json"))
    with pytest.raises(BadInput, match=r"^input_df/0/sepal width \(cm\): 'x' is not of type"):
        schema.arguments({"input_df": [{"sepal width (cm)": "x"}]})
    with pytest.raises(BadInput, match=r"unknown input key\(s\) \['zzz'\]"):
        schema.arguments({"input_df": [], "zzz": 1})
    with pytest.raises(BadInput, match="must be a JSON object"):
        schema.arguments(["input_df"])


def test_a_recursive_schema_over_a_deeply_nested_value_is_bad_input():
    """A swagger $ref back to itself makes jsonschema recurse once per level."""
    schema = parse_schema({"input": {"data": {"type": 0, "swagger": {
        "type": "array", "items": {"$ref": "#/properties/data"}}}}})
    assert schema.arguments({"data": [[[]]]}) == {"data": [[[]]]}
    with pytest.raises(BadInput, match="nested too deeply"):
        schema.arguments({"data": json.loads("[" * 900 + "]" * 900)})


@pytest.mark.parametrize("document, message", [
    ({}, 'an "input" object'),
    ({"input": {}}, "no input"),
    ({"input": {"x": {"type": 0}}}, "no swagger"),
    ({"input": {"x": {"type": 7, "swagger": {}}}}, "unknown type 7"),
    ({"input": {"not-an-identifier": {"type": 0, "swagger": {}}}}, "keyword argument"),
    ({"input": {"x": {"type": 2, "swagger": {}}}}, "SparkPython"),
    ({"input": {"x": {"type": 3, "swagger": {"type": "array"}}}}, "array of objects"),
    ({"input": {"x": {"type": 0, "swagger": {"type": 5}}}}, "invalid"),
])
def test_unusable_schemas_are_refused(document, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema(document)


def test_swagger_dtypes():
    assert swagger_dtype({"type": "number", "format": "double"}) == "float64"
    assert swagger_dtype({"type": "integer", "format": "int32"}) == "int32"
    assert swagger_dtype({"type": ["number", "null"]}) == "float64"
    assert swagger_dtype({"type": "string", "format": "date-time"}) is None
    assert swagger_dtype({}) is None


# -- encoding -----------------------------------------------------------------------------------
def test_encoding_matches_the_original():
    assert encode_output("Iris-setosa") == b'"Iris-setosa"'
    assert encode_output(json.dumps(["a"])) == b'"[\\"a\\"]"'
    assert encode_output({"a": [1, 2.5, None, True]}) == b'{"a": [1, 2.5, null, true]}'


def test_encoding_numpy_pandas_and_friends():
    assert json.loads(encode_output(np.arange(4).reshape(2, 2))) == [[0, 1], [2, 3]]
    assert json.loads(encode_output([np.int64(3), np.float32(0.5), np.bool_(False)])) == \
        [3, 0.5, False]
    frame = pd.DataFrame({"x": [1, 2], "t": pd.to_datetime(["2017-09-01", "2017-09-02"])})
    assert json.loads(encode_output(frame)) == [{"x": 1, "t": "2017-09-01T00:00:00"},
                                                {"x": 2, "t": "2017-09-02T00:00:00"}]
    assert json.loads(encode_output(pd.Series([1.5, 2.5]))) == [1.5, 2.5]
    assert json.loads(encode_output({"d": datetime.date(2017, 9, 1),
                                     "n": decimal.Decimal("1.5"), "s": {3}})) == \
        {"d": "2017-09-01", "n": 1.5, "s": [3]}


@pytest.mark.parametrize("value", [object(), b"bytes", {"k": lambda: 1}, {(1, 2): 3}])
def test_unencodable_output_is_bad_output(value):
    with pytest.raises(BadOutput) as info:
        encode_output(value)
    assert info.value.status == 500 and info.value.code == "driver_error"


# -- keys ---------------------------------------------------------------------------------------
def test_key_file_parsing():
    a, b = hash_key("a"), hash_key("b")
    digests, problems = parse_key_hashes(
        f"# primary\n{a}\n\n  {b.upper()}  \nsha256:{a}\nnot-a-hash\n{a[:-1]}\n")
    assert digests == [bytes.fromhex(a), bytes.fromhex(b)]
    assert problems == ["line 6: not a sha256 hex digest", "line 7: not a sha256 hex digest"]


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"),
    ("Basic abc", None), ("Bearer", None), ("Bearer   ", None), ("", None), (None, None),
])
def test_bearer_token(header, token):
    assert bearer_token(header) == token


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keyring_rereads_a_changed_file_at_most_once_per_interval(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    path.write_text(f"{hash_key('one')}\n{hash_key('two')}\n")
    clock = FakeClock()
    ring = KeyRing(str(path), check_interval=1.0, clock=clock)
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: (stats.append(p), real_stat(p, *a, **k))[1])
    assert ring.check("Bearer one") and ring.check("Bearer two")
    assert not ring.check("Bearer three") and not ring.check(None)
    path.write_text(f"{hash_key('three')}\n")
    for _ in range(100):
        assert ring.check("Bearer one")  # not noticed yet: no stat within the interval
    assert stats == []
    clock.now += 1.0
    assert ring.check("Bearer three") and not ring.check("Bearer one")
    assert len(stats) == 1
    path.unlink()
    clock.now += 1.0
    assert not ring.check("Bearer three"), "a missing key file accepts nothing"


# -- cpu quota ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, cpus", [
    ("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5), ("200000", 2.0),
    ("", None), ("junk 100000", None), ("-1 100000", None),
])
def test_parse_cpu_max(text, cpus):
    assert cpu.parse_cpu_max(text) == cpus


def test_cgroup_limit_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("250000 100000\n")
    assert cpu.cgroup_cpu_limit(str(v2)) == 2.5
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu.cgroup_cpu_limit(str(tmp_path / "v1")) == 0.5
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu.cgroup_cpu_limit(str(tmp_path / "v1")) is None
    assert cpu.cgroup_cpu_limit(str(tmp_path / "none")) is None
    assert cpu.available_cpus(str(v2)) == min(2.5, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("cpus, workers", [(0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (8.0, 8)])
def test_default_workers(cpus, workers):
    assert cpu.default_workers(cpus) == workers


# -- settings -----------------------------------------------------------------------------------
def test_settings_defaults_env_and_overrides(tmp_path):
    settings = Settings.load({"MOMA_APP_ROOT": str(tmp_path)})
    assert (settings.driver, settings.schema, settings.keys_file) == ("score.py", None, None)
    assert (settings.max_concurrent, settings.max_queue, settings.scoring_timeout_ms) == (0, 0, 0)
    (tmp_path / "service_schema.json").write_text("{}")
    settings = Settings.load({"MOMA_APP_ROOT": str(tmp_path), "MAX_CONCURRENT_REQUESTS": "4"},
                             {"MAX_QUEUE_WAIT_MS": 20})
    assert settings.schema == "service_schema.json"
    assert (settings.max_concurrent, settings.max_queue, settings.max_queue_wait_ms) == (4, 8, 20)
    assert settings.driver_path == os.path.join(str(tmp_path), "score.py")


@pytest.mark.parametrize("name, value", [
    ("MAX_CONCURRENT_REQUESTS", "many"), ("MAX_QUEUE", "-1"), ("SCORING_TIMEOUT_MS", "1.5"),
    ("MOMA_KEYS_CHECK_INTERVAL_S", "0"), ("MOMA_MAX_BODY_BYTES", "0"),
])
def test_bad_settings_fail_loudly(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.load({}, {name: value})


# -- admission ----------------------------------------------------------------------------------
def test_admission_limits_queues_and_refuses(tmp_path):
    memory = new_shared_memory(str(tmp_path), 2, 1)
    admission = Admission(memory.admission, limit=2, max_queue=1, max_wait_ms=300)
    assert admission.acquire() == 0.0 and admission.acquire() == 0.0
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(admission.acquire()))
    waiter.start()
    wait_for(lambda: memory.admission.totals()[1] == 1, timeout=5, interval=0.005,
             what="the waiter to take the queue's one place")
    with pytest.raises(Overloaded) as full:
        admission.acquire()
    assert full.value.reason == "queue_full" and full.value.status == 429
    admission.release()
    waiter.join(2)
    assert isinstance(results[0], float) and 0.0 < results[0] < 0.3  # queued, then admitted by the release
    started = time.monotonic()
    with pytest.raises(Overloaded) as late:
        admission.acquire()
    assert late.value.reason == "queue_timeout"
    assert 0.25 < time.monotonic() - started < 1.0
    assert dict(late.value.headers()) == {"Retry-After": "1"}
    admission.release()
    admission.release()
    assert admission.acquire() == 0.0
    memory.close()


def test_reclaim_frees_the_slots_of_a_dead_process(tmp_path):
    memory = new_shared_memory(str(tmp_path), 1, 0)
    admission = Admission(memory.admission, limit=1, max_queue=0, max_wait_ms=0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: take the only slot and die holding it
        try:
            admission.acquire()
            os.write(write, b"x")
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        assert os.read(read, 1) == b"x"
        with pytest.raises(Overloaded):
            admission.acquire()
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        assert memory.reclaim(pid) == 1
        assert admission.acquire() == 0.0
    finally:
        os.close(read)
        os.close(write)
        memory.close()


def test_unlimited_admission_still_counts(tmp_path):
    memory = new_shared_memory(str(tmp_path))
    admission, metrics = Admission(memory.admission, 0, 0, 0), Metrics(memory)
    for _ in range(50):
        admission.acquire()
    assert metrics.totals()[1] == 50
    memory.close()


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_sum_live_rows_and_keep_dead_ones(tmp_path):
    memory = new_shared_memory(str(tmp_path))
    metrics = Metrics(memory)
    score = ROUTE_INDEX["/score"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            metrics.request_started()
            metrics.request_finished(score, 200, 0.003)
            metrics.request_started()  # in flight when it dies: a gauge, not archived
            metrics.driver_error("timeout")
            os.write(write, b"x")
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        assert os.read(read, 1) == b"x"
        metrics.request_started()
        metrics.request_finished(score, 200, 0.2)
        metrics.rejected("queue_full")
        total, _, _ = metrics.totals()
        assert total[LAYOUT.in_flight] == 1
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        memory.reclaim(pid)
        text = metrics.render().decode()
    finally:
        os.close(read)
        os.close(write)
        memory.close()
    assert 'moma_requests_total{route="/score",status="200"} 2.0' in text
    assert 'moma_request_duration_seconds_bucket{le="0.005",route="/score"} 1.0' in text
    assert 'moma_request_duration_seconds_bucket{le="0.25",route="/score"} 2.0' in text
    assert 'moma_driver_errors_total{kind="timeout"} 1.0' in text
    assert 'moma_rejections_total{reason="queue_full"} 1.0' in text
    assert "moma_requests_in_flight 0.0" in text


# -- errors and the state machine ---------------------------------------------------------------
def test_error_parts_are_json_with_code():
    status, headers, body = error_parts(Unauthorized("no key"))
    assert status == 401 and ("WWW-Authenticate", "Bearer") in headers
    assert json.loads(body) == {"message": "no key", "code": "unauthorized"}
    status, _, body = error_parts(RuntimeError("internal detail"))
    assert status == 500 and json.loads(body) == {"message": "internal server error",
                                                  "code": "internal_error"}


def test_lifecycle_transitions():
    life = Lifecycle()
    with pytest.raises(NotReady):
        life.require_ready()
    life.succeed()
    life.require_ready()
    life.fail("too late")  # READY never goes back to FAILED
    assert life.state is State.READY
    life.drain()
    assert life.state is State.DRAINING and not life.ready
    life.require_ready()  # draining workers finish what they get
    failed = Lifecycle()
    failed.fail("init blew up")
    failed.succeed()
    assert failed.state is State.FAILED
    with pytest.raises(NotReady, match="init blew up"):
        failed.require_ready()


@pytest.mark.parametrize("source, reason", [
    ("def init(): pass\n", "does not define run()"),
    ("def run(x): pass\n", "does not define init()"),
    ("import sys\ndef init(): sys.exit(3)\ndef run(x): pass\n", "SystemExit: 3"),
    ("def init(:\n", "driver import failed: SyntaxError"),
    ("def init(): raise KeyError('m')\ndef run(x): pass\n", "driver init() failed: KeyError"),
])
def test_driver_load_failures_become_failed(tmp_path, source, reason):
    (tmp_path / "drv.py").write_text(source)
    life = Lifecycle()
    Driver(str(tmp_path / "drv.py"), str(tmp_path)).load(life)
    assert life.state is State.FAILED and reason in life.reason


# -- packaging --------------------------------------------------------------------------------
def test_runtime_imports_only_stdlib_and_its_pinned_requirements():
    import sys

    allowed = {"flask", "werkzeug", "gunicorn", "jsonschema", "orjson", "prometheus_client"}
    package = Path(__file__).resolve().parents[2] / "runtime"
    pinned = (package / "requirements.txt").read_text()
    assert all(name.replace("_", "-") in pinned for name in allowed)
    # pyspark only in the SparkPython modules (spark*.py), pinned for SparkPython images
    spark_only = {"pyspark", "py4j"}
    assert all(name in (package / "requirements-spark.txt").read_text() for name in spark_only)
    # azure-storage-blob only in data collection (its blob sink), pinned for blob images
    assert "azure-storage-blob" in (package / "requirements-blob.txt").read_text()
    # OpenTelemetry and Azure Monitor's exporter only in the modules telemetry loads when on
    telemetry_pins = (package / "requirements-telemetry.txt").read_text()
    assert "opentelemetry-sdk" in telemetry_pins and "azure-monitor-opentelemetry-exporter" in telemetry_pins
    telemetry_off_path = {"__init__.py", "settings.py", "spans.py", "pipeline.py", "wire.py"}
    for source in package.rglob("*.py"):
        if package / "shims" in source.parents:
            continue  # azureml.datacollector: another top-level package, over this one
        for top, _ in absolute_imports(source):
            assert top in sys.stdlib_module_names or top in allowed \
                or (source.name.startswith("spark") and top in spark_only) \
                or (source.parent.name == "datacollection" and top == "azure") \
                or (source.parent.name == "telemetry" and source.name not in telemetry_off_path
                    and top in ("opentelemetry", "azure")), (source.name, top)


def test_the_app_knows_nothing_of_gunicorn():
    """gunicorn, and runtime/server/ which adapts it, are imported by runtime/server/
    alone: the WSGI app runs under any server."""
    import ast

    package = Path(__file__).resolve().parents[2] / "runtime"
    for source in package.rglob("*.py"):
        if package / "server" in source.parents:
            continue
        assert "gunicorn" not in {top for top, _ in absolute_imports(source)}, source
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module or ""] + [alias.name for alias in node.names]
                assert not any(name.split(".")[0] == "server" for name in names), source


# -- gunicorn settings --------------------------------------------------------------------------
def _gunicorn_settings(env: dict[str, str]) -> dict:
    import subprocess
    import sys

    code = ("import json, runtime.server.gunicorn_conf as c; print(json.dumps({k: getattr(c, k) for k "
            "in ('bind', 'workers', 'threads', 'worker_class', 'graceful_timeout', "
            "'accesslog', 'keepalive', 'control_socket_disable', 'reuse_port')}))")
    ours = ("MOMA_", "MAX_", "SCORING_", "WORKER", "THREADS", "PORT", "INLINE_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    if done.returncode:
        raise ConfigError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout)


def test_gunicorn_defaults_follow_cpu_and_admission(tmp_path):
    settings = _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path)})
    assert settings["bind"] == ["0.0.0.0:5001"]
    assert settings["workers"] == cpu.default_workers(cpu.available_cpus())
    assert settings["threads"] == 4
    assert settings["worker_class"] == "runtime.server.gthread.ScoringWorker"  # gthread, balanced
    assert settings["graceful_timeout"] == 30 and settings["accesslog"] == "-"
    assert settings["control_socket_disable"] is True
    settings = _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path), "WORKERS": "2",
                                   "MAX_CONCURRENT_REQUESTS": "10", "PORT": "6000",
                                   "SCORING_TIMEOUT_MS": "60000", "ACCESS_LOG": "false"})
    assert settings["bind"] == ["0.0.0.0:6000"]
    assert settings["threads"] == 17  # (10 admitted + 20 queued) / 2 workers + 2
    assert settings["graceful_timeout"] == 65 and settings["accesslog"] is None
    settings = _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path), "WORKER_CLASS": "sync",
                                   "THREADS": "8"})
    assert (settings["worker_class"], settings["threads"]) == ("sync", 1)
    settings = _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path), "WORKER_CLASS": "gthread-stock"})
    assert (settings["worker_class"], settings["threads"]) == ("gthread", 4)
    # REUSE_PORT: one socket bound by the master (on_starting), never gunicorn's per-worker ones
    settings = _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path), "REUSE_PORT": "true",
                                   "MOMA_BIND": "::1"})
    assert settings["reuse_port"] is False and settings["bind"] == ["[::1]:5001"]


@pytest.mark.parametrize("env, name", [({"WORKERS": "0"}, "WORKERS"),
                                       ({"WORKER_CLASS": "gevent"}, "WORKER_CLASS"),
                                       ({"PORT": "http"}, "PORT"),
                                       ({"INLINE_BUDGET_MS": "-1"}, "INLINE_BUDGET_MS")])
def test_gunicorn_settings_fail_loudly(tmp_path, env, name):
    with pytest.raises(ConfigError, match=name):
        _gunicorn_settings({"MOMA_APP_ROOT": str(tmp_path), **env})


def test_fast_validation_never_accepts_what_jsonschema_refuses():
    schema = parse_schema({"input": {
        "df": {"type": 3, "swagger": {"type": "array", "items": {"type": "object", "properties": {
            "x": {"type": "number", "format": "double"}, "n": {"type": "integer"},
            "s": {"type": "string"}, "b": {"type": "boolean"}}}}},
        "arr": {"type": 1, "swagger": {"type": "array", "items": {"type": "array", "items": {
            "type": "number"}}}},
        "k": {"type": 0, "swagger": {"type": "integer"}}}})
    assert schema._fast is not None
    good_row = {"x": 1.5, "n": 2, "s": "a", "b": True}
    values = [1, 1.5, -0.0, True, False, None, "1", [], {}, [1], [[1]], [[1, "a"]], 10**30,
              float("nan"), float("inf"), [good_row], [dict(good_row, x="1")],
              [dict(good_row, n=1.0)], [dict(good_row, n=True)], [dict(good_row, b=1)],
              [dict(good_row, extra=[1])], [{"x": None}], [[]], [[True]], [good_row, 3]]
    checked = 0
    for df in values:
        for arr in values:
            for k in values[:12]:
                body = {"df": df, "arr": arr, "k": k}
                if schema._surely_valid(body):
                    checked += 1
                    assert schema._validator.is_valid(body), body
    assert checked > 0
    assert not schema._surely_valid({"df": [], "arr": []})  # missing key: jsonschema words it
    assert schema._surely_valid({"df": [good_row], "arr": [[1, 2.5]], "k": 3})


def test_schemas_beyond_the_fast_path_still_validate():
    schema = parse_schema({"input": {"x": {"type": 0, "swagger": {
        "type": "integer", "minimum": 3}}}})
    assert schema._fast is None
    assert schema.arguments({"x": 4}) == {"x": 4}
    with pytest.raises(BadInput, match="x: 2 is less than the minimum of 3"):
        schema.arguments({"x": 2})
