"""Spark inputs (schema type 2): JSON rows -> a Spark DataFrame with the schema's StructType.

The StructType comes from the input's swagger (``internal`` is a pickle and is never
read): an array of objects whose properties map to Spark types::

    integer            -> long      (format int32 -> int, int16 -> short, int8 -> byte)
    number             -> double    (format float -> float, decimal -> decimal(38,18))
    boolean            -> boolean
    string             -> string    (format date -> date, date-time -> timestamp,
                                     byte/binary -> binary from base64, decimal -> decimal(38,18))
    array              -> array of its items;  object -> struct of its properties
                                                 (or map<string,...> with additionalProperties)

A property's ``x-spark-type`` wins over this mapping: a Spark type name as in
``StructType.json()`` (``"decimal(10,2)"``, ``"timestamp"``) or the JSON of a complex
type. Fields are nullable unless listed in the object's ``required``.

Each row object is converted (ints to floats for float columns, ISO 8601 text to dates
and timestamps, numbers or text to Decimals that must fit their precision, base64 to
bytes), then checked with pyspark's own verifier (what ``verifySchema=True`` runs), so
a bad row is answered 400 naming the input, the row and the field:
``input_df/1/petal_width: DoubleType() can not accept object 'x' ...``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
from collections.abc import Callable, Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .errors import BadInput, SchemaError

Convert = Callable[[Any], Any]
DEFAULT_DECIMAL = T.DecimalType(38, 18)
_INTEGERS: dict[str | None, type[T.DataType]] = {
    "int8": T.ByteType, "int16": T.ShortType, "int32": T.IntegerType, "int64": T.LongType}
_TEXT_FORMATS: dict[str | None, type[T.DataType]] = {
    "date": T.DateType, "date-time": T.TimestampType, "byte": T.BinaryType, "binary": T.BinaryType}


class FieldError(ValueError):
    """A value that does not fit its field; ``path`` leads to it inside the row."""

    def __init__(self, path: list[str], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# -- swagger -> StructType ---------------------------------------------------------------------
def struct_from_swagger(swagger: Mapping[str, Any], name: str) -> T.StructType:
    """The StructType of a type 2 input whose swagger is an array of row objects."""
    items = swagger.get("items") if swagger.get("type") == "array" else None
    if not isinstance(items, Mapping) or not isinstance(items.get("properties"), Mapping) \
            or not items["properties"]:
        raise SchemaError(f"input {name!r} has type 2 (spark) but its swagger is not an array "
                          f"of objects with properties")
    data_type = data_type_from_swagger(items, name)
    assert isinstance(data_type, T.StructType)
    return data_type


def data_type_from_swagger(swagger: Mapping[str, Any], where: str) -> T.DataType:
    explicit = swagger.get("x-spark-type")
    if explicit is not None:
        try:
            return T._parse_datatype_json_value(explicit)
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise SchemaError(f"{where}: x-spark-type {explicit!r} is not a Spark type: {exc}") from exc
    kind = swagger.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    fmt = swagger.get("format")
    if kind == "integer":
        return _INTEGERS.get(fmt, T.LongType)()
    if kind == "number":
        return T.FloatType() if fmt == "float" else DEFAULT_DECIMAL if fmt == "decimal" else T.DoubleType()
    if kind == "boolean":
        return T.BooleanType()
    if kind == "string":
        return DEFAULT_DECIMAL if fmt == "decimal" else _TEXT_FORMATS.get(fmt, T.StringType)()
    if kind == "array":
        items = swagger.get("items")
        element = data_type_from_swagger(items, f"{where}/items") if isinstance(items, Mapping) \
            else T.StringType()
        return T.ArrayType(element, containsNull=True)
    if kind == "object":
        properties = swagger.get("properties")
        if isinstance(properties, Mapping) and properties:
            required = set(swagger.get("required") or ())
            return T.StructType([
                T.StructField(field, data_type_from_swagger(sub, f"{where}/{field}"),
                              nullable=field not in required)
                for field, sub in properties.items() if isinstance(sub, Mapping)])
        values = swagger.get("additionalProperties")
        if isinstance(values, Mapping):
            return T.MapType(T.StringType(), data_type_from_swagger(values, f"{where}/*"))
    raise SchemaError(f"{where}: cannot map swagger type {kind!r} (format {fmt!r}) to a Spark "
                      f"type; give the property an x-spark-type")


# -- JSON values -> values pyspark accepts -----------------------------------------------------
def converter_for(data_type: T.DataType) -> Convert:
    """A function turning one JSON value into what ``data_type`` accepts (None stays None;
    values of the wrong kind pass through for the verifier to name)."""
    if isinstance(data_type, (T.DoubleType, T.FloatType)):
        return _to_float
    if isinstance(data_type, T.DecimalType):
        return _decimal_converter(data_type)
    if isinstance(data_type, T.TimestampType):
        return _to_timestamp
    if isinstance(data_type, T.TimestampNTZType):
        return _to_naive_timestamp
    if isinstance(data_type, T.DateType):
        return _to_date
    if isinstance(data_type, T.BinaryType):
        return _to_bytes
    if isinstance(data_type, T.ArrayType):
        element = converter_for(data_type.elementType)

        def convert_array(value: Any) -> Any:
            if type(value) is not list:
                return value
            return [_at(element, item, str(index)) for index, item in enumerate(value)]
        return convert_array
    if isinstance(data_type, T.MapType):
        value_of = converter_for(data_type.valueType)

        def convert_map(value: Any) -> Any:
            if type(value) is not dict:
                return value
            return {key: _at(value_of, item, str(key)) for key, item in value.items()}
        return convert_map
    if isinstance(data_type, T.StructType):
        return struct_converter(data_type)
    return _identity


def struct_converter(struct: T.StructType) -> Convert:
    """A JSON object -> a tuple in field order (missing keys -> None)."""
    fields = [(field.name, converter_for(field.dataType)) for field in struct.fields]

    def convert_struct(value: Any) -> Any:
        if type(value) is not dict:
            return value
        return tuple(_at(convert, value.get(name), name) for name, convert in fields)
    return convert_struct


def _at(convert: Convert, value: Any, step: str) -> Any:
    try:
        return convert(value)
    except FieldError as exc:
        raise FieldError([step, *exc.path], exc.message) from exc
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise FieldError([step], str(exc)) from exc


def _identity(value: Any) -> Any:
    return value


def _to_float(value: Any) -> Any:
    return float(value) if type(value) is int else value


def _decimal_converter(data_type: T.DecimalType) -> Convert:
    precision, scale = data_type.precision, data_type.scale
    quantum = decimal.Decimal(1).scaleb(-scale)
    # quantize() under a context of the field's precision fails when more digits are needed
    context = decimal.Context(prec=precision, traps=[decimal.InvalidOperation])

    def convert(value: Any) -> Any:
        if type(value) not in (int, float, str):
            return value
        try:
            exact = decimal.Decimal(value if type(value) is not float else repr(value))
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not exact.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal number")
        try:
            rounded = exact.quantize(quantum, rounding=decimal.ROUND_HALF_UP, context=context)
        except decimal.InvalidOperation:
            raise ValueError(f"{value!r} does not fit decimal({precision},{scale})") from None
        return rounded
    return convert


def _to_date(value: Any) -> Any:
    if type(value) is not str:
        return value
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


def _to_timestamp(value: Any) -> Any:
    if type(value) is not str:
        return value
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None


def _to_naive_timestamp(value: Any) -> Any:
    converted = _to_timestamp(value)
    if isinstance(converted, datetime.datetime) and converted.tzinfo is not None:
        raise ValueError(f"{value!r} has a time zone; the field is timestamp_ntz")
    return converted


def _to_bytes(value: Any) -> Any:
    if type(value) is not str:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("is not valid base64") from None


# -- verified values -> canonical JSON, for the local DataFrame -------------------------------
def jsonable_for(data_type: T.DataType) -> Convert:
    """The inverse of ``converter_for``: a verified value as JSON Spark parses back exactly
    (ISO 8601 dates and timestamps, decimals as text, binary as base64, structs as objects)."""
    if isinstance(data_type, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        return _iso
    if isinstance(data_type, T.DecimalType):
        return _text
    if isinstance(data_type, T.BinaryType):
        return _base64
    if isinstance(data_type, T.ArrayType):
        element = jsonable_for(data_type.elementType)
        if element is _identity:
            return _identity
        return lambda value: None if value is None else [element(item) for item in value]
    if isinstance(data_type, T.MapType):
        value_of = jsonable_for(data_type.valueType)
        if value_of is _identity:
            return _identity
        return lambda value: None if value is None else {k: value_of(v) for k, v in value.items()}
    if isinstance(data_type, T.StructType):
        names = [field.name for field in data_type.fields]
        fields = [jsonable_for(field.dataType) for field in data_type.fields]
        if all(f is _identity for f in fields):
            return lambda value: None if value is None else dict(zip(names, value))
        return lambda value: None if value is None else {
            name: convert(item) for name, convert, item in zip(names, fields, value)}
    return _identity


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _base64(value: Any) -> Any:
    return None if value is None else base64.b64encode(value).decode("ascii")


# -- the input ----------------------------------------------------------------------------------
LOCAL_ROWS = 256


class SparkInput:
    """Builds the DataFrame of one type 2 input from its JSON rows.

    Up to ``LOCAL_ROWS`` rows (the usual scoring request) become a local relation: the
    verified rows as JSON text in a ``Dataset[String]`` parsed by ``from_json`` with the
    StructType. Spark then evaluates the model's projections on the driver without
    scheduling a job; ``createDataFrame`` (a parallelized RDD) costs a job or two per
    request, several times the latency for one row. Larger batches use
    ``createDataFrame``, whose RDD Spark spreads over its cores.
    """

    def __init__(self, name: str, struct: T.StructType,
                 session: Callable[[], SparkSession]) -> None:
        self.name = name
        self.struct = struct
        self.session = session
        self._convert = struct_converter(struct)
        # What createDataFrame(verifySchema=True) runs, per field: its range errors name no field.
        self._verifiers = [(field.name, T._make_type_verifier(field.dataType, field.nullable, name=field.name))
                           for field in struct.fields]
        self._jsonable = jsonable_for(struct)
        self._dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=True).encode
        self._plan: _LocalPlan | None = None

    def rows(self, value: Any) -> list[tuple[Any, ...]]:
        """Converted and verified rows; BadInput naming the row and field otherwise."""
        if type(value) is not list:
            raise BadInput(f"{self.name}: expected a list of row objects")
        rows = []
        for index, item in enumerate(value):
            if type(item) is not dict:
                raise BadInput(f"{self.name}/{index}: expected a row object")
            try:
                row = self._convert(item)
            except FieldError as exc:
                raise BadInput(f"{self.name}/{index}/{'/'.join(exc.path)}: {exc.message}") from None
            for (field, verify), item in zip(self._verifiers, row):
                try:
                    verify(item)
                except (TypeError, ValueError) as exc:
                    raise BadInput(f"{self.name}/{index}/{field}: {_verifier_message(exc, field)}") from None
            rows.append(row)
        return rows

    def __call__(self, value: Any) -> DataFrame:
        rows = self.rows(value)
        if len(rows) > LOCAL_ROWS:
            return self.session().createDataFrame(rows, self.struct, verifySchema=False)
        return self.local_frame(rows)

    def local_frame(self, rows: list[tuple[Any, ...]]) -> DataFrame:
        session = self.session()
        plan = self._local_plan(session)
        jsonable, dumps = self._jsonable, self._dumps
        lines = [dumps(jsonable(row)) for row in rows]
        dataset = session._jsparkSession.createDataset(lines, plan.encoder)
        return DataFrame(dataset.select(plan.columns), session)

    def _local_plan(self, session: SparkSession) -> "_LocalPlan":
        """The JVM objects every local frame of this input uses, made once per session:
        each costs py4j round trips (class lookups, conversions) that requests need not pay."""
        plan = self._plan
        if plan is None or plan.session is not session:
            plan = self._plan = _LocalPlan(session, self.struct)
        return plan


class _LocalPlan:
    """The string encoder and the columns of a local frame, on the JVM: each field of
    ``from_json(value)`` (FAILFAST: rows were verified already, a row Spark still cannot
    parse is an error, not nulls) under its name, in one projection."""

    def __init__(self, session: SparkSession, struct: T.StructType) -> None:
        jvm = session._jvm
        if jvm is None:
            raise RuntimeError("the Spark session has no JVM gateway")
        self.session = session
        self.encoder = jvm.org.apache.spark.sql.Encoders.STRING()
        parse = F.from_json("value", struct, {"mode": "FAILFAST"})
        self.columns = jvm.PythonUtils.toSeq([parse.getField(name).alias(name)._jc for name in struct.names])


def _verifier_message(exc: BaseException, field: str) -> str:
    """pyspark words it ``[ERROR_CLASS] field <field>: message``; keep the message."""
    text = str(exc).strip()
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    prefix = f"field {field}: "
    return text[len(prefix):] if text.startswith(prefix) else text
