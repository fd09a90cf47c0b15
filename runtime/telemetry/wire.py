"""The OTLP protobuf encoding of moma's request spans, written directly.

A span per request is the one piece of telemetry paid for at every request, and most of
its cost is the encoding: OpenTelemetry's own encoder (``encode_spans`` of SDK spans)
and even building ``opentelemetry-proto`` messages field by field cost several times
more per span than writing the wire format of these few fields (bench/runtime/README.md,
"Telemetry"). What is the same for every span of a route is encoded once and reused.
The messages written are ``opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest``
and the ones it contains; tests decode them with ``opentelemetry-proto``. Driver spans,
logs and metrics use OpenTelemetry's encoders (``otlp.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .spans import RequestSpan, SharedAttributes, exception_event, request_attributes

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
SPAN_KIND_SERVER = 2
STATUS_ERROR = 2
FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE = 0x100, 0x200
_SMALL = [bytes((value,)) for value in range(0x80)]
_KEYS: dict[str, bytes] = {}


def varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def any_value(value: Any) -> bytes:
    """``AnyValue``: string 1, bool 2, int64 3, double 4, array 5, bytes 7."""
    if isinstance(value, str):
        return field(1, value.encode("utf-8", "replace"))
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, (bytes, bytearray)):
        return field(7, bytes(value))
    if isinstance(value, Sequence):
        return field(5, b"".join(field(1, any_value(item)) for item in value))
    return field(1, str(value).encode("utf-8", "replace"))


def key_value(key: str, value: Any) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _KEYS[key] = field(1, key.encode("utf-8"))
    return encoded + field(2, any_value(value))


def attributes(number: int, values: Mapping[str, Any]) -> bytes:
    """Repeated ``KeyValue`` field ``number``."""
    return b"".join(field(number, key_value(key, value)) for key, value in values.items()
                    if value is not None)


def resource(values: Mapping[str, Any]) -> bytes:
    return attributes(1, values)


def scope(name: str, version: str) -> bytes:
    return field(1, name.encode()) + field(2, version.encode())


class AttributeWriter:
    """Repeated ``KeyValue`` fields of one message, written with less work per attribute
    than :func:`attributes` (same bytes): a value seen often (a status, an admission
    outcome, a path) is written once and looked up after; a string or a float is
    written around its key's bytes, made once."""

    CACHED = 512  # distinct (key, value) pairs remembered per writer; a client's paths cannot grow it

    def __init__(self, number: int) -> None:
        self.tag = varint(number << 3 | 2)
        self._seen: dict[tuple[str, Any], bytes] = {}
        self._keys: dict[str, bytes] = {}

    def write(self, values: Mapping[str, Any], cached: frozenset[str]) -> bytes:
        """The fields of ``values`` (None skipped); keys in ``cached`` have few values."""
        parts = []
        for key, value in values.items():
            if value is None:
                continue
            if key in cached:
                found = self._seen.get((key, value))
                if found is None:
                    found = self._field(key, any_value(value))
                    if len(self._seen) < self.CACHED:
                        self._seen[(key, value)] = found
                parts.append(found)
            elif type(value) is str:
                encoded = value.encode("utf-8", "replace")
                parts.append(self._field(key, b"\x0a" + varint(len(encoded)) + encoded))
            elif type(value) is float:
                parts.append(self._field(key, b"\x21" + _DOUBLE(value)))
            else:
                parts.append(self._field(key, any_value(value)))
        return b"".join(parts)

    def _field(self, key: str, value: bytes) -> bytes:
        prefix = self._keys.get(key)
        if prefix is None:
            prefix = self._keys[key] = field(1, key.encode("utf-8"))
        payload = prefix + b"\x12" + varint(len(value)) + value
        return self.tag + varint(len(payload)) + payload


FEW_VALUES = frozenset({"url.path", "http.response.status_code", "moma.admission", "moma.model.name",
                        "moma.model.version", "error.type"})


class SpanEncoder:
    """Request spans → ``ExportTraceServiceRequest`` bytes, for one resource and scope."""

    def __init__(self, resource_attributes: Mapping[str, Any], scope_name: str,
                 scope_version: str, shared: SharedAttributes) -> None:
        self.resource = field(1, resource(resource_attributes))
        self.scope = field(1, scope(scope_name, scope_version))
        self.shared = shared
        self._shared: dict[tuple[str, str], bytes] = {}
        self._attributes = AttributeWriter(9)

    def request(self, spans: Iterable[RequestSpan]) -> bytes:
        """The request of ``spans``, each encoded as its request ended (:meth:`encode`)."""
        parts = [span.encoded if span.encoded is not None else field(2, self.span(span)) for span in spans]
        return field(1, self.resource + field(2, self.scope + b"".join(parts)))

    def encode(self, span: RequestSpan) -> None:
        """Encode ``span`` now, on the request's thread, as it is queued. Its few
        microseconds are paid by each request evenly; encoded on the exporter's thread, a
        batch holds the GIL for milliseconds at a time, and the requests it delays make
        the latency's tail."""
        span.encoded = field(2, self.span(span))

    def span(self, span: RequestSpan) -> bytes:
        key = self.shared.key(span)
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = field(5, span.name.encode("utf-8")) + \
                b"\x30" + varint(SPAN_KIND_SERVER) + attributes(9, self.shared.of(span))
        flags = span.trace_flags & 0xFF | FLAG_HAS_IS_REMOTE
        parts = [b"\x0a\x10", span.trace_id.to_bytes(16, "big"),
                 b"\x12\x08", span.span_id.to_bytes(8, "big")]
        if span.trace_state:
            parts.append(field(3, span.trace_state.encode("ascii", "replace")))
        if span.parent_id:
            parts += (b"\x22\x08", span.parent_id.to_bytes(8, "big"))
            flags |= FLAG_IS_REMOTE
        parts += (shared, b"\x39", _FIXED64(span.start_ns), b"\x41", _FIXED64(span.end_ns),
                  self._attributes.write(request_attributes(span), FEW_VALUES))
        event = exception_event(span)
        if event is not None:
            parts.append(field(11, b"\x09" + _FIXED64(span.end_ns) + field(2, b"exception")
                               + attributes(3, event)))
        if span.failed:
            parts.append(field(15, field(2, (span.error_message or "").encode("utf-8", "replace"))
                               + b"\x18" + varint(STATUS_ERROR)))
        parts += (b"\x85\x01", _FIXED32(flags))
        return b"".join(parts)

