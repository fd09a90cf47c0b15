"""Spark values as plain JSON-ready values, for responses and data collection.

- a DataFrame -> its collected rows as a list of objects (column name -> value)
- a Row with field names -> an object; a Row without names -> a list
  (Rows are tuples: without this step ``json`` would write every Row as a list)
- ML vectors (``DenseVector``, ``SparseVector``) -> lists of floats (dense)
- bytes/bytearray (Spark binary) -> base64 text, as binary input arrives
- lists, tuples and dicts are walked; everything else is left to ``encoding.py``

A DataFrame is lazy: its computation runs here, and an error in it becomes a
ValueError, which ``encoding.py`` answers as a driver error (500).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from pyspark.ml.linalg import Vector as MLVector
from pyspark.mllib.linalg import Vector as MLlibVector
from pyspark.sql import DataFrame, Row

_VECTORS = (MLVector, MLlibVector)
_SCALARS = (str, int, float, bool, type(None))


def to_plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Row):
        return _row(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, DataFrame):
        return [_row(row) for row in collect(value)]
    if isinstance(value, _VECTORS):
        return value.toArray().tolist()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def _row(row: Row) -> Any:
    names = getattr(row, "__fields__", None)
    if names is None:
        return [to_plain(item) for item in row]
    return {name: to_plain(item) for name, item in zip(names, row)}


def collect(frame: DataFrame) -> list[Row]:
    try:
        return frame.collect()
    except Exception as exc:  # py4j/Spark errors of the driver's lazy plan
        raise ValueError(f"computing the returned Spark DataFrame failed: "
                         f"{type(exc).__name__}: {_first_line(exc)}") from exc


def shape_rows(frame: DataFrame, names: Sequence[str] | None) -> tuple[list[str], list[list[Any]]]:
    """Data collection's hook: column names and rows of plain values."""
    rows = [[to_plain(item) for item in row] for row in collect(frame)]
    return list(names) if names else list(frame.columns), rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
