"""The SparkPython runtime's life cycle: globals before the driver's first line, the
warm-up before readiness, a session that cannot start, and a real gunicorn worker with
a local SparkSession answering a raw-body request with a DataFrame."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runtime.driver import Driver, Lifecycle, State

from .conftest import REPO

DRIVER = '''
order = [injected]


def init():
    order.append("init")


def run(raw):
    return raw
'''


def test_the_driver_sees_the_globals_and_the_warm_up_runs_before_ready(tmp_path: Path):
    (tmp_path / "score.py").write_text(DRIVER)
    driver, lifecycle = Driver(str(tmp_path / "score.py"), str(tmp_path), namespace={"injected": "spark"}), Lifecycle()
    states = []
    driver.load(lifecycle, after_init=lambda loaded: states.append((lifecycle.state, loaded.run("x"))))

    assert driver.module.order == ["spark", "init"]
    assert states == [(State.STARTING, "x")] and lifecycle.state is State.READY


def test_a_failing_warm_up_fails_the_worker(tmp_path: Path):
    (tmp_path / "score.py").write_text(DRIVER)
    driver, lifecycle = Driver(str(tmp_path / "score.py"), str(tmp_path), namespace={"injected": 1}), Lifecycle()

    def warm_up(_driver: Driver) -> None:
        raise RuntimeError("no executor")

    driver.load(lifecycle, after_init=warm_up)
    assert lifecycle.state is State.FAILED and driver.run is None
    assert lifecycle.reason == "driver warm-up failed: RuntimeError: no executor"


@pytest.mark.slow
def test_without_java_the_service_reports_why(serve):
    server = serve("ok.py", wait="/livez", MOMA_RUNTIME_TYPE="SparkPython", JAVA_HOME="/nonexistent")
    server.wait("/readyz", 503, timeout=60)
    answer = server.get("/readyz")
    assert answer.json()["state"] == "failed"
    assert answer.json()["message"].startswith("Spark session failed to start: ")


@pytest.mark.slow
def test_a_raw_body_driver_answers_with_a_data_frame_and_collects_it(serve, tmp_path: Path):
    out = tmp_path / "collected"
    server = serve("spark_raw.py", wait=None, MOMA_RUNTIME_TYPE="SparkPython", SPARK_MASTER="local[1]",
                   SPARK_DRIVER_MEMORY="512m", AML_MODEL_DC_STORAGE_ENABLED="true",
                   AML_MODEL_DC_LOCAL_DIR=str(out), AML_MODEL_DC_FLUSH_INTERVAL_S="0.2",
                   PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'runtime' / 'shims'}")
    server.wait("/readyz", 200, timeout=120)
    answer = server.score({"n": 3})

    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 0, "twice": 0, "text": "0"}, {"id": 1, "twice": 2, "text": "1"},
                             {"id": 2, "twice": 4, "text": "2"}]
    assert "session local[1] started" in server.stderr() and "driver memory 512m" in server.stderr()
    deadline = time.monotonic() + 10
    while not _collected(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    [collected] = _collected(out)
    lines = collected.read_text().splitlines()
    assert lines[0].endswith("id,twice,text") and [line.split(",")[-3:] for line in lines[1:]] == \
        [["0", "0", "0"], ["1", "2", "1"], ["2", "4", "2"]]
    over_oip = server.request("POST", "/v2/models/model/infer", json_body={
        "inputs": [{"name": "n", "shape": [], "datatype": "INT64", "data": [3]}]})
    assert over_oip.status_code == 200, over_oip.text
    [rows] = over_oip.json()["outputs"]
    assert (rows["name"], rows["datatype"], rows["shape"]) == ("predict", "BYTES", [3])
    assert [json.loads(row) for row in rows["data"]] == answer.json(), "a DataFrame: one JSON row each"


def _collected(out: Path) -> list[Path]:
    """The driver's collector's file: .../<...>-spark-model-<...>/outputs/<date>/data.csv."""
    return [path for path in out.rglob("*.csv") if "spark-model" in str(path) and "/outputs/" in str(path)]
