"""Encode what run() returned into the response body.

Compatible with the original: the body is ``json.dumps(value)`` for every value, so a
returned ``str`` is JSON-encoded again (a driver returning ``json.dumps(["a"])`` gives
the body ``"[\\"a\\"]"``; clients depend on it). Values json cannot encode natively are
turned into plain ones without importing numpy or pandas here:

- numpy arrays -> nested lists; numpy scalars -> Python numbers/bools (``.item()``)
- pandas DataFrame -> list of row objects (``orient="records"``); Series/Index -> list
- datetime/date/time (and pandas Timestamp) -> ISO 8601 text; Decimal -> float;
  set/frozenset -> list; bytes -> not encodable (BadOutput)

Anything else raises BadOutput (500 driver_error). A runtime may register a
``prepare`` step that runs first (SparkPython: DataFrames, Rows and ML vectors, see
``spark_encoding.py``), so this module never imports pyspark.
"""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

from .errors import BadOutput


def _default(value: Any) -> Any:
    module = type(value).__module__
    if module.startswith("numpy"):
        if hasattr(value, "tolist"):
            return value.tolist()
    elif module.startswith("pandas"):
        if hasattr(value, "to_dict") and hasattr(value, "columns"):
            return value.to_dict(orient="records")
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "tolist"):
            return value.tolist()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode = json.JSONEncoder(default=_default).encode
_prepare: Callable[[Any], Any] | None = None


def register_prepare(prepare: Callable[[Any], Any] | None) -> None:
    """Turn run()'s value into plain values before encoding (one per process)."""
    global _prepare
    _prepare = prepare


def prepared(value: Any) -> Any:
    """``value`` after the registered ``prepare`` step (the value itself without one)."""
    if _prepare is None:
        return value
    try:
        return _prepare(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadOutput(f"run() returned a value that cannot be encoded as JSON: {exc}") from exc


def encode_output(value: Any) -> bytes:
    """The response body for run()'s return value."""
    try:
        if _prepare is not None:
            value = _prepare(value)
        return _encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadOutput(f"run() returned a value that cannot be encoded as JSON: {exc}") from exc
