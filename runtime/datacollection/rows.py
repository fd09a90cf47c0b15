"""Data -> rows -> text: the shapes ``collect()`` accepts, and the two output formats.

Shaping (``shape``) turns what a driver passes into column names (or None) and rows:

- pandas DataFrame: one row per DataFrame row, the columns as names;
- numpy array: 0-D one value, 1-D one row, 2-D one row per row, more dimensions one
  row per first-axis item (flattened); pandas Series like a 1-D array;
- list/tuple: of dicts one row each (names: the keys, in first-seen order); of
  lists/tuples/arrays one row each; of scalars ONE row (a feature vector);
- dict: one row, the keys as names; a scalar: one row of one value.

``feature_names`` name the columns (they win over DataFrame columns). A 1-D vector
collected with exactly one feature name gives one row per value (``feature_names=
['prediction']`` for ``model.predict(...)``'s output). Columns without names are
called ``0``, ``1``, ... Nested cells (lists, dicts) are written as JSON text in CSV.
pyspark DataFrames go through ``register_spark`` (the SparkPython runtime's hook);
without it they are refused as unsupported.

Formats: CSV rows ``$Timestamp,$CorrelationId,$RequestId,<columns...>`` under a
header row written once per file (the original's), or JSON Lines records
``{"timestamp", "correlationId", "requestId", "modelId", "modelName", "modelVersion",
"imageId", "identifier", "data"}`` where ``data`` is an object (named columns) or an
array, nested values kept as they are.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from .settings import CSV

PREFIX = ("$Timestamp", "$CorrelationId", "$RequestId")
_PLAIN = frozenset({str, int, float, bool, type(None)})
Names = list[str] | None
Rows = list[list[Any]]
_spark_shaper: Callable[[Any, Sequence[str] | None], tuple[Names, Rows]] | None = None


class UnsupportedData(TypeError):
    """A value ``collect()`` cannot turn into rows."""


def register_spark(shaper: Callable[[Any, Sequence[str] | None], tuple[Names, Rows]]) -> None:
    """Hook for the SparkPython runtime: ``shaper(spark_df, feature_names) -> (names,
    rows)``, e.g. ``(df.columns, [list(r) for r in df.collect()])``."""
    global _spark_shaper
    _spark_shaper = shaper


# -- shaping -----------------------------------------------------------------------------------
def shape(data: Any, feature_names: Sequence[str] | None = None) -> tuple[Names, Rows]:
    names = [str(n) for n in feature_names] if feature_names else None
    module = type(data).__module__ or ""
    if module.startswith("pyspark"):
        if _spark_shaper is None:
            raise UnsupportedData("pyspark DataFrames are collected by the SparkPython "
                                  "runtime, which this image does not have")
        return _spark_shaper(data, names)
    if module.startswith("pandas") and hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return names or [str(c) for c in data.columns], data.to_numpy(dtype=object).tolist()
    if hasattr(data, "ndim") and hasattr(data, "tolist"):  # numpy arrays/scalars, Series
        ndim = data.ndim
        if ndim == 0:
            return names, [[data.tolist()]]
        if ndim == 1:
            return _vector(data.tolist(), names)
        if ndim > 2:
            data = data.reshape(data.shape[0], -1)
        return names, data.tolist()
    if isinstance(data, dict):
        if names is not None:
            return names, [[_get(data, name) for name in names]]
        return [str(k) for k in data], [list(data.values())]
    if isinstance(data, (list, tuple)):
        return _sequence(data, names)
    if type(data) in _PLAIN:
        return names, [[data]]
    raise UnsupportedData(f"cannot collect a {type(data).__module__}.{type(data).__qualname__}")


def _vector(values: list[Any], names: Names) -> tuple[Names, Rows]:
    if names is not None and len(names) == 1 and len(values) != 1:
        return names, [[v] for v in values]
    return names, [values]


def _sequence(data: Sequence[Any], names: Names) -> tuple[Names, Rows]:
    if not data:
        return names, []
    if all(isinstance(item, dict) for item in data):
        if names is None:
            seen: dict[str, None] = {}
            for item in data:
                for key in item:
                    seen.setdefault(str(key), None)
            names = list(seen)
        keys = names
        return names, [[_get(item, key) for key in keys] for item in data]
    if all(isinstance(item, (list, tuple)) or getattr(item, "ndim", 0) == 1 for item in data):
        return names, [item.tolist() if hasattr(item, "tolist") else list(item) for item in data]
    return _vector(list(data), names)


def _get(item: dict[Any, Any], key: str) -> Any:
    if key in item:
        return item[key]
    for k, v in item.items():  # non-string keys were named by str(k)
        if str(k) == key:
            return v
    return None


# -- automatic capture: the request body and the response body -----------------------------------
@dataclasses.dataclass(frozen=True)
class InputShape:
    """What the service schema says about the request body: input names in order, the
    kind of each (0 standard, 1 numpy, 2 Spark, 3 pandas) and row-object columns."""
    names: tuple[str, ...]
    kinds: tuple[int, ...]
    columns: tuple[tuple[str, ...] | None, ...]


def shape_request(raw: Any, inputs: InputShape | None) -> tuple[Names, Rows]:
    """Rows of a scored request's input. ``raw`` is the POST body (bytes) or a GET's
    query arguments (dict)."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            document = from_json(raw)
        except ValueError:
            return ["input"], [[raw.decode("utf-8", "replace")]]
    elif isinstance(raw, dict):  # GET query arguments: values as JSON when they parse
        document = {key: _maybe_json(value) for key, value in raw.items()}
    else:
        document = raw
    if inputs is None or not isinstance(document, dict):
        if isinstance(document, dict):
            return [str(k) for k in document], [list(document.values())]
        if isinstance(document, list):
            return _sequence(document, None)
        return ["input"], [[document]]
    if len(inputs.names) == 1:
        name, kind, columns = inputs.names[0], inputs.kinds[0], inputs.columns[0]
        value = document.get(name)
        if kind in (2, 3) and columns and isinstance(value, list):  # Spark/pandas row objects
            return list(columns), [[_get(r, c) if isinstance(r, dict) else None for c in columns]
                                   for r in value]
        if isinstance(value, (list, dict)):
            return shape(value)
        return [name], [[value]]
    return list(inputs.names), [[document.get(name) for name in inputs.names]]


