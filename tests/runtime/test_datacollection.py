"""Model data collection: shapes, formats, paths, sinks, the queue and its drainer (in
process), then real gunicorn servers writing to the local sink. Blob storage (Azurite)
is in test_datacollection_blob.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime import datacollection
from runtime.datacollection import rows as rows_module
from runtime.datacollection.context import ModelContext, ModelRef, segment
from runtime.datacollection.hub import Hub
from runtime.datacollection.items import Captured
from runtime.datacollection.policy import CapturePolicy
from runtime.datacollection.rows import (
    Encoder,
    InputShape,
    Target,
    UnsupportedData,
    shape,
    shape_prediction,
    shape_request,
)
from runtime.datacollection.settings import CollectionSettings
from runtime.datacollection.sinks import LocalSink, SinkError
from runtime.errors import ConfigError
from tests.waiting import wait_for

from .conftest import REPO, absolute_imports, prometheus_value

SHIMS = REPO / "runtime" / "shims"
PYTHONPATH = f"{REPO}{os.pathsep}{SHIMS}"
MODEL_MAP = json.dumps({
    "models": {"iris": {"id": "0123abcd", "version": 3}},
    "accountContext": {"subscriptionId": "sub-1", "resourceGroupName": "rg-1",
                       "accountName": "acct-1"}})
PREFIX = "sub-1/rg-1/acct-1/svc-1/0123abcd-iris-3"
TARGET = Target("p", "inputs", "m1", "iris", "3", "img-1")


# -- helpers ----------------------------------------------------------------------------------

def day_files(root: Path, identifier: str, prefix: str = PREFIX, name: str = "data.csv") -> list[Path]:
    return sorted((root / "modeldata" / prefix / identifier).glob(f"*/*/*/{name}"))


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    table = list(csv.reader(io.StringIO(path.read_text())))
    return table[0], table[1:]


def rows_in(root: Path, identifier: str, prefix: str = PREFIX) -> list[list[str]]:
    files = day_files(root, identifier, prefix)
    return [row for path in files for row in read_csv(path)[1]]


def dc_env(out: Path, **extra: str) -> dict[str, str]:
    env = {"PYTHONPATH": PYTHONPATH, "AML_MODEL_DC_STORAGE_ENABLED": "true",
           "AML_MODEL_DC_LOCAL_DIR": str(out), "MOMA_SERVICE_NAME": "svc-1",
           "MOMA_IMAGE_ID": "img-1", "AML_MODEL_DC_FLUSH_INTERVAL_S": "0.3"}
    env.update(extra)
    return env


class Recorder:
    """A hand-written stand-in for runtime.metrics.Metrics' data collection methods."""

    def __init__(self) -> None:
        self.collected = 0
        self.written: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.queued = 0.0

    def dc_collected(self, rows):
        self.collected += rows

    def dc_written(self, sink, rows):
        self.written[sink] = self.written.get(sink, 0) + rows

    def dc_dropped(self, reason, rows):
        self.dropped[reason] = self.dropped.get(reason, 0) + rows

    def dc_sink_error(self, sink):
        self.errors[sink] = self.errors.get(sink, 0) + 1

    def dc_queued(self, rows):
        self.queued = rows


class FlakySink:
    """Fails while ``down`` is set; keeps what it was given otherwise."""

    name = "local"

    def __init__(self) -> None:
        self.down = threading.Event()
        self.blocks: list[tuple[str, bytes | None, bytes]] = []

    def write(self, path, header, block):
        if self.down.is_set():
            raise SinkError("down for the test")
        self.blocks.append((path, header, block))

    def close(self):
        pass

    def lines(self) -> list[str]:
        return [line for _, _, block in self.blocks for line in block.decode().splitlines()]


def make_hub(sink, recorder, **options) -> Hub:
    settings = dict(queue_bytes=1 << 20, batch_bytes=1 << 20, flush_interval_s=0.05,
                    shutdown_timeout_s=2.0)
    settings.update(options)
    return Hub(Encoder(), [sink], recorder=recorder, **settings)


