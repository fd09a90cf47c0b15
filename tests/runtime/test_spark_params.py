"""A fitted pipeline's parameters stay on the JVM between transforms (``spark_params``),
with predictions identical to pyspark's own ``PipelineModel.transform``: the iris
pipeline of the Spark example, trained, saved and loaded here on one local session."""

from __future__ import annotations

import importlib.util
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # pyspark warns that it does not know pandas 3 yet
    warnings.simplefilter("ignore", FutureWarning)
    from py4j import clientserver, java_gateway, protocol
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import DataFrame, SparkSession

    from runtime import spark_params
    from runtime.spark import build_session
    from runtime.spark_resources import SparkResources
    from runtime.spark_rows import LOCAL_ROWS, SparkInput, struct_from_swagger

EXAMPLE = Path(__file__).parents[2] / "examples" / "spark-iris"
_spec = importlib.util.spec_from_file_location("spark_iris_train", EXAMPLE / "train.py")
assert _spec is not None and _spec.loader is not None
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)
COLUMNS, iris_rows = train.COLUMNS, train.iris_rows
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),  # py4j's sockets, as in test_spark_rows
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

SWAGGER = {"type": "array", "items": {"type": "object", "required": COLUMNS,
                                      "properties": {c: {"type": "number"} for c in COLUMNS}}}
OUTPUTS = ("features", "rawPrediction", "probability", "prediction")


# -- comparing parameters (no JVM) -------------------------------------------------------------
class Stage:
    def __init__(self, values: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
        self._paramMap = {Named(k): v for k, v in values.items()}
        self._defaultParamMap = {Named(k): v for k, v in (defaults or {}).items()}


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def test_parameters_compare_by_type_and_value():
    frozen = spark_params._frozen_params
    assert frozen(Stage({"a": 1, "b": ["x", "y"]}, {"c": 0.5})) == frozen(Stage({"b": ["x", "y"], "a": 1}, {"c": 0.5}))
    assert frozen(Stage({"a": 1})) != frozen(Stage({"a": 1.0})) != frozen(Stage({"a": True}))
    assert frozen(Stage({"a": [1]})) != frozen(Stage({"a": (1,)}))
    assert frozen(Stage({"a": 1})) != frozen(Stage({}, {"a": 1}))


def test_a_value_that_cannot_be_compared_exactly_is_pushed_every_time():
    assert spark_params._frozen_params(Stage({"initial": Vectors.dense([1.0])})) is None


# -- on the JVM --------------------------------------------------------------------------------
class Py4jCalls:
    """The commands sent to the JVM, but for the memory commands py4j sends when Python's
    garbage collector frees a Java object's proxy, whenever that happens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for connection in (clientserver.ClientServerConnection, java_gateway.GatewayConnection):
            original = connection.send_command

            def counted(this: Any, command: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                if not command.startswith(protocol.MEMORY_COMMAND_NAME):
                    self.count += 1
                return _original(this, command, *args, **kwargs)
            monkeypatch.setattr(connection, "send_command", counted)


@pytest.fixture(scope="module")
def session() -> Iterator[SparkSession]:
    spark = build_session(SparkResources("local[1]", "512m"))
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def saved(session: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> str:
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=COLUMNS, outputCol="features"),
                                LogisticRegression(maxIter=100, regParam=0.01)])
    path = str(tmp_path_factory.mktemp("pipeline") / "iris_pipeline")
    pipeline.fit(session.createDataFrame(iris_rows())).write().save(path)
    return path


@pytest.fixture
def installed() -> Iterator[None]:
    spark_params.install()
    yield
    spark_params.uninstall()


def rows() -> list[dict[str, float]]:
    """The iris rows and 600 more: random, extreme, integral, negative, tiny."""
    generator = random.Random(19)
    extra = [{c: generator.uniform(-10, 20) for c in COLUMNS} for _ in range(450)]
    extra += [{c: generator.choice([0.0, -0.0, 1e-300, -1e300, 1e300, 7.0, 2.5e-8]) for c in COLUMNS}
              for _ in range(150)]
    return [{c: row[c] for c in COLUMNS} for row in iris_rows()] + extra


def scored(model: PipelineModel, session: SparkSession, values: list[dict[str, float]]) -> list[tuple]:
    """Every output column of every row, through the runtime's local frames (the
    one-request path) in requests of up to LOCAL_ROWS rows."""
    frames = SparkInput("input_df", struct_from_swagger(SWAGGER, "input_df"), lambda: session)
    result = []
    for start in range(0, len(values), LOCAL_ROWS):
        frame: DataFrame = model.transform(frames(values[start:start + LOCAL_ROWS]))
        result += [tuple(row) for row in frame.select(*OUTPUTS).collect()]
    return result


@pytest.mark.slow
def test_predictions_are_those_of_pysparks_own_transform(session: SparkSession, saved: str):
    values = rows()
    expected = scored(PipelineModel.load(saved), session, values)
    spark_params.install()
    try:
        model = PipelineModel.load(saved)
        first, again = scored(model, session, values), scored(model, session, values)
    finally:
        spark_params.uninstall()

    assert len(expected) == 750 and first == expected and again == expected
    one_by_one = [row for value in values[::25] for row in scored(model, session, [value])]
    assert one_by_one == expected[::25]


@pytest.mark.slow
def test_a_loaded_pipeline_pushes_its_parameters_once(session: SparkSession, saved: str, installed,
                                                      monkeypatch: pytest.MonkeyPatch):
    model = PipelineModel.load(saved)
    frame = SparkInput("input_df", struct_from_swagger(SWAGGER, "input_df"), lambda: session)(rows()[:1])
    calls = Py4jCalls(monkeypatch)
    model.transform(frame)
    first = calls.count
    model.transform(frame)

    assert first > 40, first
    assert calls.count - first == 2, "one transform call per stage, no parameter pushed"


@pytest.mark.slow
def test_a_changed_parameter_is_pushed(session: SparkSession, saved: str, installed):
    model = PipelineModel.load(saved)
    frame = SparkInput("input_df", struct_from_swagger(SWAGGER, "input_df"), lambda: session)(rows()[:3])
    classifier = model.stages[-1]
    assert "prediction" in model.transform(frame).columns

    classifier.setPredictionCol("species")
    assert "species" in model.transform(frame).columns and "prediction" not in model.transform(frame).columns
    classifier.setPredictionCol("prediction")
    assert "prediction" in model.transform(frame).columns

    copied = model.stages[0].transform(frame)
    assert "p" in classifier.transform(copied, {classifier.probabilityCol: "p"}).columns
    assert "probability" in model.transform(frame).columns, "the copy's parameter stays with the copy"
