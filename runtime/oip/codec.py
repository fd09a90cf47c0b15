"""The JSON of an inference: the request read, and the 2017 body and the answer written,
with orjson wherever it reads and writes what ``json`` would, with ``json`` elsewhere.

orjson parses several times faster than ``json``, but not quite the same language: it
refuses NaN, Infinity, lone surrogates, a byte order mark, other encodings than UTF-8
and nesting past 1024 levels (``json`` takes them all, nesting up to its recursion
limit), and it reads an integer past 64 bits as a float where ``json`` keeps it whole.
So a body orjson refuses, one holding a run of 19 digits (where such an integer could
be), and one nested deeper than orjson writes are read by ``json``, and every request is
answered as before. What orjson did read holds only finite floats, integers of at most
64 bits and valid text, which it writes back as ``json`` would, without the spaces and
with non-ASCII text as UTF-8 rather than escapes (a value nested deeper than
orjson writes, which a tensor's shape can make, is written by ``json``). An answer holds
run()'s values, which may be NaN or infinite: orjson writes those as ``null`` where
``json`` (and so ``/score``) writes ``NaN``, so an answer in which orjson wrote a ``null``
(or that it cannot write) is written by ``json``. Without orjson installed, ``json``
does all of it.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

orjson: ModuleType | None
try:
    import orjson
except ImportError:  # the runtime outside an image, in an environment of its own
    orjson = None

# every ASCII digit as 9, anything else as a space: a run of 19 digits is then a substring
# search (bytes.translate and ``in`` run in C; a regex walks a large body far slower)
_DIGITS_AS_NINES = bytes(0x39 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"9" * 19
# orjson writes at most 254 levels of nesting and reads 1024; json reads as deep as the
# recursion limit lets it (less than 1000, fewer in a server's deep stack), so a body
# nested past what orjson writes is left to json, to be refused exactly where it was
_SHALLOW_BRACKETS = 250
_PLAIN_ONLY = (orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
               | orjson.OPT_PASSTHROUGH_SUBCLASS) if orjson is not None else 0


def loads(raw: bytes) -> tuple[Any, bool]:
    """The document, and whether orjson read it (``dumps`` may then write its values
    with orjson). ``json``'s errors for a body neither reads."""
    if orjson is not None and _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_NINES):
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if not _maybe_deep(raw, document):
                return document, True
    return json.loads(_text(raw)), False


def dumps(value: Any, read_by_orjson: bool) -> str:
    """``value`` (made of what ``loads`` returned) as JSON text; a value orjson cannot
    write (nested deeper than it writes: a tensor's shape can make it so) by ``json``."""
    if read_by_orjson and orjson is not None:
        try:
            text: str = orjson.dumps(value).decode("utf-8")
        except TypeError:
            pass
        else:
            return text
    return json.dumps(value)


def _maybe_deep(raw: bytes, document: Any) -> bool:
    """Whether a document orjson read is nested past what it writes (counting brackets
    first: few brackets, no depth)."""
    if raw.count(b"[") + raw.count(b"{") <= _SHALLOW_BRACKETS:
        return False
    try:
        orjson.dumps(document)  # type: ignore[union-attr]  # loads checked orjson is there
    except TypeError:
        return True
    return False


def dumps_answer(document: Any) -> bytes:
    """An answer of plain values (text, numbers, booleans, None, lists, tuples and dicts:
    what output tensors hold) as ``json.dumps`` would write it, up to spaces and escapes."""
    if orjson is not None:
        try:
            body: bytes = orjson.dumps(document, option=_PLAIN_ONLY)
        except TypeError:  # integers past 64 bits, keys that are not text...
            pass
        else:
            if b"null" not in body:
                return body
    return json.dumps(document).encode("utf-8")


def _text(raw: bytes) -> str | bytes:
    """UTF-8 decoded here (``json.loads`` would first guess the encoding); other bytes
    (UTF-16 and UTF-32, told by a byte order mark or by a NUL in the first two bytes as
    ``json.detect_encoding`` tells them) as they are, for ``json.loads`` to detect."""
    if b"\x00" in raw[:2]:
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return raw if text[:1] == "\ufeff" else text