def put_rows(hub: Hub, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        encoded = hub.encoder.encode(TARGET, ["i"], [[i]], time.time(), "", f"r{i}")
        hub.put(TARGET, time.time(), encoded)


# -- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, names, expected", [
    ([5.1, 3.5], None, (None, [[5.1, 3.5]])),                        # a feature vector: one row
    ([[1, 2], [3, 4]], None, (None, [[1, 2], [3, 4]])),
    ([{"a": 1, "b": 2}, {"b": 3, "c": 4}], None, (["a", "b", "c"], [[1, 2, None], [None, 3, 4]])),
    ({"a": 1, "b": [1, 2]}, None, (["a", "b"], [[1, [1, 2]]])),
    ({"a": 1, "b": 2}, ["b"], (["b"], [[2]])),                       # names pick dict values
    ([0, 1, 2], ["prediction"], (["prediction"], [[0], [1], [2]])),  # one name: a row per value
    ([], None, (None, [])),
    ("text", None, (None, [["text"]])),
    (None, ["x"], (["x"], [[None]])),
    ((1, 2), ["a", "b"], (["a", "b"], [[1, 2]])),
])
def test_shapes_of_python_values(data, names, expected):
    assert shape(data, names) == expected


def test_shapes_of_numpy_and_pandas():
    assert shape(np.float32(0.5)) == (None, [[0.5]])
    assert shape(np.array([1, 2, 3])) == (None, [[1, 2, 3]])
    assert shape(np.array([1, 2, 3]), ["p"]) == (["p"], [[1], [2], [3]])
    assert shape(np.arange(4).reshape(2, 2)) == (None, [[0, 1], [2, 3]])
    assert shape(np.arange(8).reshape(2, 2, 2)) == (None, [[0, 1, 2, 3], [4, 5, 6, 7]])
    assert shape([np.array([1, 2]), np.array([3, 4])]) == (None, [[1, 2], [3, 4]])
    frame = pd.DataFrame({"x": [1.5, 2.5], "y": ["a", "b"], "z": [True, False]})
    names, rows = shape(frame)
    assert names == ["x", "y", "z"] and rows == [[1.5, "a", True], [2.5, "b", False]]
    assert [type(v) for v in rows[0]] == [float, str, bool]  # plain Python values
    assert shape(frame, ["a", "b", "c"])[0] == ["a", "b", "c"]  # feature names win
    assert shape(pd.Series([1, 2])) == (None, [[1, 2]])


def test_spark_dataframes_go_through_the_hook():
    spark_df = type("DataFrame", (), {"__module__": "pyspark.sql.dataframe"})()
    with pytest.raises(UnsupportedData, match="SparkPython"):
        shape(spark_df)
    try:
        datacollection.register_spark(lambda df, names: (["a"], [[1], [2]]))
        assert shape(spark_df) == (["a"], [[1], [2]])
    finally:
        rows_module._spark_shaper = None
    with pytest.raises(UnsupportedData):
        shape(object())


IRIS_SHAPE = InputShape(("input_df",), (3,), (("sl", "sw"),))


@pytest.mark.parametrize("raw, inputs, expected", [
    (b'{"data": [[1, 2]]}', None, (["data"], [[[[1, 2]]]])),
    (b'[[1, 2], [3, 4]]', None, (None, [[1, 2], [3, 4]])),
    (b'not json', None, (["input"], [["not json"]])),
    (b'"text"', None, (["input"], [["text"]])),
    ({"x": "1", "y": "abc"}, None, (["x", "y"], [[1, "abc"]])),  # GET: JSON when it parses
    (b'{"input_df": [{"sw": 2, "sl": 1}, {"sl": 3}]}', IRIS_SHAPE, (["sl", "sw"], [[1, 2], [3, None]])),
    (b'{"arr": [[1, 2], [3, 4]]}', InputShape(("arr",), (1,), (None,)), (None, [[1, 2], [3, 4]])),
    (b'{"n": 5}', InputShape(("n",), (0,), (None,)), (["n"], [[5]])),
    (b'{"a": 1, "b": [2]}', InputShape(("a", "b"), (0, 0), (None, None)), (["a", "b"], [[1, [2]]])),
])
def test_request_bodies_become_rows(raw, inputs, expected):
    assert shape_request(raw, inputs) == expected


@pytest.mark.parametrize("raw, expected", [
    (b"[0, 2]", (["prediction"], [[0], [2]])),                   # one row per prediction
    (json.dumps(json.dumps([0, 2])).encode(), (["prediction"], [[0], [2]])),  # json.dumps'd
    (b'"Iris-setosa"', (["prediction"], [["Iris-setosa"]])),
    (b'[[0.1, 0.9], [0.8, 0.2]]', (None, [[0.1, 0.9], [0.8, 0.2]])),
    (b'[{"label": 1, "p": 0.5}]', (["label", "p"], [[1, 0.5]])),
    (b'{"label": 1}', (["label"], [[1]])),
    (b"null", (["prediction"], [[None]])),
])
def test_responses_become_rows(raw, expected):
    assert shape_prediction(raw) == expected


