"""Spark inputs and outputs on the host, with pyspark and one local SparkSession:
swagger -> StructType, JSON rows -> verified rows -> DataFrame, Spark values -> JSON."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import warnings
from collections.abc import Iterator

import pytest

from runtime.errors import BadInput, SchemaError

with warnings.catch_warnings():  # pyspark warns that it does not know pandas 3 yet
    warnings.simplefilter("ignore", FutureWarning)
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import Row, SparkSession
    from pyspark.sql import types as T

    from runtime import encoding, spark_encoding
    from runtime.spark import build_session
    from runtime.spark_resources import SparkResources
    from runtime.spark_rows import SparkInput, data_type_from_swagger, struct_from_swagger

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

RICH = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "integer", "format": "int32"},
            "count": {"type": "integer"},
            "score": {"type": "number"},
            "ratio": {"type": "number", "format": "float"},
            "ok": {"type": "boolean"},
            "name": {"type": "string"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "price": {"type": "number", "x-spark-type": "decimal(10,2)"},
            "blob": {"type": "string", "format": "byte"},
            "values": {"type": "array", "items": {"type": "number"}},
            "point": {"type": "object", "properties": {"x": {"type": "number"},
                                                       "when": {"type": "string", "format": "date"}}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}
RICH_ROW = {"id": 7, "count": 2**40, "score": 3, "ratio": 0.5, "ok": True, "name": "é\n\"q\"",
            "day": "2024-02-29", "at": "2024-02-29T12:30:45.123456+00:00", "price": 1234.5,
            "blob": base64.b64encode(b"\x00\xffbytes").decode(), "values": [1, 2.5],
            "point": {"x": 1, "when": "2020-01-01"}, "tags": {"a": "b"}}


@pytest.fixture(scope="module")
def session() -> Iterator[SparkSession]:
    spark = build_session(SparkResources("local[1]", "512m"))
    yield spark
    spark.stop()


def rich_input(session: SparkSession | None = None) -> SparkInput:
    return SparkInput("input_df", struct_from_swagger(RICH, "input_df"), lambda: session)


# -- swagger -> StructType (no JVM) ----------------------------------------------------------
def test_swagger_maps_to_spark_types():
    struct = struct_from_swagger(RICH, "input_df")
    types = {field.name: field.dataType for field in struct.fields}
    assert types["id"] == T.IntegerType() and not struct["id"].nullable
    assert types["count"] == T.LongType() and struct["count"].nullable
    assert types["score"] == T.DoubleType() and types["ratio"] == T.FloatType()
    assert types["day"] == T.DateType() and types["at"] == T.TimestampType()
    assert types["price"] == T.DecimalType(10, 2) and types["blob"] == T.BinaryType()
    assert types["values"] == T.ArrayType(T.DoubleType())
    assert types["point"] == T.StructType([T.StructField("x", T.DoubleType()),
                                           T.StructField("when", T.DateType())])
    assert types["tags"] == T.MapType(T.StringType(), T.StringType())


@pytest.mark.parametrize("swagger", [{"type": "object", "properties": {"a": {"type": "number"}}},
                                     {"type": "array", "items": {"type": "number"}}])
def test_a_spark_input_must_be_an_array_of_row_objects(swagger):
    with pytest.raises(SchemaError, match="array of objects with properties"):
        struct_from_swagger(swagger, "df")


def test_unmappable_types_ask_for_x_spark_type():
    with pytest.raises(SchemaError, match="x-spark-type"):
        data_type_from_swagger({"type": "string", "format": "decimal", "x-spark-type": "nonsense(1"}, "df/a")
    with pytest.raises(SchemaError, match="give the property an x-spark-type"):
        data_type_from_swagger({}, "df/a")


# -- JSON rows -> verified rows (no JVM) -------------------------------------------------------
def test_rows_are_converted_to_what_spark_accepts():
    [row] = rich_input().rows([RICH_ROW])
    by_name = dict(zip([f.name for f in rich_input().struct.fields], row))
    assert by_name["score"] == 3.0 and type(by_name["score"]) is float
    assert by_name["day"] == datetime.date(2024, 2, 29)
    assert by_name["at"] == datetime.datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=datetime.timezone.utc)
    assert by_name["price"] == decimal.Decimal("1234.50")
    assert by_name["blob"] == b"\x00\xffbytes"
    assert by_name["values"] == [1.0, 2.5] and by_name["point"] == (1.0, datetime.date(2020, 1, 1))


@pytest.mark.parametrize(("change", "message"), [
    ({"score": "x"}, r"input_df/1/score: .*can not accept object 'x'"),
    ({"id": None}, r"input_df/1/id: .*not nullable"),
    ({"id": 2**31}, r"input_df/1/id: .*must be between -2147483648 and 2147483647"),
    ({"day": "29.02.2024"}, r"input_df/1/day: '29.02.2024' is not an ISO 8601 date"),
    ({"at": "noon"}, r"input_df/1/at: 'noon' is not an ISO 8601 date-time"),
    ({"price": 123456789.5}, r"input_df/1/price: 123456789.5 does not fit decimal\(10,2\)"),
    ({"price": "abc"}, r"input_df/1/price: 'abc' is not a decimal number"),
    ({"blob": "***"}, r"input_df/1/blob: is not valid base64"),
    ({"values": [1, "two"]}, r"input_df/1/values"),
    ({"point": {"x": 1, "when": "yesterday"}}, r"input_df/1/point/when: 'yesterday' is not an ISO 8601 date"),
])
def test_a_bad_row_names_the_row_and_the_field(change, message):
    with pytest.raises(BadInput, match=message):
        rich_input().rows([RICH_ROW, {**RICH_ROW, **change}])


def test_the_input_must_be_a_list_of_objects():
    with pytest.raises(BadInput, match="input_df: expected a list of row objects"):
        rich_input().rows({"id": 1})
    with pytest.raises(BadInput, match="input_df/0: expected a row object"):
        rich_input().rows([[1, 2]])


# -- rows -> DataFrame (JVM) -------------------------------------------------------------------
def test_the_local_frame_holds_what_create_data_frame_would(session):
    spark_input = rich_input(session)
    rows = spark_input.rows([RICH_ROW, {"id": 1}])
    local = spark_input.local_frame(rows)
    reference = session.createDataFrame(rows, spark_input.struct, verifySchema=True)
    assert [f.dataType for f in local.schema.fields] == [f.dataType for f in spark_input.struct.fields]
    assert local.collect() == reference.collect()
    assert "LocalTableScan" in local._jdf.queryExecution().executedPlan().toString()


def test_large_batches_use_create_data_frame(session):
    spark_input = rich_input(session)
    frame = spark_input([{"id": index, "score": index / 2} for index in range(300)])
    assert frame.count() == 300 and frame.agg({"score": "sum"}).first()[0] == sum(i / 2 for i in range(300))


# -- Spark values -> JSON ----------------------------------------------------------------------
def test_frames_rows_and_vectors_encode_as_objects(session):
    frame = session.createDataFrame([(1, Vectors.dense([0.5, 0.5]), bytearray(b"\x01"))], ["a", "v", "b"])
    assert spark_encoding.to_plain(frame) == [{"a": 1, "v": [0.5, 0.5], "b": "AQ=="}]
    assert spark_encoding.to_plain(frame.collect()) == [{"a": 1, "v": [0.5, 0.5], "b": "AQ=="}]
    assert spark_encoding.to_plain(Row(x=Row(y=Vectors.sparse(3, [1], [2.0])))) == {"x": {"y": [0.0, 2.0, 0.0]}}
    encoding.register_prepare(spark_encoding.to_plain)
    try:
        assert json.loads(encoding.encode_output(frame.first())) == {"a": 1, "v": [0.5, 0.5], "b": "AQ=="}
        assert json.loads(encoding.encode_output("text")) == "text"
    finally:
        encoding.register_prepare(None)


def test_a_failing_lazy_frame_is_a_bad_output(session):
    frame = session.sql("SELECT assert_true(false, 'boom') AS a")
    with pytest.raises(ValueError, match="computing the returned Spark DataFrame failed"):
        spark_encoding.to_plain(frame)


def test_data_collection_gets_names_and_plain_rows(session):
    frame = session.createDataFrame([(1, Vectors.dense([1.0]))], ["a", "v"])
    assert spark_encoding.shape_rows(frame, None) == (["a", "v"], [[1, [1.0]]])
    assert spark_encoding.shape_rows(frame, ["x", "y"])[0] == ["x", "y"]
