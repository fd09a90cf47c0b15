"""Tensors of the Open Inference Protocol's JSON form: an inference request parsed and
checked (every datatype, shape against data, sizes), and run()'s value turned into
output tensors.

Checks are made on the parsed JSON before anything is built from it: a shape is a list
of non-negative integers whose product must equal the number of values given, so a
huge shape is refused without allocating anything for it. FP16 and BF16 have no JSON
form (the protocol says so too): they are refused with a message naming the input.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..encoding import encode_output, prepared
from ..errors import BadInput
from . import codec

INTEGER_RANGES = {
    "INT8": (-2 ** 7, 2 ** 7 - 1), "INT16": (-2 ** 15, 2 ** 15 - 1),
    "INT32": (-2 ** 31, 2 ** 31 - 1), "INT64": (-2 ** 63, 2 ** 63 - 1),
    "UINT8": (0, 2 ** 8 - 1), "UINT16": (0, 2 ** 16 - 1),
    "UINT32": (0, 2 ** 32 - 1), "UINT64": (0, 2 ** 64 - 1),
}
FLOATS = frozenset({"FP32", "FP64"})
DATATYPES = ("BOOL", *INTEGER_RANGES, "FP16", "BF16", "FP32", "FP64", "BYTES")
KNOWN_DATATYPES = frozenset(DATATYPES)
NO_JSON_FORM = frozenset({"FP16", "BF16"})
MAX_DIMENSION = 2 ** 64 - 1
OUTPUT = "predict"  # the output's name when run() does not name its outputs
_BOOL, _INT, _NUMBER, _TEXT = frozenset({bool}), frozenset({int}), frozenset({int, float}), \
    frozenset({str})


class InputTensor(NamedTuple):
    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]          # row-major, flat
    parameters: dict[str, Any]

    def nested(self) -> Any:
        """The values in the tensor's shape: nested lists (a scalar for shape [])."""
        shape, values = self.shape, self.values
        if not shape:
            return values[0]
        if not values:
            return []
        for dim in reversed(shape[1:]):
            values = [values[at:at + dim] for at in range(0, len(values), dim)]
        return values


class InferenceRequest(NamedTuple):
    id: str | None
    parameters: dict[str, Any] | None
    inputs: tuple[InputTensor, ...]
    outputs: tuple[str, ...] | None  # the requested outputs' names; None: all
    read_by_orjson: bool             # codec.dumps may write its values with orjson


# -- the request ------------------------------------------------------------------------------
def parse_request(raw: bytes) -> InferenceRequest:
    """The inference request of a body; BadInput naming what is wrong."""
    try:
        document, read_by_orjson = codec.loads(raw)
    except ValueError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInput("the request body is JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise BadInput("the request body must be a JSON object with \"inputs\"")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadInput("\"id\" must be a string")
    parameters = _parameters(document.get("parameters"), "the request")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadInput("\"inputs\" must be a non-empty list of input tensors")
    tensors = tuple([_input(entry, at) for at, entry in enumerate(inputs)])
    if len(tensors) > 1:
        names = [tensor.name for tensor in tensors]
        if len(set(names)) != len(names):
            raise BadInput(f"input {_first_repeated(names)!r} is given twice")
    return InferenceRequest(request_id, parameters, tensors, _requested(document.get("outputs")),
                            read_by_orjson)


def _input(entry: Any, at: int) -> InputTensor:
    if not isinstance(entry, dict):
        raise BadInput(f"inputs[{at}] must be an object with name, shape, datatype and data")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise BadInput(f"inputs[{at}] has no \"name\"")
    datatype = entry.get("datatype")
    if datatype in NO_JSON_FORM:
        raise BadInput(f"input {name!r}: {datatype} has no JSON form (the binary tensor "
                       f"extension, which this server does not offer, is needed for it); "
                       f"send FP32 instead")
    if datatype not in KNOWN_DATATYPES:
        raise BadInput(f"input {name!r}: unknown datatype {datatype!r}; one of "
                       f"{', '.join(d for d in DATATYPES if d not in NO_JSON_FORM)}")
    shape, count = _shape(name, entry.get("shape"))
    data = entry.get("data")
    if not isinstance(data, list):
        raise BadInput(f"input {name!r}: \"data\" must be a list")
    values = _flatten(data)
    if count != len(values):
        raise BadInput(f"input {name!r}: shape {list(shape)} holds {count} values, "
                       f"\"data\" has {len(values)}")
    _check_values(name, datatype, values)
    return InputTensor(name, datatype, shape, values,
                       _parameters(entry.get("parameters"), f"input {name!r}") or {})