# -- formats --------------------------------------------------------------------------------------
def test_csv_rows_have_the_original_prefix_and_escape_cells():
    encoder = Encoder()
    ts = 1507154096.5
    out = encoder.encode(TARGET, ["a", "b,c", "d"], [[1.5, 'say "hi"', {"k": [1, 2]}],
                                                     [None, "two\nlines", np.int64(3)]],
                         ts, "corr", "req")
    assert out.header == b'$Timestamp,$CorrelationId,$RequestId,a,"b,c",d\n'
    table = list(csv.reader(io.StringIO("".join(out.lines))))
    assert table == [["2017-10-04T21:54:56.500Z", "corr", "req", "1.5", 'say "hi"', '{"k":[1,2]}'],
                     ["2017-10-04T21:54:56.500Z", "corr", "req", "", "two\nlines", "3"]]
    assert out.too_large == 0 and out.size == sum(map(len, out.lines))
    positional = encoder.encode(TARGET, None, [[7, 8]], ts, "", "")
    assert positional.header == b"$Timestamp,$CorrelationId,$RequestId,0,1\n"


def test_fields_are_dropped_and_hashed_and_big_rows_dropped():
    encoder = Encoder(drop={"secret"}, hashed={"email"}, salt="s1", max_row_bytes=200)
    out = encoder.encode(TARGET, ["id", "secret", "email"],
                         [[1, "pw", "a@b.c"], [2, "pw", None], [3, "pw", "x" * 300]], 0.0, "", "r")
    assert out.header == b"$Timestamp,$CorrelationId,$RequestId,id,email\n"
    table = list(csv.reader(io.StringIO("".join(out.lines))))
    assert [row[3:] for row in table] == [
        ["1", hashlib.sha256(b"s1a@b.c").hexdigest()], ["2", ""],
        ["3", hashlib.sha256(b"s1" + b"x" * 300).hexdigest()]]
    assert out.too_large == 0  # the long value was hashed to 64 characters
    big = Encoder(max_row_bytes=100).encode(TARGET, ["v"], [["x" * 200], ["y"]], 0.0, "", "r")
    assert big.too_large == 1 and len(big.lines) == 1


def test_json_lines_keep_nested_values_and_name_the_model():
    encoder = Encoder("jsonl", hashed={"email"})
    assert encoder.file_name == "data.jsonl"
    out = encoder.encode(TARGET, ["email", "nested"], [["a@b.c", {"k": [1, 2]}]], 0.25, "c", "r")
    record = json.loads(out.lines[0])
    assert out.header is None and out.lines[0].endswith("}\n")
    assert record == {"timestamp": "1970-01-01T00:00:00.250Z", "correlationId": "c",
                      "requestId": "r", "modelId": "m1", "modelName": "iris", "modelVersion": "3",
                      "imageId": "img-1", "identifier": "inputs",
                      "data": {"email": hashlib.sha256(b"a@b.c").hexdigest(),
                               "nested": {"k": [1, 2]}}}
    assert json.loads(encoder.encode(TARGET, None, [[1, [2]]], 0.0, "", "").lines[0])["data"] == [1, [2]]


# -- context and settings ------------------------------------------------------------------------
def test_paths_follow_the_original_layout(tmp_path):
    (tmp_path / "model_config_map.json").write_text(MODEL_MAP)
    context = ModelContext.load(str(tmp_path), "svc-1", "img-1")
    assert context.model("iris") == ModelRef("0123abcd", "iris", "3")
    assert context.model("other", "id9", "2") == ModelRef("id9", "other", "2")
    assert context.model("other") == ModelRef("unknown", "other", "unknown")
    assert context.default_model() == ModelRef("0123abcd", "iris", "3")
    assert context.prefix(context.model("iris"), "inputs") == f"{PREFIX}/inputs"
    empty = ModelContext.load(str(tmp_path / "missing"), "", "")
    assert empty.prefix(empty.default_model(), "x") == \
        "unknown/unknown/unknown/unknown/unknown-unknown-unknown/x"
    assert [segment(s) for s in ("../etc", "..", "", "a/b", "ok-1.2_3")] == \
        [".._etc", "_", "_", "a_b", "ok-1.2_3"]
    (tmp_path / "model_config_map.json").write_text("{not json")
    assert ModelContext.load(str(tmp_path), "s", "").models == ()


