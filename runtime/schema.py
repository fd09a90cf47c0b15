"""The original ``service_schema.json``: validate request bodies and build run() arguments.

The file written by the 2017 ``generate_schema`` looks like::

    {"input": {"input_df": {"internal": "<base64 pickle>", "type": 3,
                            "swagger": {"type": "array", "items": {...}, "example": [...]}}},
     "output": {...same shape, optional...}}

Only the ``swagger`` parts are used. ``internal`` is a pickle and is NEVER unpickled
(unpickling runs arbitrary code); this module does not import ``pickle`` at all.

Input types: 0 standard (the JSON value as it is), 1 numpy (``numpy.asarray`` with the
dtype of the innermost swagger item), 2 Spark (a DataFrame built by the SparkPython
runtime's ``spark_rows.py``, passed in as ``spark``; without it the schema is refused
so the service reports FAILED), 3 pandas (``pandas.DataFrame`` with the
swagger item properties as columns, in their declared order, cast to their types).
numpy and pandas are imported when a schema needs them, once, at start-up.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from .errors import BadInput, SchemaError

STANDARD, NUMPY, SPARK, PANDAS = 0, 1, 2, 3
_TYPE_NAMES = {STANDARD: "standard", NUMPY: "numpy", SPARK: "spark", PANDAS: "pandas"}

# swagger (type, format) -> numpy dtype name
_NUMPY_DTYPES: dict[tuple[str | None, str | None], str] = {
    ("number", "float"): "float32",
    ("number", "double"): "float64",
    ("number", None): "float64",
    ("integer", "int32"): "int32",
    ("integer", "int64"): "int64",
    ("integer", None): "int64",
    ("boolean", None): "bool",
    ("string", None): "object",
}


def swagger_dtype(swagger: Mapping[str, Any]) -> str | None:
    """The numpy dtype for one swagger scalar schema (None when it has no fixed type)."""
    kind = swagger.get("type")
    if isinstance(kind, list):  # e.g. ["number", "null"]
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    fmt = swagger.get("format")
    if kind == "string" and fmt in ("date-time", "date", "timedelta"):
        return None  # leave text; pandas would need the pickle's exact dtype
    return _NUMPY_DTYPES.get((kind, fmt)) or _NUMPY_DTYPES.get((kind, None))


@dataclasses.dataclass(frozen=True)
class InputSpec:
    name: str
    kind: int
    swagger: dict[str, Any]


# Builds the converter of a type 2 input (SparkPython only): JSON rows -> DataFrame.
SparkConverters = Callable[[InputSpec], Callable[[Any], Any]]


class ServiceSchema:
    """Parsed schema: a precompiled validator and one converter per input."""

    def __init__(self, inputs: list[InputSpec], output: dict[str, Any] | None,
                 spark: SparkConverters | None = None) -> None:
        self.inputs = inputs
        self.output = output
        self.names = frozenset(spec.name for spec in inputs)
        body_schema = {
            "type": "object",
            "properties": {spec.name: _strip_examples(spec.swagger) for spec in inputs},
            "required": [spec.name for spec in inputs],
            "additionalProperties": False,
        }
        validator_cls = jsonschema.validators.validator_for(body_schema, jsonschema.Draft4Validator)
        try:
            validator_cls.check_schema(body_schema)
        except jsonschema.SchemaError as exc:
            raise SchemaError(f"input swagger schema is invalid: {exc.message}") from exc
        self._validator = validator_cls(body_schema)
        # A plain-Python check that accepts only bodies jsonschema would accept too, for
        # the shapes generate_schema writes; anything it cannot vouch for goes to
        # jsonschema (about 100x slower), which also words the error.
        checkers = {spec.name: _fast_checker(_strip_examples(spec.swagger)) for spec in inputs}
        fast = {name: check for name, check in checkers.items() if check is not None}
        self._fast: dict[str, Callable[[Any], bool]] | None = fast if len(fast) == len(checkers) else None
        self._converters: list[tuple[str, Callable[[Any], Any]]] = [
            (spec.name, _converter(spec, spark)) for spec in inputs]

    @property
    def example(self) -> dict[str, Any] | None:
        examples = {spec.name: spec.swagger["example"]
                    for spec in self.inputs if "example" in spec.swagger}
        return examples or None

    def arguments(self, body: Any) -> dict[str, Any]:
        """Keyword arguments for run() from a decoded JSON body; BadInput when invalid."""
        if not isinstance(body, dict):
            raise BadInput(f"the request body must be a JSON object with the keys "
                           f"{sorted(self.names)}")
        try:
            if not self._surely_valid(body) and not self._validator.is_valid(body):
                raise BadInput(_describe(self._validator, body))
        except RecursionError:  # a recursive schema ($ref) over a deeply nested value
            raise BadInput("the input is JSON nested too deeply for the schema") from None
        kwargs = {}
        for name, convert in self._converters:
            try:
                kwargs[name] = convert(body[name])
            except (TypeError, ValueError, OverflowError) as exc:
                raise BadInput(f"{name}: cannot convert input: {exc}") from exc
        return kwargs

    def _surely_valid(self, body: dict[str, Any]) -> bool:
        fast = self._fast
        if fast is None or len(body) != len(fast):
            return False
        for name, check in fast.items():
            if name not in body or not check(body[name]):
                return False
        return True


_SIMPLE_KEYS = frozenset({"type", "format", "items", "properties", "description", "title"})
_SCALARS: dict[str, Callable[[Any], bool]] = {
    "number": lambda v: (type(v) is float or type(v) is int) and v == v,
    "integer": lambda v: type(v) is int,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _fast_checker(schema: Any) -> Callable[[Any], bool] | None:
    """A predicate true only for values valid against ``schema``; None when the schema
    uses anything beyond type/items/properties (then jsonschema decides alone)."""
    if not isinstance(schema, Mapping) or not _SIMPLE_KEYS.issuperset(schema):
        return None
    kind = schema.get("type")
    if not isinstance(kind, str):
        return None
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        items = schema.get("items")
        if items is None:
            return lambda v: type(v) is list
        check = _fast_checker(items)
        if check is None:
            return None
        return lambda v: type(v) is list and all(map(check, v))
    if kind == "object":
        properties = schema.get("properties") or {}
        if not isinstance(properties, Mapping):
            return None
        checks = {name: _fast_checker(sub) for name, sub in properties.items()}
        if any(c is None for c in checks.values()):
            return None

        def check_object(v: Any) -> bool:
            if type(v) is not dict:
                return False
            for key, value in v.items():
                check = checks.get(key)
                if check is not None and not check(value):
                    return False
            return True
        return check_object
    return None


def _describe(validator: Any, body: Any) -> str:
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error.validator == "additionalProperties" and not error.absolute_path:
        unknown = sorted(set(body) - set(error.schema.get("properties", {})))
        return f"unknown input key(s) {unknown}; expected {sorted(error.schema['properties'])}"
    path = "/".join(str(part) for part in error.absolute_path) or "(body)"
    return f"{path}: {error.message}"


def _strip_examples(swagger: Any) -> Any:
    """Swagger 'example' values are documentation, not constraints."""
    if isinstance(swagger, dict):
        return {k: _strip_examples(v) for k, v in swagger.items() if k != "example"}
    if isinstance(swagger, list):
        return [_strip_examples(v) for v in swagger]
    return swagger


def _converter(spec: InputSpec, spark: SparkConverters | None) -> Callable[[Any], Any]:
    if spec.kind == SPARK and spark is not None:
        return spark(spec)
    if spec.kind == STANDARD:
        return _identity
    if spec.kind == NUMPY:
        return _numpy_converter(spec)
    if spec.kind == PANDAS:
        return _pandas_converter(spec)
    raise SchemaError(f"input {spec.name!r} has type {spec.kind} "
                      f"({_TYPE_NAMES.get(spec.kind, 'unknown')}), which the Python "
                      f"runtime cannot build; Spark inputs need the SparkPython runtime")


def _identity(value: Any) -> Any:
    return value


def _innermost(swagger: Mapping[str, Any]) -> Mapping[str, Any]:
    while swagger.get("type") == "array" and isinstance(swagger.get("items"), Mapping):
        swagger = swagger["items"]
    return swagger


def _numpy_converter(spec: InputSpec) -> Callable[[Any], Any]:
    np = _import("numpy", spec)
    dtype = swagger_dtype(_innermost(spec.swagger))

    def convert(value: Any) -> Any:
        return np.asarray(value, dtype=dtype)
    return convert


def _pandas_converter(spec: InputSpec) -> Callable[[Any], Any]:
    pd = _import("pandas", spec)
    items = spec.swagger.get("items") if spec.swagger.get("type") == "array" else None
    properties = items.get("properties") if isinstance(items, Mapping) else None
    if not isinstance(properties, Mapping) or not properties:
        raise SchemaError(f"input {spec.name!r} has type 3 (pandas) but its swagger is not "
                          f"an array of objects with properties")
    np = _import("numpy", spec)
    columns = list(properties)
    dtypes = [swagger_dtype(schema) for schema in properties.values()]
    single = dtypes[0] if len(set(dtypes)) == 1 and dtypes[0] not in (None, "object") else None

    def convert(rows: Any) -> Any:
        # Built from numpy arrays: DataFrame.from_records(...).astype(...) costs ~25x more.
        if not isinstance(rows, list) or not all(type(row) is dict for row in rows):
            raise ValueError("expected a list of row objects")
        if single is not None:  # one numeric/bool dtype: one 2-D block
            block = np.array([[row.get(c) for c in columns] for row in rows], dtype=single)
            return pd.DataFrame(block.reshape(len(rows), len(columns)), columns=columns)
        data = {}
        for column, dtype in zip(columns, dtypes):
            values = [row.get(column) for row in rows]
            data[column] = values if dtype is None else np.array(values, dtype=dtype)
        return pd.DataFrame(data, columns=columns)
    return convert


def _import(module: str, spec: InputSpec) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise SchemaError(f"input {spec.name!r} has type {spec.kind} "
                          f"({_TYPE_NAMES[spec.kind]}) but {module} is not installed") from exc


def parse_schema(document: Any, spark: SparkConverters | None = None) -> ServiceSchema:
    """A ServiceSchema from the decoded JSON of a service_schema.json file."""
    if not isinstance(document, Mapping) or not isinstance(document.get("input"), Mapping):
        raise SchemaError('the schema must be a JSON object with an "input" object')
    inputs = []
    for name, entry in document["input"].items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("swagger"), Mapping):
            raise SchemaError(f"input {name!r} has no swagger object")
        kind = entry.get("type", STANDARD)
        if kind not in _TYPE_NAMES:
            raise SchemaError(f"input {name!r} has unknown type {kind!r} (expected 0-3)")
        if not name.isidentifier():
            raise SchemaError(f"input name {name!r} cannot be a run() keyword argument")
        inputs.append(InputSpec(name, kind, dict(entry["swagger"])))
    if not inputs:
        raise SchemaError("the schema declares no input")
    output = None
    if isinstance(document.get("output"), Mapping):
        swaggers = {name: entry["swagger"] for name, entry in document["output"].items()
                    if isinstance(entry, Mapping) and isinstance(entry.get("swagger"), Mapping)}
        if len(swaggers) == 1:
            output = dict(next(iter(swaggers.values())))
        elif swaggers:
            output = {"type": "object", "properties": swaggers}
    return ServiceSchema(inputs, output, spark)


def load_schema(path: str, spark: SparkConverters | None = None) -> ServiceSchema:
    try:
        with open(path, "rb") as fh:
            document = json.load(fh)
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise SchemaError(f"schema file {path} is not JSON: {exc}") from exc
    return parse_schema(document, spark)
