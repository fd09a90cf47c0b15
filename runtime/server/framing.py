"""Where an HTTP/1.x request ends, from the bytes a client has sent so far.

The worker's event loop reads every request into a buffer before a thread (or the loop
itself) runs it (``channels.py``); ``RequestFrame`` tells it when the request is whole:
its head (request line and headers) and its body, of ``Content-Length`` bytes or
chunked, trailers included. It scans only the bytes that are new since the last look.

It frames a request as gunicorn's parser does for every request that parser accepts
(one ``Content-Length`` of digits; ``Transfer-Encoding`` ending in ``chunked``, without
a ``Content-Length``, on HTTP/1.1). A request gunicorn would refuse for its framing
(two lengths, a length and chunked, another coding last, a malformed chunk size...)
counts as whole once its head is in: gunicorn's parser then refuses it from the
buffered bytes, without waiting for a body. Beyond the caps it raises ``Refused``.
"""

from __future__ import annotations

HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = b"\r\ncontent-length:"
SLOW_PATH_MARKS = (b"transfer-encoding", b"expect", b"\n ", b"\n\t")
MAX_CHUNK_LINE = 8192
HEX_DIGITS = b"0123456789abcdefABCDEF"


class Refused(Exception):
    """The request is over a cap: answer ``status`` and close."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RequestFrame:
    """Framing state of the request at the start of ``buffer``.

    ``end()`` returns where the request ends once it is whole (None before); after the
    head is in, ``head_end`` is set and ``expects_continue`` says whether the client waits
    for ``100 Continue`` before it sends the body.
    """

    __slots__ = ("max_head", "max_body", "strip_header_spaces", "head_end",
                 "body_end", "chunk_at", "chunked_bytes", "searched", "expects_continue")

    def __init__(self, max_head: int, max_body: int, strip_header_spaces: bool = False) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self.strip_header_spaces = strip_header_spaces
        self.head_end: int | None = None
        self.body_end: int | None = None  # set for a body of known length
        self.chunk_at = 0  # chunked: where the next chunk-size line starts
        self.chunked_bytes = 0
        self.searched = 0
        self.expects_continue = False

    def end(self, buffer: bytes | bytearray) -> int | None:
        """Where the request ends in ``buffer`` if it is whole, else None. Raises Refused."""
        if self.head_end is None and not self._find_head(buffer):
            return None
        body_end = self.body_end
        if body_end is not None:
            return body_end if len(buffer) >= body_end else None
        return self._chunked_end(buffer)

    def _find_head(self, buffer: bytes | bytearray) -> bool:
        at = buffer.find(HEAD_END, self.searched)
        if at < 0:
            if len(buffer) > self.max_head:
                raise Refused(431, "request_header_fields_too_large",
                              f"the request head is larger than {self.max_head} bytes")
            self.searched = max(0, len(buffer) - 3)
            return False
        head_end = self.head_end = at + 4
        if head_end > self.max_head:
            raise Refused(431, "request_header_fields_too_large",
                          f"the request head is larger than {self.max_head} bytes")
        length = self._body_length(bytes(buffer[:at]))
        if length is None:  # chunked
            self.chunk_at = head_end
            return True
        if length > self.max_body:
            raise Refused(413, "request_entity_too_large",
                          f"the request body is larger than {self.max_body} bytes")
        self.body_end = head_end + length
        return True

    def _body_length(self, head: bytes) -> int | None:
        """The body's length, 0 when gunicorn would refuse the framing; None: chunked."""
        low = head.lower()
        if not self.strip_header_spaces and not any(mark in low for mark in SLOW_PATH_MARKS):
            count = low.count(b"content-length")
            if count == 0:
                return 0
            at = low.find(CONTENT_LENGTH)
            if count == 1 and at >= 0:
                line_end = low.find(b"\r\n", at + 2)
                return _length(low[at + len(CONTENT_LENGTH): line_end if line_end >= 0 else None])
        return self._body_length_slowly(head)

    def _body_length_slowly(self, head: bytes) -> int | None:
        lines = head.split(b"\r\n")
        fields: list[list[bytes]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and fields:  # obsolete folding
                fields[-1][1] += b" " + line.strip(b" \t")
                continue
            name, colon, value = line.partition(b":")
            if not colon:
                return 0
            if self.strip_header_spaces:
                name = name.rstrip(b" \t")
            fields.append([name.lower(), value.strip(b" \t")])
        lengths = [value for name, value in fields if name == b"content-length"]
        codings = [coding.strip(b" \t").lower() for name, value in fields
                   if name == b"transfer-encoding" for coding in value.split(b",")]
        self.expects_continue = not lines[0].endswith(b"HTTP/1.0") and any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in fields)
        if codings:
            chunked = codings[-1] == b"chunked" and codings.count(b"chunked") == 1
            return None if chunked and not lengths and not lines[0].endswith(b"HTTP/1.0") else 0
        return _length(lengths[0]) if len(lengths) == 1 else 0

    def _chunked_end(self, buffer: bytes | bytearray) -> int | None:
        at = self.chunk_at
        while True:
            line_end = buffer.find(b"\r\n", at, at + MAX_CHUNK_LINE)
            if line_end < 0:
                self.chunk_at = at
                return len(buffer) if len(buffer) - at > MAX_CHUNK_LINE else None
            size_text = bytes(buffer[at:line_end]).split(b";", 1)[0].rstrip(b" \t")
            if not size_text or size_text.strip(HEX_DIGITS):
                return len(buffer)  # gunicorn refuses the chunk size: nothing more to wait for
            size = int(size_text, 16)
            if size == 0:
                self.chunk_at = at
                return self._trailers_end(buffer, line_end + 2)
            self.chunked_bytes += size
            if self.chunked_bytes > self.max_body:
                raise Refused(413, "request_entity_too_large",
                              f"the request body is larger than {self.max_body} bytes")
            next_at = line_end + 2 + size + 2
            if len(buffer) < next_at:
                self.chunked_bytes -= size  # counted again when the chunk is in
                self.chunk_at = at
                return None
            at = next_at

    def _trailers_end(self, buffer: bytes | bytearray, start: int) -> int | None:
        if buffer[start:start + 2] == b"\r\n":
            return start + 2
        at = buffer.find(HEAD_END, start)
        if at >= 0:
            return at + 4
        if len(buffer) - start > self.max_head:
            raise Refused(431, "request_header_fields_too_large",
                          f"the request trailers are larger than {self.max_head} bytes")
        return None


def _length(value: bytes) -> int:
    """A Content-Length as gunicorn reads it; 0 for one it refuses (it answers 400)."""
    value = value.strip(b" \t")
    return int(value) if value.isdigit() else 0
