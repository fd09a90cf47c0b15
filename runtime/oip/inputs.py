"""Input tensors -> run()'s arguments, the 2017 driver unchanged; and the model
metadata's inputs, from ``service_schema.json``.

Without a schema, run() gets the JSON body the 2017 convention expects: one key per
input tensor, its values nested in its shape (``{"data": [[5.1, 3.5, 1.4, 0.2]]}`` for
an input ``data`` of shape [1, 4]).

With one, the tensors are turned into the body ``/score`` would get and go through the
same validation and conversion (``ServiceSchema.arguments``), so run() gets what
``/score`` gives it for the same rows:

- type 0 (standard) and 1 (numpy): one tensor per input, its values in its shape (one
  value when the input is not an array); a BYTES value is decoded as JSON when it
  parses (as ``GET /score`` does with query arguments);
- type 3 (pandas) and 2 (Spark) inputs take rows of objects: a BYTES tensor named after
  the input, each value a JSON row object (or one value holding the JSON array of rows);
  or, when the schema has that one input, one tensor per column, named after the
  column (the ``content_type: "pd"`` convention of MLServer's pandas codec).

A tensor's datatype must fit the swagger type it feeds: ``number`` takes FP32, FP64
and integers, ``integer`` INT*/UINT*, ``boolean`` BOOL, ``string`` BYTES; inputs of
objects or untyped arrays take any datatype.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ..errors import BadInput
from ..schema import PANDAS, SPARK, InputSpec, ServiceSchema, swagger_dtype
from . import codec
from .tensors import FLOATS, INTEGER_RANGES, InferenceRequest, InputTensor

Arguments = tuple[tuple[Any, ...], dict[str, Any]]
ROWS = (PANDAS, SPARK)
INTEGERS = frozenset(INTEGER_RANGES)
ACCEPTED = {  # the swagger type's family -> the datatypes that can feed it
    "number": FLOATS | INTEGERS, "integer": INTEGERS, "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
DATATYPE_OF_DTYPE = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64",
                     "bool": "BOOL"}
FAMILY_OF_DTYPE = {"float32": "number", "float64": "number", "int32": "integer",
                   "int64": "integer", "bool": "boolean"}


@dataclasses.dataclass(frozen=True)
class Feed:
    """What one tensor feeds: an input, or a column of a rows input."""
    name: str
    family: str | None      # number, integer, boolean, string; None: JSON values of any kind
    datatype: str           # advertised in the metadata
    shape: tuple[int, ...]  # advertised in the metadata, -1 where it varies
    depth: int | None       # arrays around the values; None: any (an array of untyped items)

    def check(self, tensor: InputTensor) -> None:
        if self.family is not None and tensor.datatype not in ACCEPTED[self.family]:
            raise BadInput(f"input {tensor.name!r}: datatype {tensor.datatype} cannot feed "
                           f"the model's {self.family} input; send {self.datatype}")

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def feed_of(name: str, swagger: Mapping[str, Any]) -> Feed:
    """The tensor feeding a swagger schema: scalars nested in arrays have a datatype
    and a depth; anything else is JSON values (BYTES)."""
    depth, dims, example = 0, [], swagger.get("example")
    while swagger.get("type") == "array" and isinstance(swagger.get("items"), Mapping):
        dims.append(len(example) if depth and isinstance(example, list) else -1)
        example = example[0] if isinstance(example, list) and example else None
        swagger = swagger["items"]
        depth += 1
    kind = swagger.get("type")
    if kind == "array":  # of items of any kind
        return Feed(name, None, "BYTES", (*dims, -1), None)
    dtype = swagger_dtype(swagger) if isinstance(kind, (str, list)) else None
    family = FAMILY_OF_DTYPE.get(dtype or "") or ("string" if kind == "string" else None)
    datatype = DATATYPE_OF_DTYPE.get(dtype or "", "BYTES")
    return Feed(name, family, datatype, tuple(dims) or (1,), depth)


class InputMapping:
    """The schema's inputs as tensors (None: a raw-body driver)."""

    def __init__(self, schema: ServiceSchema | None) -> None:
        self.schema = schema
        self.feeds: dict[str, Feed] = {}
        self.rows: dict[str, tuple[Feed, ...]] = {}  # rows inputs -> their columns
        for spec in schema.inputs if schema is not None else ():
            columns = _columns(spec)
            if columns is not None:
                self.rows[spec.name] = columns
                self.feeds[spec.name] = Feed(spec.name, None, "BYTES", (-1,), 1)
            else:
                self.feeds[spec.name] = feed_of(spec.name, spec.swagger)
        only = next(iter(self.rows.values())) if len(self.feeds) == 1 and self.rows else None
        self.columns: dict[str, Feed] | None = \
            {column.name: column for column in only} if only else None

    # -- metadata ---------------------------------------------------------------------------
    def metadata_inputs(self) -> list[dict[str, Any]]:
        if self.columns is not None:
            return [column.metadata() for column in self.columns.values()]
        return [feed.metadata() for feed in self.feeds.values()]

    def metadata_parameters(self) -> dict[str, Any] | None:
        return {"content_type": "pd"} if self.columns is not None else None

    def example_request(self, example: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The schema's example body as an inference request (``swagger.json``, and so
        ``moma service usage``); None when there is no example or it does not fit."""
        if example is None or set(example) != set(self.feeds):
            return None
        if self.columns is not None:
            rows = next(iter(example.values()))
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                return None
            inputs = [_example_tensor(column, [row.get(name) for row in rows], [len(rows)])
                      for name, column in self.columns.items()]
            return {"parameters": {"content_type": "pd"}, "inputs": inputs}
        inputs = []
        for name, feed in self.feeds.items():
            value = example[name]
            if name in self.rows:
                rows = value if isinstance(value, list) else [value]
                inputs.append(_example_tensor(feed, rows, [len(rows)]))
            elif feed.depth == 0 or not isinstance(value, list):
                inputs.append(_example_tensor(feed, [value], [1]))
            else:
                shape = _nested_shape(value)
                inputs.append(_example_tensor(feed, value, shape))
        return {"inputs": inputs}

    # -- arguments --------------------------------------------------------------------------
    def arguments(self, request: InferenceRequest) -> tuple[Arguments, Any]:
        """run()'s arguments, and the body ``/score`` would have had (for data collection:
        its text without a schema, else the decoded document)."""
        schema = self.schema
        if schema is None:
            text = codec.dumps({tensor.name: tensor.nested() for tensor in request.inputs},
                               request.read_by_orjson)
            return ((text,), {}), text
        tensors = {tensor.name: tensor for tensor in request.inputs}
        if self.columns is not None and (set(tensors) != set(self.feeds)
                                          or _content_type(request) == "pd"):
            document = {next(iter(self.feeds)): self._rows_from_columns(tensors)}
        else:
            self._check_names(tensors)
            document = {name: self._value(feed, tensors[name]) for name, feed in self.feeds.items()}
        return ((), schema.arguments(document)), document

    def _check_names(self, tensors: dict[str, InputTensor]) -> None:
        unknown = [name for name in tensors if name not in self.feeds]
        if unknown:
            raise BadInput(f"unknown input {unknown[0]!r}; the model's inputs are "
                           f"{list(self.feeds)}")
        missing = [name for name in self.feeds if name not in tensors]
        if missing:
            raise BadInput(f"missing input {missing[0]!r}; the model's inputs are "
                           f"{list(self.feeds)}")

    def _value(self, feed: Feed, tensor: InputTensor) -> Any:
        if feed.name in self.rows:
            return _rows(tensor)
        feed.check(tensor)
        if feed.family is None and tensor.datatype == "BYTES":
            tensor = tensor._replace(values=[_maybe_json(v) for v in tensor.values])
        if feed.depth == 0:
            if len(tensor.values) != 1:
                raise BadInput(f"input {tensor.name!r}: the model's input is one value, the "
                               f"tensor holds {len(tensor.values)}")
            return tensor.values[0]
        if feed.depth is not None and len(tensor.shape) != feed.depth:
            raise BadInput(f"input {tensor.name!r}: shape {list(tensor.shape)} has "
                           f"{len(tensor.shape)} dimension(s), the model's input has "
                           f"{feed.depth} ({list(feed.shape)})")
        return tensor.nested()

    def _rows_from_columns(self, tensors: dict[str, InputTensor]) -> list[dict[str, Any]]:
        columns = self.columns
        assert columns is not None
        unknown = [name for name in tensors if name not in columns]
        if unknown:
            raise BadInput(f"unknown input {unknown[0]!r}; the model's inputs are the columns "
                           f"{list(columns)} (or {next(iter(self.feeds))!r}, BYTES of JSON rows)")
        missing = [name for name in columns if name not in tensors]
        if missing:
            raise BadInput(f"missing input {missing[0]!r}; the model's inputs are the columns "
                           f"{list(columns)}")
        lengths = set()
        for name, column in columns.items():
            tensor = tensors[name]
            column.check(tensor)
            if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
                raise BadInput(f"input {name!r}: a column's shape is [rows] or [rows, 1], got "
                               f"{list(tensor.shape)}")
            lengths.add(len(tensor.values))
        if len(lengths) > 1:
            raise BadInput(f"the columns have different lengths: "
                           f"{ {name: len(tensors[name].values) for name in columns} }")
        names = list(columns)
        values = [tensors[name].values if columns[name].family is not None
                  else [_maybe_json(v) for v in tensors[name].values] for name in names]
        return [dict(zip(names, row)) for row in zip(*values)]


def _columns(spec: InputSpec) -> tuple[Feed, ...] | None:
    """The columns of a pandas or Spark input: the properties of its row objects."""
    if spec.kind not in ROWS or spec.swagger.get("type") != "array":
        return None
    items = spec.swagger.get("items")
    properties = items.get("properties") if isinstance(items, Mapping) else None
    if not isinstance(properties, Mapping) or not properties:
        return None
    columns = []
    for name, swagger in properties.items():
        feed = feed_of(str(name), swagger if isinstance(swagger, Mapping) else {})
        columns.append(dataclasses.replace(feed, shape=(-1,), depth=1))
    return tuple(columns)


def _example_tensor(feed: Feed, data: list[Any], shape: list[int]) -> dict[str, Any]:
    if feed.datatype == "BYTES" and feed.family is None:
        data = [json.dumps(value) for value in data]
    return {"name": feed.name, "shape": shape, "datatype": feed.datatype, "data": data}


def _nested_shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _rows(tensor: InputTensor) -> list[Any]:
    """A BYTES tensor of JSON row objects (or of one JSON array of them)."""
    if tensor.datatype != "BYTES":
        raise BadInput(f"input {tensor.name!r} takes rows: BYTES, each value a JSON object "
                       f"(or one tensor per column), got {tensor.datatype}")
    rows = []
    for at, text in enumerate(tensor.values):
        try:
            rows.append(json.loads(text))
        except ValueError as exc:
            raise BadInput(f"input {tensor.name!r}: value {at} is not JSON: {exc}") from None
        except RecursionError:
            raise BadInput(f"input {tensor.name!r}: value {at} is JSON nested too deeply") \
                from None
    if len(rows) == 1 and isinstance(rows[0], list):
        return rows[0]
    return rows


def _maybe_json(value: Any) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def _content_type(request: InferenceRequest) -> Any:
    return (request.parameters or {}).get("content_type")