def _shape(name: str, shape: Any) -> tuple[tuple[int, ...], int]:
    count = 1
    if type(shape) is list:
        for dim in shape:
            if type(dim) is not int or not 0 <= dim <= MAX_DIMENSION:
                break
            count *= dim
        else:
            return tuple(shape), count
    raise BadInput(f"input {name!r}: \"shape\" must be a list of integers from 0 to "
                   f"2^64-1, got {json.dumps(shape)[:100]}")


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major values of data given flat or in its natural nested form."""
    if list not in set(map(type, data)):
        return data
    values: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                stack.append(iter(item))
                break
            values.append(item)
        else:
            stack.pop()
    return values


def _check_values(name: str, datatype: str, values: list[Any]) -> None:
    kinds = set(map(type, values))
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        if kinds <= _INT and (not values or low <= min(values) and max(values) <= high):
            return
        wanted = f"an integer from {low} to {high}"

        def good(v: Any) -> bool:
            return type(v) is int and low <= v <= high
    elif datatype in FLOATS:
        if kinds <= _NUMBER:
            return
        wanted, good = "a number", _is_number
    elif datatype == "BOOL":
        if kinds <= _BOOL:
            return
        wanted, good = "true or false", _is_bool
    else:
        if kinds <= _TEXT:
            return
        wanted, good = "a string", _is_text
    at = next(at for at, value in enumerate(values) if not good(value))
    raise BadInput(f"input {name!r}: value {at} ({json.dumps(values[at])[:50]}) is not "
                   f"{datatype}: {wanted} is needed")


def _parameters(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"\"parameters\" of {where} must be an object")
    return value


def _requested(outputs: Any) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in outputs):
        raise BadInput("\"outputs\" must be a list of objects with a \"name\"")
    return tuple(entry["name"] for entry in outputs)


def _first_repeated(names: list[str]) -> str:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return ""


# -- the answer -------------------------------------------------------------------------------
def output_tensors(value: Any) -> list[dict[str, Any]]:
    """run()'s value as output tensors: one per key of a dict (or column of a DataFrame),
    else one called ``predict``. A str holding a JSON array or object (drivers of the
    2017 service returned ``json.dumps(...)``) is decoded first. BadOutput when a value
    cannot be encoded."""
    value = prepared(value)  # SparkPython: DataFrames, Rows, vectors as plain values
    if type(value) is str and value[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if type(value) is dict:
        return [output_tensor(str(name), item) for name, item in value.items()]
    if _is_dataframe(value):
        return [dict(output_tensor(str(column), value[column]),
                     parameters={"content_type": "pd"}) for column in value.columns]
    return [output_tensor(OUTPUT, value)]


def output_tensor(name: str, value: Any) -> dict[str, Any]:
    if hasattr(value, "dtype") and hasattr(value, "tolist") and hasattr(value, "shape"):
        return _array_tensor(name, value)  # numpy arrays and scalars, pandas Series
    if type(value) is list or type(value) is tuple:
        return _list_tensor(name, value)
    kind = _SCALARS.get(type(value))
    if kind is not None:
        return _tensor(name, kind, [1], [value])
    return _tensor(name, "BYTES", [1], [_json_text(value)])


_SCALARS = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES"}
_ARRAY_KINDS = {"b": "BOOL", "i": "INT", "u": "UINT", "f": "FP"}


def _array_tensor(name: str, value: Any) -> dict[str, Any]:
    if _is_series(value):
        value = value.to_numpy()
    dtype = value.dtype
    shape = list(value.shape) or [1]
    kind = _ARRAY_KINDS.get(dtype.kind)
    if kind is None:  # text, objects, dates...
        return _tensor(name, "BYTES", shape, [item if type(item) is str else _json_text(item)
                                              for item in value.reshape(-1).tolist()])
    bits = dtype.itemsize * 8
    if kind == "FP":
        kind, bits = "FP", (32 if bits <= 32 else 64)  # FP16 has no JSON form
    datatype = "BOOL" if kind == "BOOL" else f"{kind}{bits}"
    if datatype not in INTEGER_RANGES and datatype not in FLOATS and datatype != "BOOL":
        return _tensor(name, "BYTES", shape, [_json_text(item)
                                              for item in value.reshape(-1).tolist()])
    return _tensor(name, datatype, shape, value.reshape(-1).tolist())


def _list_tensor(name: str, value: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    tensor = _plain_list_tensor(name, value)
    if tensor is None:  # numpy scalars, dates...: as JSON would have them
        value = json.loads(_json_text(value))
        tensor = _plain_list_tensor(name, value)
    if tensor is None:  # ragged, objects, mixed kinds: one JSON text per item
        tensor = _tensor(name, "BYTES", [len(value)],
                         [item if type(item) is str else _json_text(item) for item in value])
    return tensor


def _plain_list_tensor(name: str, value: Any) -> dict[str, Any] | None:
    """Nested lists of one shape whose leaves are all bools, numbers or strings."""
    shape: list[int] = []
    probe: Any = value
    while type(probe) is list or type(probe) is tuple:
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    leaves = _regular(value, shape)
    if leaves is None:
        return None
    values, kinds = leaves
    datatype = _LEAF_TYPES.get(kinds)
    if datatype == "INT64" and not -2 ** 63 <= min(values) <= max(values) < 2 ** 63:
        datatype = "FP64"
    return None if datatype is None else _tensor(name, datatype, shape, values)


_LEAF_TYPES = {frozenset(): "FP64", _BOOL: "BOOL", _INT: "INT64", _NUMBER: "FP64",
               frozenset({float}): "FP64", _TEXT: "BYTES"}


def _regular(value: Any, shape: list[int]) -> tuple[list[Any], frozenset[type]] | None:
    """The row-major leaves of nested lists of exactly ``shape`` and their types, else
    None."""
    level = [value]
    for dim in shape:
        below: list[Any] = []
        for item in level:
            if (type(item) is not list and type(item) is not tuple) or len(item) != dim:
                return None
            below.extend(item)
        level = below
    kinds = frozenset(map(type, level))
    if list in kinds or tuple in kinds:
        return None
    return level, kinds


def _tensor(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _json_text(value: Any) -> str:
    return encode_output(value).decode("utf-8")


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "columns") \
        and hasattr(value, "to_numpy")


def _is_series(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy") \
        and not hasattr(value, "columns")


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _is_text(v: Any) -> bool:
    return type(v) is str