def test_settings_from_the_environment():
    assert not CollectionSettings.load({}).active
    settings = CollectionSettings.load({
        "AML_MODEL_DC_STORAGE_ENABLED": "true", "AML_MODEL_DC_LOCAL_DIR": "/d",
        "AML_MODEL_DC_FORMAT": "JSONL", "AML_MODEL_DC_SAMPLE_RATE": "0.25",
        "AML_MODEL_DC_DROP_FIELDS": "a, b,,", "AML_MODEL_DC_HASH_FIELDS": "c",
        "AML_MODEL_DC_AUTO": "false", "MOMA_SERVICE_NAME": "svc"})
    assert settings.storage and settings.active and settings.format == "jsonl"
    assert settings.sample_rate == 0.25 and settings.drop_fields == {"a", "b"}
    assert settings.hash_fields == {"c"} and not settings.auto and settings.service_name == "svc"
    assert not CollectionSettings.load({"AML_MODEL_DC_LOCAL_DIR": "/d"}).storage  # not enabled
    assert CollectionSettings.load({"AML_MODEL_DC_DEBUG": "true"}).active


@pytest.mark.parametrize("name, value", [
    ("AML_MODEL_DC_STORAGE_ENABLED", "maybe"), ("AML_MODEL_DC_FORMAT", "xml"),
    ("AML_MODEL_DC_SAMPLE_RATE", "1.5"), ("AML_MODEL_DC_SAMPLE_RATE", "half"),
    ("AML_MODEL_DC_QUEUE_BYTES", "10"), ("AML_MODEL_DC_FLUSH_INTERVAL_S", "0"),
])
def test_bad_settings_fail_loudly(name, value):
    with pytest.raises(ConfigError, match=name):
        CollectionSettings.load({name: value})


# -- the local sink ---------------------------------------------------------------------------------
WRITER = """
import sys
from runtime.datacollection.sinks import LocalSink
sink = LocalSink(sys.argv[1])
for i in range(int(sys.argv[3])):
    sink.write("a/b/data.csv", b"HEADER\\n", ("%s-%d\\n" % (sys.argv[2], i)).encode() * 3)
"""


def test_local_files_get_one_header_first_under_concurrent_writers(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{n}", "200"],
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
             for n in range(4)]
    assert all(proc.wait(60) == 0 for proc in procs)
    lines = (tmp_path / "modeldata" / "a" / "b" / "data.csv").read_text().splitlines()
    assert lines[0] == "HEADER" and lines.count("HEADER") == 1
    assert len(lines) == 1 + 4 * 200 * 3
    for n in range(4):  # every block landed whole
        mine = [line for line in lines if line.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(200) for _ in range(3)]
    assert not list((tmp_path / "modeldata" / "a" / "b").glob(".*.tmp"))


def test_local_files_are_readable_by_other_users_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        LocalSink(str(tmp_path)).write("x/y/data.csv", b"h\n", b"row\n")
        LocalSink(str(tmp_path)).write("x/z/data.jsonl", None, b"{}\n")
    finally:
        os.umask(old)
    base = tmp_path / "modeldata"
    assert (base / "x" / "y" / "data.csv").read_bytes() == b"h\nrow\n"
    assert (base / "x" / "y" / "data.csv").stat().st_mode & 0o777 == 0o644
    assert (base / "x" / "z" / "data.jsonl").stat().st_mode & 0o777 == 0o644
    for directory in (base, base / "x", base / "x" / "y"):
        assert directory.stat().st_mode & 0o777 == 0o777


def test_local_sink_errors_are_sink_errors(tmp_path):
    (tmp_path / "modeldata").write_text("a file where the directory should be")
    with pytest.raises(SinkError):
        LocalSink(str(tmp_path)).write("a/data.csv", b"h\n", b"r\n")


# -- the queue and the drainer ------------------------------------------------------------------------
def test_drainer_writes_batches_and_counts():
    sink, recorder = FlakySink(), Recorder()
    hub = make_hub(sink, recorder)
    put_rows(hub, 50)
    assert hub.flush(5)
    assert len(sink.lines()) == 50 and {block[1] for block in sink.blocks} == {
        b"$Timestamp,$CorrelationId,$RequestId,i\n"}
    assert recorder.collected == 50 and recorder.written == {"local": 50}
    hub.shutdown()


