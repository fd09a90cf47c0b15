"""A Spark ML pipeline served by a SparkPython image: trained on the host with pyspark,
registered as a tar.gz unpacked into the image, built, run and scored over HTTP.

One image and one container serve the whole module: a JVM is slow to start."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from builder.manifest import load_manifest

from .conftest import RunningImage

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).parents[2] / "examples" / "spark-iris"
# The original runtime handed the driver these globals; init() fails without them.
GLOBALS_CHECK = '''

_original_init = init


def init():
    assert spark.sparkContext is sc and sc.master.startswith("local[")
    _original_init()
'''
# Run inside the image, as the services run it (read-only root, tmpfs /tmp): the example's
# pipeline saved again with each Parquet codec, loaded back and scored; which native
# codec libraries the JVM loaded (lz4-java falls back to Java code silently).
CODECS_ON_NOEXEC_TMP = '''
import json, os
from pyspark.ml import PipelineModel
from runtime.spark import build_session
from runtime.spark_resources import SparkResources

spark = build_session(SparkResources("local[1]", "512m"))
row = spark.createDataFrame([(5.1, 3.5, 1.4, 0.2)], ["sepal_length", "sepal_width", "petal_length", "petal_width"])
model = PipelineModel.load("iris_pipeline")
expected = model.transform(row).select("probability").first()[0]
scored, files = {}, {}
for codec in ("snappy", "zstd", "lz4"):
    spark.conf.set("spark.sql.parquet.compression.codec", codec)
    model.write().save(f"/tmp/saved-{codec}")
    loaded = PipelineModel.load(f"/tmp/saved-{codec}")
    scored[codec] = loaded.transform(row).select("probability").first()[0] == expected
    files[codec] = sorted(name for _, _, names in os.walk(f"/tmp/saved-{codec}") for name in names
                          if name.endswith(".parquet"))
jvm = spark._jvm
print(json.dumps({
    "tmp": [line.split()[3] for line in open("/proc/mounts") if line.split()[1] == "/tmp"],
    "scored": scored, "files": files,
    "lz4": str(jvm.net.jpountz.lz4.LZ4Factory.fastestInstance()),
    "zstd": jvm.com.github.luben.zstd.util.Native.isLoaded(),
    "snappy": jvm.org.xerial.snappy.Snappy.getNativeLibraryVersion(),
}))
'''


class SparkService:
    def __init__(self, running: RunningImage, image, first_request_s: float, ready_s: float) -> None:
        self.running = running
        self.url = running.url
        self.image = image
        self.first_request_s = first_request_s
        self.ready_s = ready_s

    def score(self, rows: list[dict]) -> requests.Response:
        return requests.post(self.url + "/score", json={"input_df": rows}, timeout=30)


@pytest.fixture(scope="module")
def spark_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("spark-iris")
    for name in ("score.py", "service_schema.json", "manifest.yml"):
        shutil.copy(EXAMPLE / name, project / name)
    with open(project / "score.py", "a", encoding="utf-8") as driver:
        driver.write(GLOBALS_CHECK)
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(project)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    return project


@pytest.fixture(scope="module")
def spark_service(builder, labels, spark_project: Path, docker_client) -> Iterator[SparkService]:
    from testcontainers.core.container import DockerContainer

    from builder.build import BuildOptions

    result = builder.build(load_manifest(spark_project / "manifest.yml"),
                           BuildOptions(labels=labels, name="spark-iris-test", tag="1"))
    container = (DockerContainer(result.reference).with_exposed_ports(5001)
                 .with_kwargs(labels=labels, mem_limit="2g", nano_cpus=2_000_000_000, read_only=True))
    container.tmpfs = {"/tmp": "rw,size=256m"}  # as the local engine runs services
    started = time.monotonic()
    container.start()
    try:
        running = RunningImage(container)
        deadline = started + 180
        while True:
            try:
                if requests.get(running.url + "/readyz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # the worker is still in init()
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the Spark service was not ready within 180 s:\n{running.logs()}")
            time.sleep(0.2)
        ready_s = time.monotonic() - started
        first = time.perf_counter()
        answer = requests.post(running.url + "/score", json={"input_df": [_rows(spark_project)[0]]}, timeout=30)
        first_request_s = time.perf_counter() - first
        assert answer.status_code == 200, answer.text
        yield SparkService(running, docker_client.images.get(result.reference), first_request_s, ready_s)
    finally:
        container.stop()


def _predictions(project: Path) -> list[dict]:
    return json.loads((project / "predictions.json").read_text(encoding="utf-8"))


def _rows(project: Path) -> list[dict]:
    return [entry["row"] for entry in _predictions(project)]


def test_the_first_request_after_ready_is_fast(spark_service: SparkService):
    assert spark_service.first_request_s < 1.0, (
        f"first request took {spark_service.first_request_s:.2f} s (ready after {spark_service.ready_s:.1f} s)")


def test_scores_match_the_pipelines_own_predictions(spark_service: SparkService, spark_project: Path):
    expected = _predictions(spark_project)[::15]  # 10 rows, every species
    answer = spark_service.score([entry["row"] for entry in expected])

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ms-run-function-failed"] == "False"
    got = answer.json()
    assert [row["prediction"] for row in got] == [entry["prediction"] for entry in expected]
    for row, entry in zip(got, expected):
        assert row["probability"] == pytest.approx(entry["probability"], abs=1e-9)


def test_a_large_batch_scores_too(spark_service: SparkService, spark_project: Path):
    expected = _predictions(spark_project) * 2  # 300 rows: past the local-relation path
    answer = spark_service.score([entry["row"] for entry in expected])

    assert answer.status_code == 200, answer.text
    assert [row["prediction"] for row in answer.json()] == [entry["prediction"] for entry in expected]


@pytest.mark.parametrize(("row", "field"), [
    ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": "x"}, "petal_width"),
    ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}, "petal_width"),
    ({"sepal_length": 5.1, "sepal_width": None, "petal_length": 1.4, "petal_width": 0.2}, "sepal_width"),
])
def test_a_bad_row_is_a_400_naming_the_field(spark_service: SparkService, spark_project: Path, row, field):
    good = _rows(spark_project)[0]
    answer = spark_service.score([good, row])

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "bad_input"
    assert field in answer.json()["message"] and "input_df/1" in answer.json()["message"]


def test_spark_sizes_itself_from_the_container(spark_service: SparkService):
    logs = spark_service.running.logs()
    assert "session local[2] started" in logs and "driver memory 1024m" in logs, logs[-3000:]
    assert "Spark warm-up done" in logs


def test_the_image_shows_its_spark_version(spark_service: SparkService):
    assert spark_service.image.labels["moma.spark-version"] == "4.3.0"


def test_models_saved_with_every_codec_load_on_a_noexec_tmp(spark_service: SparkService, docker_client, labels):
    output = docker_client.containers.run(
        spark_service.image.id, ["python", "-c", CODECS_ON_NOEXEC_TMP], labels=labels, remove=True,
        read_only=True, tmpfs={"/tmp": "rw,size=256m"}, mem_limit="2g", nano_cpus=2_000_000_000,
        stderr=False).decode()
    result = json.loads(output.strip().splitlines()[-1])

    assert ["noexec" in options.split(",") for options in result["tmp"]] == [True], result["tmp"]
    assert result["scored"] == {"snappy": True, "zstd": True, "lz4": True}, result
    for codec, names in result["files"].items():
        assert names and all(f".{codec}" in name for name in names), (codec, names)
    assert result["lz4"] == "LZ4Factory:JNI" and result["zstd"] is True and result["snappy"], result
