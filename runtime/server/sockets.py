"""The two socket stand-ins the worker gives gunicorn: what its parser reads a request
from, and what its response writes to."""

from __future__ import annotations

import socket
from collections import deque
from typing import Any

COALESCE_BYTES = 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BufferedSource:
    """What gunicorn's parser reads requests from: the bytes the event loop buffered,
    then, only should it want more than the framing said, the socket itself."""

    __slots__ = ("sock", "data", "at")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        self.at = 0

    def give(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self) -> bytes:
        """What the parser left unread."""
        rest = self.data[self.at:]
        self.data, self.at = b"", 0
        return rest

    def recv(self, size: int) -> bytes:
        data = self.data
        if not data:
            return self.sock.recv(size)
        at = self.at
        piece = data[at:at + size]
        self.at = at + len(piece)
        if self.at >= len(data):
            self.data, self.at = b"", 0
        return piece


class ResponseSocket:
    """A connection's socket while one response is written.

    The first ``sendall`` (gunicorn's status line and headers) is held and goes out with
    the next, when ``coalesce`` (bodies up to ``COALESCE_BYTES``). With a ``pending``
    queue, writes never block: what the socket does not take at once goes to
    ``pending``, in order, for the event loop to send as the client reads; without one
    they block as gunicorn's always do (TLS). Anything else done with the socket sends
    what is held first.
    """

    __slots__ = ("sock", "held", "pending", "coalesce", "skip_continue")

    def __init__(self, sock: socket.socket, pending: deque[Any] | None = None,
                 coalesce: bool = True, skip_continue: bool = False) -> None:
        self.sock = sock
        self.held: bytes | None = None  # None: nothing written yet
        self.pending = pending
        self.coalesce = coalesce
        self.skip_continue = skip_continue  # the event loop sent 100 Continue already

    def sendall(self, data: bytes) -> None:
        held = self.held
        if held is None and self.coalesce:
            self.held = bytes(data)
            return
        self.held = b""
        if held and len(data) <= COALESCE_BYTES:
            self._write(held + data)
            return
        if held:
            self._write(held)
        self._write(data)

    def send(self, data: bytes, flags: int = 0) -> int:
        if self.skip_continue and data == CONTINUE:
            self.skip_continue = False
            return len(data)
        self.flush()
        self._write(data)
        return len(data)

    def flush(self) -> None:
        held = self.held
        if held:
            self.held = b""
            self._write(held)

    def _write(self, data: bytes) -> None:
        pending = self.pending
        if pending is None:
            self.sock.sendall(data)
            return
        sent = 0
        if not pending:
            try:
                sent = self.sock.send(data, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                pass
        if sent < len(data):
            rest = memoryview(data)[sent:]
            pending.append(rest if type(data) is bytes else bytes(rest))

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self.sock, name)