def test_an_outage_keeps_rows_within_the_bound_and_retries_with_backoff():
    sink, recorder = FlakySink(), Recorder()
    hub = make_hub(sink, recorder)
    sink.down.set()
    put_rows(hub, 40)
    wait_for(lambda: recorder.errors.get("local", 0) >= 3)
    assert recorder.queued == 40 and not sink.blocks
    errors = recorder.errors["local"]
    time.sleep(1.0)  # backoff: far fewer attempts than one per 0.05 s cycle
    assert recorder.errors["local"] - errors <= 3
    put_rows(hub, 10, start=40)
    sink.down.clear()
    wait_for(lambda: len(sink.lines()) == 50, timeout=10)
    assert [int(line.rsplit(",", 1)[1]) for line in sink.lines()] == list(range(50))
    assert recorder.written == {"local": 50} and not recorder.dropped
    hub.shutdown()


def test_a_full_queue_drops_and_counts_never_blocks():
    sink, recorder = FlakySink(), Recorder()
    hub = make_hub(sink, recorder, queue_bytes=4096, flush_interval_s=0.05)
    sink.down.set()
    started = time.perf_counter()
    put_rows(hub, 500)
    assert time.perf_counter() - started < 1.0
    wait_for(lambda: recorder.errors.get("local", 0) >= 1)
    put_rows(hub, 100, start=500)
    hub.flush(5)
    kept = int(recorder.queued)
    dropped = recorder.dropped.get("queue_full", 0)
    assert 0 < kept < 600 and dropped > 0 and kept + dropped == 600
    sink.down.clear()
    wait_for(lambda: len(sink.lines()) == kept, timeout=10)
    hub.shutdown()
    assert recorder.written == {"local": kept}


def test_shutdown_flushes_and_counts_what_it_cannot_write():
    sink, recorder = FlakySink(), Recorder()
    hub = make_hub(sink, recorder, flush_interval_s=60.0)
    put_rows(hub, 30)
    hub.shutdown()
    assert len(sink.lines()) == 30 and not recorder.dropped
    put_rows(hub, 1)  # after shutdown: dropped, counted
    assert recorder.dropped == {"shutdown": 1}

    sink2, recorder2 = FlakySink(), Recorder()
    hub2 = make_hub(sink2, recorder2, flush_interval_s=60.0)
    sink2.down.set()
    put_rows(hub2, 5)
    started = time.monotonic()
    hub2.shutdown(0.5)
    assert time.monotonic() - started < 3.0
    assert recorder2.dropped == {"shutdown": 5}


class ClosingFailsSink(FlakySink):
    def close(self):
        raise OSError("disk gone while closing")


def test_an_error_closing_a_sink_is_logged_not_swallowed():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("moma.runtime")
    logger.addHandler(handler)
    try:
        sink, recorder = ClosingFailsSink(), Recorder()
        hub = make_hub(sink, recorder)
        put_rows(hub, 3)
        hub.shutdown()
    finally:
        logger.removeHandler(handler)
    assert len(sink.lines()) == 3  # written before the close failed
    closing = [r for r in records if "closing the local sink failed" in r.getMessage()]
    assert closing and closing[0].exc_info and "disk gone" in str(closing[0].exc_info[1])


def test_the_policy_shapes_a_captured_request_per_target_on_its_own():
    context = ModelContext(service="svc-1", models=(ModelRef("m1", "iris", "3"),))
    policy = CapturePolicy(Encoder(), context, input_shape=IRIS_SHAPE)
    captured = Captured(0.0, "c1", "r1", b'{"input_df": [{"sl": 1, "sw": 2}]}', b"[0]")
    assert policy.shape(captured) == ([], 0)  # nothing to capture yet
    policy.capture_automatically(context.default_model())
    collected, failed = policy.shape(captured)
    assert failed == 0 and [c.target.identifier for c in collected] == ["inputs", "prediction"]
    assert [c.encoded.lines for c in collected] == [
        ["1970-01-01T00:00:00.000Z,c1,r1,1,2\n"], ["1970-01-01T00:00:00.000Z,c1,r1,0\n"]]
    policy.driver_collects("inputs")
    assert [c.target.identifier for c in policy.shape(captured)[0]] == ["prediction"]
    unshaped = Captured(0.0, "", "r2", b"{}", b"not json")
    assert policy.shape(unshaped) == ([], 1)


def test_sampling_is_decided_once_per_request():
    hub = make_hub(FlakySink(), Recorder(), sample_rate=0.3)
    ids = [f"{i:08x}-request" for i in range(20000)]
    kept = [rid for rid in ids if hub.sampled(rid)]
    assert 0.27 < len(kept) / len(ids) < 0.33
    assert all(hub.sampled(rid) for rid in kept)  # same answer every time
    hub.shutdown()