def _maybe_json(text: Any) -> Any:
    try:
        return _decode(text)
    except (TypeError, ValueError):
        return text


def shape_prediction(raw: bytes) -> tuple[Names, Rows]:
    """Rows of a response body: one row per prediction of a flat list, one row per item
    of a list of rows; a JSON string holding JSON (drivers that return json.dumps(...))
    is decoded once more."""
    value = from_json(raw)
    if isinstance(value, str):
        try:
            value = _decode(value)
        except ValueError:
            pass
    if isinstance(value, list):
        if value and all(isinstance(v, (dict, list)) for v in value):
            return _sequence(value, None)
        return ["prediction"], [[v] for v in value]
    if isinstance(value, dict):
        return [str(k) for k in value], [list(value.values())]
    return ["prediction"], [[value]]


# -- encoding ----------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
to_json = _ENCODER.encode  # one encoder: json.dumps() with options builds one per call
_decode = json.JSONDecoder().decode


def from_json(raw: bytes | bytearray | str) -> Any:
    """json.loads without its encoding detection (bodies are UTF-8: the app checked)."""
    return _decode(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)


def _cell(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (list, tuple, dict)):
        return to_json(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        value = value.tolist()
        return value if type(value) in _PLAIN else to_json(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class _Lines:
    """A csv writer's file: keeps each written row as one string."""
    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


class _Plan(NamedTuple):
    kept: list[str]             # column names written
    keep: list[int] | None      # indexes kept (None: all)
    hashed: frozenset[int]      # indexes (after dropping) to hash
    header: bytes | None        # the CSV header line


@dataclasses.dataclass(slots=True)
class Encoded:
    header: bytes | None  # written once, when the file is created (CSV only)
    lines: list[str]      # one per row, each ending in a newline
    size: int             # characters of all lines
    too_large: int        # rows dropped for MAX_ROW_BYTES


@dataclasses.dataclass(frozen=True)
class Target:
    """One collector's destination: the path up to the identifier, and what JSON Lines
    records say about it."""
    prefix: str
    identifier: str
    model_id: str
    model_name: str
    model_version: str
    image_id: str

    def json_fields(self) -> str:
        return (f'"modelId":{to_json(self.model_id)},"modelName":{to_json(self.model_name)},'
                f'"modelVersion":{to_json(self.model_version)},"imageId":{to_json(self.image_id)},'
                f'"identifier":{to_json(self.identifier)}')


class Encoder:
    """Rows -> lines in the configured format, with fields dropped or hashed and rows
    over the size limit dropped. Thread-safe: a csv writer per thread, and caches that
    only ever hold immutable values."""

    def __init__(self, fmt: str = CSV, drop: Iterable[str] = (), hashed: Iterable[str] = (),
                 salt: str = "", max_row_bytes: int = 1024 * 1024) -> None:
        self.csv = fmt == CSV
        self.file_name = "data.csv" if self.csv else "data.jsonl"
        self.drop = frozenset(drop)
        self.hashed = frozenset(hashed)
        self.salt = salt
        self.max_row_bytes = max_row_bytes
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._fields: dict[Target, str] = {}
        self._stamp: tuple[int, str] = (-1, "")
        self._local = threading.local()

    def timestamp(self, ts: float) -> str:
        second = int(ts)
        cached = self._stamp
        if cached[0] == second:
            text = cached[1]
        else:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp = (second, text)
        return f"{text}.{int((ts - second) * 1000):03d}Z"

    def _plan(self, names: list[str]) -> "_Plan":
        key = tuple(names)
        plan = self._plans.get(key)
        if plan is None:
            keep = [i for i, n in enumerate(names) if n not in self.drop]
            kept = [names[i] for i in keep]
            hashed = frozenset(j for j, n in enumerate(kept) if n in self.hashed)
            header = None
            if self.csv:
                out = _Lines()
                csv.writer(out, lineterminator="\n").writerow([*PREFIX, *kept])
                header = out.lines[0].encode("utf-8")
            plan = _Plan(kept, None if len(keep) == len(names) else keep, hashed, header)
            if len(self._plans) < 256:
                self._plans[key] = plan
        return plan

    def _hash(self, value: Any) -> Any:
        if value is None:
            return None
        text = value if isinstance(value, str) else to_json(value)
        return hashlib.sha256((self.salt + text).encode("utf-8")).hexdigest()

    def encode(self, target: Target, names: Names, rows: Rows, ts: float,
               correlation_id: str, request_id: str) -> Encoded:
        named = names is not None
        if names is None:
            names = [str(i) for i in range(len(rows[0]) if rows else 0)]
        plan = self._plan(names)
        kept, keep, hashed = plan.kept, plan.keep, plan.hashed
        if keep is not None or hashed:
            rows = [self._apply(row, keep, hashed) for row in rows]
        stamp = self.timestamp(ts)
        if self.csv:
            local = self._local
            sink = getattr(local, "sink", None)
            if sink is None:  # one writer per thread, reused
                sink = local.sink = _Lines()
                local.writer = csv.writer(sink, lineterminator="\n")
            sink.lines = lines = []
            writerow = local.writer.writerow
            for row in rows:
                writerow([stamp, correlation_id, request_id, *map(_cell, row)])
        else:
            fields = self._fields.get(target)
            if fields is None:
                fields = self._fields[target] = target.json_fields()
            head = (f'{{"timestamp":"{stamp}","correlationId":{to_json(correlation_id)},'
                    f'"requestId":{to_json(request_id)},{fields},"data":')
            lines = [head + to_json(dict(zip(kept, row)) if named else row) + "}\n"
                     for row in rows]
        size = sum(map(len, lines))
        limit = self.max_row_bytes
        if size * 4 <= limit:  # no row can be too large: skip the per-row check
            return Encoded(plan.header, lines, size, 0)
        out = []
        size = too_large = 0
        for line in lines:
            n = len(line)
            if n * 4 > limit and len(line.encode("utf-8")) > limit:
                too_large += 1
                continue
            out.append(line)
            size += n
        return Encoded(plan.header, out, size, too_large)

    def _apply(self, row: list[Any], keep: list[int] | None, hashed: frozenset[int]) -> list[Any]:
        if keep is not None:
            row = [row[i] if i < len(row) else None for i in keep]
        if hashed:
            row = [self._hash(v) if j in hashed else v for j, v in enumerate(row)]
        return row