def test_collectors_are_noops_when_off_and_never_raise(tmp_path, monkeypatch):
    assert datacollection.configure(CollectionSettings()) is None
    collector = datacollection.ModelDataCollector("iris", identifier="inputs")
    collector.collect([1, 2, 3])  # nothing to do, nothing raised

    (tmp_path / "model_config_map.json").write_text(MODEL_MAP)
    recorder = Recorder()
    settings = CollectionSettings(storage_enabled=True, local_dir=str(tmp_path / "out"),
                                  service_name="svc-1", flush_interval_s=0.05)
    hub = datacollection.configure(settings, app_root=str(tmp_path), recorder=recorder)
    try:
        assert hub.capturing
        collector = datacollection.ModelDataCollector("iris", identifier="inputs",
                                                      feature_names=["a", "b"])
        policy = hub.policy
        assert policy.inputs_target is None and policy.prediction_target is not None
        collector.collect([1, 2], user_correlation_id="c1")
        collector.collect(object())  # unsupported: counted, not raised
        collector.collect(type("Bad", (), {"__module__": "pandas.x", "columns": 1,
                                           "to_numpy": lambda self, dtype: 1 / 0})())
        hub.flush(5)
        assert rows_in(tmp_path / "out", "inputs") == [[rows_in(tmp_path / "out", "inputs")[0][0],
                                                        "c1", "", "1", "2"]]
        assert recorder.dropped == {"unsupported": 1, "error": 1}
    finally:
        datacollection.configure(CollectionSettings())


def test_metrics_render_the_collection_counters(tmp_path):
    from runtime.metrics import Metrics, new_shared_memory

    board = new_shared_memory(str(tmp_path))
    try:
        metrics = Metrics(board)
        metrics.dc_collected(5)
        metrics.dc_written("blob", 4)
        metrics.dc_dropped("queue_full", 1)
        metrics.dc_sink_error("blob")
        metrics.dc_queued(7)
        text = metrics.render().decode()
    finally:
        board.close()
    assert prometheus_value(text, "moma_datacollection_rows_collected_total") == 5
    assert prometheus_value(text, "moma_datacollection_rows_written_total", {"sink": "blob"}) == 4
    assert prometheus_value(text, "moma_datacollection_rows_dropped_total",
                            {"reason": "queue_full"}) == 1
    assert prometheus_value(text, "moma_datacollection_sink_errors_total", {"sink": "blob"}) == 1
    assert prometheus_value(text, "moma_datacollection_queued_rows") == 7


def test_data_collection_imports_nothing_outside_runtime_and_azure_lazily():
    allowed = {"flask", "werkzeug", "gunicorn", "jsonschema", "prometheus_client"}
    for source in (REPO / "runtime" / "datacollection").glob("*.py"):
        for top, module_level in absolute_imports(source):
            if top == "azure":  # only inside functions, only in the blob sink
                assert source.name == "sinks.py" and not module_level, source.name
            else:
                assert top in sys.stdlib_module_names or top in allowed, (source.name, top)
    shim = (SHIMS / "azureml" / "datacollector.py").read_text()
    assert "from runtime.datacollection import ModelDataCollector" in shim


# -- real servers, local sink -----------------------------------------------------------------------
def burst(server, bodies, headers=None, threads: int = 8):
    def one(i_body):
        i, body = i_body
        extra = {"x-ms-client-request-id": f"client-{i}"} if headers else None
        response = server.score(body, headers=extra)
        assert response.status_code == 200, response.text
        return response.headers["x-ms-request-id"], response.json()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, enumerate(bodies)))


@pytest.mark.slow
def test_automatic_capture_writes_every_request_once_across_workers(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_auto.py", files={"model_config_map.json": MODEL_MAP},
                   **dc_env(out, WORKERS="2"))
    bodies = [{"data": [[i, 1, 2, 3]]} for i in range(200)]
    answers = burst(server, bodies, headers=True)
    wait_for(lambda: len(rows_in(out, "prediction")) == 200 and len(rows_in(out, "inputs")) == 200)

    [inputs_file] = day_files(out, "inputs")
    header, inputs = read_csv(inputs_file)
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "data"]
    by_request = {row[2]: row for row in inputs}
    assert set(by_request) == {request_id for request_id, _ in answers}
    for request_id, _ in answers:
        timestamp, correlation, _, data = by_request[request_id]
        assert correlation.startswith("client-")
        assert json.loads(data) == bodies[int(correlation.split("-")[1])]["data"]
        assert inputs_file.parent.relative_to(out / "modeldata" / PREFIX / "inputs").as_posix() \
            == timestamp[:10].replace("-", "/")
    header, predictions = read_csv(day_files(out, "prediction")[0])
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "prediction"]
    assert {(row[2], int(row[3])) for row in predictions} == \
        {(request_id, answer[0]) for request_id, answer in answers}
    assert inputs_file.read_text().count("$Timestamp") == 1

    metrics = server.get("/metrics").text
    assert prometheus_value(metrics, "moma_datacollection_rows_collected_total") == 400
    wait_for(lambda: prometheus_value(server.get("/metrics").text,
                                      "moma_datacollection_rows_written_total",
                                      {"sink": "local"}) == 400)
    assert prometheus_value(metrics, "moma_datacollection_rows_dropped_total",
                            {"reason": "queue_full"}) == 0


@pytest.mark.slow
def test_driver_collectors_by_the_original_import_path(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_collect.py", files={"model_config_map.json": MODEL_MAP}, **dc_env(out))
    answers = burst(server, [{"data": [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]],
                              "corr": f"c{i}"} for i in range(20)])
    wait_for(lambda: len(rows_in(out, "prediction")) == 40)
    wait_for(lambda: len(rows_in(out, "inputs")) == 40)

    header, inputs = read_csv(day_files(out, "inputs")[0])
    assert header == ["$Timestamp", "$CorrelationId", "$RequestId", "sepal_length",
                      "sepal_width", "petal_length", "petal_width"]
    assert sorted(row[3:] for row in inputs) == sorted(
        [["5.1", "3.5", "1.4", "0.2"], ["7.7", "3.0", "6.1", "2.3"]] * 20)
    header, predictions = read_csv(day_files(out, "prediction")[0])
    assert header[3:] == ["prediction"]
    assert {row[2] for row in predictions} == {request_id for request_id, _ in answers}
    assert sorted(row[3] for row in predictions) == ["0"] * 20 + ["1"] * 20
    assert {row[1] for row in predictions} == {f"c{i}" for i in range(20)}
    notes = rows_in(out, "notes", prefix="sub-1/rg-1/acct-1/svc-1/n1-notes-model-7")
    assert [row[1:] for row in notes] == [["", "", "init", "1"]]  # no request in init()
    metrics = server.get("/metrics").text
    assert prometheus_value(metrics, "moma_datacollection_rows_dropped_total",
                            {"reason": "unsupported"}) == 20


@pytest.mark.slow
def test_schema_inputs_are_captured_one_row_per_dataframe_row(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_schema.py", copy=("service_schema.json",),
                   files={"model_config_map.json": MODEL_MAP},
                   **dc_env(out, AML_MODEL_DC_DROP_FIELDS="sepal width (cm)",
                            AML_MODEL_DC_HASH_FIELDS="petal width (cm)",
                            AML_MODEL_DC_HASH_SALT="pepper"))
    rows = [{"petal width (cm)": 0.2, "sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
             "petal length (cm)": 1.4},
            {"sepal length (cm)": 4.9, "sepal width (cm)": 3.0, "petal length (cm)": 1.4,
             "petal width (cm)": 0.25}]
    response = server.score({"input_df": rows})
    assert response.status_code == 200 and json.loads(response.json()) == [1, 0]
    wait_for(lambda: len(rows_in(out, "prediction")) == 2)
    header, inputs = read_csv(day_files(out, "inputs")[0])
    assert header[3:] == ["sepal length (cm)", "petal length (cm)", "petal width (cm)"]
    assert [row[3:] for row in inputs] == [
        ["5.1", "1.4", hashlib.sha256(b"pepper0.2").hexdigest()],
        ["4.9", "1.4", hashlib.sha256(b"pepper0.25").hexdigest()]]
    assert [row[3] for row in rows_in(out, "prediction")] == ["1", "0"]


@pytest.mark.slow
def test_sigterm_flushes_what_the_workers_still_hold(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_auto.py", **dc_env(out, WORKERS="2", AML_MODEL_DC_FLUSH_INTERVAL_S="60"))
    answers = burst(server, [{"data": [[i, 0, 0, 0]]} for i in range(60)])
    prefix = "unknown/unknown/unknown/svc-1/unknown-unknown-unknown"
    assert rows_in(out, "inputs", prefix) == []  # nothing written yet: a 60 s interval
    assert server.stop() == 0
    assert {row[2] for row in rows_in(out, "inputs", prefix)} == {rid for rid, _ in answers}
    assert len(rows_in(out, "prediction", prefix)) == 60


@pytest.mark.slow
def test_a_full_queue_drops_and_counts(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_auto.py", files={"model_config_map.json": MODEL_MAP},
                   **dc_env(out, AML_MODEL_DC_FLUSH_INTERVAL_S="60",
                            AML_MODEL_DC_QUEUE_BYTES="2048"))
    burst(server, [{"data": [[i, 0, 0, 0]]} for i in range(50)], threads=4)
    metrics = server.get("/metrics").text
    dropped = prometheus_value(metrics, "moma_datacollection_rows_dropped_total",
                               {"reason": "queue_full"})
    assert server.stop() == 0
    kept = len(rows_in(out, "inputs"))
    assert kept > 0 and dropped > 0 and kept + dropped == 50
    assert len(rows_in(out, "prediction")) == kept


@pytest.mark.slow
def test_a_local_sink_outage_loses_nothing_within_the_bound(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_auto.py", files={"model_config_map.json": MODEL_MAP}, **dc_env(out))
    burst(server, [{"data": [[i, 0, 0, 0]]} for i in range(10)])
    wait_for(lambda: len(rows_in(out, "prediction")) == 10)
    (out / "modeldata").rename(out / "moved")  # the mount is gone: writes fail ENOTDIR
    (out / "modeldata").write_text("not a directory")
    burst(server, [{"data": [[i, 0, 0, 0]]} for i in range(10, 40)])
    wait_for(lambda: prometheus_value(server.get("/metrics").text,
                                      "moma_datacollection_sink_errors_total",
                                      {"sink": "local"}) >= 2)
    assert prometheus_value(server.get("/metrics").text,
                            "moma_datacollection_queued_rows") == 60
    (out / "modeldata").unlink()
    (out / "moved").rename(out / "modeldata")
    wait_for(lambda: len(rows_in(out, "prediction")) == 40 and len(rows_in(out, "inputs")) == 40,
             timeout=40)
    assert sorted(int(json.loads(row[3])[0][0]) for row in rows_in(out, "inputs")) == list(range(40))
    metrics = server.get("/metrics").text
    assert prometheus_value(metrics, "moma_datacollection_rows_dropped_total",
                            {"reason": "queue_full"}) == 0


@pytest.mark.slow
def test_sampling_keeps_inputs_and_predictions_of_the_same_requests_as_json_lines(serve, tmp_path):
    out = tmp_path / "collected"
    server = serve("dc_auto.py", files={"model_config_map.json": MODEL_MAP},
                   **dc_env(out, AML_MODEL_DC_SAMPLE_RATE="0.5", AML_MODEL_DC_FORMAT="jsonl"))
    answers = burst(server, [{"data": [[i, 0, 0, 0]]} for i in range(200)])
    server.stop()
    records = {}
    for identifier in ("inputs", "prediction"):
        [path] = day_files(out, identifier, name="data.jsonl")
        records[identifier] = [json.loads(line) for line in path.read_text().splitlines()]
    inputs = {r["requestId"] for r in records["inputs"]}
    assert inputs == {r["requestId"] for r in records["prediction"]}
    assert 50 < len(inputs) < 150 and inputs <= {rid for rid, _ in answers}
    first = records["inputs"][0]
    assert (first["modelId"], first["modelName"], first["modelVersion"], first["imageId"]) == \
        ("0123abcd", "iris", "3", "img-1")
    assert isinstance(first["data"]["data"], list)  # nested values stay JSON


@pytest.mark.slow
def test_debug_prints_rows_and_collection_is_off_by_default(serve, tmp_path):
    debug = serve("dc_auto.py", PYTHONPATH=PYTHONPATH, AML_MODEL_DC_DEBUG="true",
                  AML_MODEL_DC_FLUSH_INTERVAL_S="0.2")
    request_id = debug.score({"data": [[1, 2, 3, 4]]}).headers["x-ms-request-id"]
    wait_for(lambda: f"{request_id},0" in debug.stdout() and "[datacollection]" in debug.stdout())
    off = serve("dc_collect.py", PYTHONPATH=PYTHONPATH, AML_MODEL_DC_LOCAL_DIR=str(tmp_path / "o"))
    assert off.score({"data": [[1, 2, 3, 4]]}).json() == [0]
    off.stop()
    assert not (tmp_path / "o").exists()
