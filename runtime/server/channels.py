"""Client connections on a worker's event loop, read and answered without ever waiting
in it: the worker's defence against clients that are slow on purpose or not.

A ``Channel`` is one connection as the loop sees it; ``Channels`` moves each through
its states on the loop's selector::

    READING ──(whole request)──► BUSY ──(answered)──► WRITING ──► READING (keep-alive)
       │  (deadline: 408; over a cap: 413/431)          │  (no progress: closed)
       └──────────────► LINGERING ◄─────────────────────┴──► (not kept: drained, closed)

- *Reading*: the loop reads a connection's bytes without blocking into a buffer of its
  own until ``framing.RequestFrame`` says the request is whole, then hands the bytes
  to the worker's ``run`` (inline or on a thread). The head must come within
  ``header_s`` of connecting (or of a kept-alive connection's first byte), the body
  within ``body_s`` after the head: past that 408 and close, or just close when
  nothing came. ``Expect: 100-continue`` is answered here. A worker holds at most
  ``memory`` bytes of requests: past that, bodies beyond their first ``RECV_BYTES`` are
  read no further until held requests are answered or time out.
- *Writing*: what an answer's socket did not take at once (``sockets.ResponseSocket``
  leaves it in ``channel.pending``) is sent as the client reads; a client that takes
  nothing for ``write_stall_s`` is closed.
- *Lingering*: a connection that closes sends FIN and is drained for ``LINGER_S`` (as
  gunicorn does, so the client sees the last answer rather than a reset), from the
  loop, never waiting in it.

Deadlines sit in a heap with lazy deletion: an entry is only valid while its token
matches the channel's, and a deadline that moved later is pushed again when its old
entry comes up.
"""

from __future__ import annotations

import dataclasses
import heapq
import http
import itertools
import json
import logging
import selectors
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from ..oip.routes import is_oip_path
from .framing import Refused, RequestFrame
from .sockets import CONTINUE

RECV_BYTES = 65536
MAX_RECV_BYTES = 1024 * 1024
LINGER_S = 2.0
LINGER_BYTES = 65536

READING, BUSY, WRITING, LINGERING, CLOSED = range(5)


@dataclasses.dataclass(frozen=True)
class Limits:
    header_s: float  # a request's head must be in this long after it began
    body_s: float  # its body this long after its head
    write_stall_s: float  # a client that takes none of its answer this long is closed
    max_head: int
    max_body: int
    memory: int  # request bytes held at once, past which bodies wait
    strip_header_spaces: bool = False  # gunicorn's setting: "Name : value" accepted


class Channel:
    """One client connection on the loop. ``owner`` is the server's own object for it."""

    __slots__ = ("sock", "owner", "state", "token", "deadline", "watched", "buffer", "frame",
                 "started", "continued", "rest", "held", "pending", "drained", "then")

    def __init__(self, sock: socket.socket, owner: Any) -> None:
        self.sock = sock
        self.owner = owner
        self.state = BUSY
        self.token = 0
        self.deadline = 0.0
        self.watched = False  # registered with the selector
        self.buffer = bytearray()
        self.frame: RequestFrame | None = None
        self.started = False  # the head's clock runs
        self.continued = False  # the loop answered this request's Expect: 100-continue
        self.rest = b""  # bytes behind the request being served: the next one's start
        self.held = 0  # request bytes this channel counts against the memory budget
        self.pending: deque[Any] = deque()  # answer bytes the socket has not taken yet
        self.drained = 0
        self.then: Callable[[], None] | None = None  # after the pending bytes are sent


class Channels:
    """Every channel of one event loop.

    ``run(channel, request)`` runs a whole request (the channel is BUSY until the
    server calls ``answered``); ``closed(channel)`` is told of every channel closed here;
    ``defer(callback)`` runs a callback on the loop's next turn; ``dropped(reason)`` is
    told of every client closed for being slow or sending too much (``DROP_REASONS``).
    """

    def __init__(self, selector: selectors.BaseSelector, limits: Limits,
                 run: Callable[[Channel, bytes], None], closed: Callable[[Channel], None],
                 defer: Callable[[Callable[[], None]], None], log: logging.Logger | Any,
                 dropped: Callable[[str], None] = lambda reason: None) -> None:
        self.selector = selector
        self.limits = limits
        self._run = run
        self._closed = closed
        self._defer = defer
        self._dropped = dropped
        self.log = log
        self._deadlines: list[tuple[float, int, Channel, int]] = []
        self._order = itertools.count()
        self._kept: set[Channel] = set()  # channels the loop reads, writes or drains
        self._held = 0
        self._paused: deque[Channel] = deque()

    # -- new connections and requests --------------------------------------------------
    def open(self, channel: Channel) -> None:
        """A new connection: read its first request; the head's clock runs from now."""
        self._expect_request(channel, b"", started=True)
        if channel.state == READING and self._pull(channel):  # often here already
            self._advance(channel)
        if channel.state == READING and not channel.watched:
            self._watch(channel, selectors.EVENT_READ, self._on_readable, channel.deadline,
                        READING)

    def answered(self, channel: Channel, keep: bool, leftover: bytes = b"",
                 idle_s: float = 5.0) -> None:
        """The server answered the channel's request: send what the socket did not take,
        then read the next request (kept-alive for ``idle_s``; ``leftover``: bytes the
        server's parser read ahead) or close."""
        self._release(channel)
        then = partial(self._next, channel, keep, leftover, idle_s)
        if channel.pending:
            self.flush(channel, then)
        else:
            then()

    def flush(self, channel: Channel, then: Callable[[], None]) -> None:
        """Send the channel's pending bytes as the client reads, then ``then()``."""
        channel.then = then
        self._watch(channel, selectors.EVENT_WRITE, self._on_writable,
                    time.monotonic() + self.limits.write_stall_s, WRITING)

    def _next(self, channel: Channel, keep: bool, leftover: bytes, idle_s: float) -> None:
        if not keep:
            self.linger(channel)
            return
        rest, channel.rest = leftover + channel.rest, b""
        self._expect_request(channel, rest, started=bool(rest))
        if rest:  # pipelined: on the loop's next turn (inline answers must not nest)
            self._defer(partial(self._advance, channel))
            return
        self._watch(channel, selectors.EVENT_READ, self._on_readable,
                    time.monotonic() + idle_s, READING)

    def _expect_request(self, channel: Channel, data: bytes, started: bool) -> None:
        limits = self.limits
        channel.state = READING
        channel.buffer = bytearray(data)
        channel.frame = RequestFrame(limits.max_head, limits.max_body,
                                     limits.strip_header_spaces)
        channel.started = started
        channel.continued = False
        channel.held += len(data)
        self._held += len(data)
        if started:
            channel.deadline = time.monotonic() + limits.header_s

    def _on_readable(self, channel: Channel, _sock: Any) -> None:
        if self._held >= self.limits.memory and len(channel.buffer) >= RECV_BYTES:
            self._pause(channel)
        elif self._pull(channel):
            self._advance(channel)

    def _pull(self, channel: Channel) -> bool:
        """One read without waiting: whether bytes came. A connection the client closed
        (or broke) is closed here."""
        frame = channel.frame
        want = RECV_BYTES
        if frame is not None and frame.body_end is not None:
            want = min(MAX_RECV_BYTES, max(want, frame.body_end - len(channel.buffer)))
        try:
            data = channel.sock.recv(want, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self.close(channel)
            return False
        if not channel.started:  # a kept-alive connection's next request begins
            channel.started = True
            self._set_deadline(channel, time.monotonic() + self.limits.header_s)
        channel.buffer += data
        channel.held += len(data)
        self._held += len(data)
        return True

    def _advance(self, channel: Channel) -> None:
        """After new bytes: run the request once it is whole, else wait for more."""
        frame = channel.frame
        assert frame is not None
        had_head = frame.head_end is not None
        try:
            end = frame.end(channel.buffer)
        except Refused as refused:
            self._dropped("head_too_large" if refused.status == 431 else "body_too_large")
            self.refuse(channel, refused.status, refused.code, refused.message)
            return
        if end is not None:
            self._unwatch(channel)
            buffer = channel.buffer
            channel.rest = bytes(buffer[end:])
            channel.buffer = bytearray()
            channel.state = BUSY
            channel.token += 1
            self._run(channel, bytes(buffer[:end]))
            return
        if not had_head and frame.head_end is not None:  # the head is in: the body's clock
            self._set_deadline(channel, time.monotonic() + self.limits.body_s)
            if frame.expects_continue and not channel.continued:
                channel.continued = True
                self._send_quietly(channel, CONTINUE)
        if not channel.watched:
            self._watch(channel, selectors.EVENT_READ, self._on_readable, channel.deadline,
                        READING)

    def refuse(self, channel: Channel, status: int, code: str, message: str) -> None:
        """Answer an error from the loop (408, 413, 431) and close: moma's error shape, or
        the Open Inference Protocol's on its routes."""
        if is_oip_path(_request_path(channel.buffer)):
            body = json.dumps({"error": message}).encode()
        else:
            body = json.dumps({"message": message, "code": code}).encode()
        head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\nx-ms-request-id: {uuid.uuid4()}\r\n\r\n")
        self.log.debug("closing a connection: %s (%d)", message, status)
        self._send_quietly(channel, head.encode() + body)
        self.linger(channel)

    @staticmethod
    def _send_quietly(channel: Channel, data: bytes) -> None:
        try:
            channel.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass  # a small answer the client is not there to read: closing says the rest

    # -- memory budget -------------------------------------------------------------------
    def _pause(self, channel: Channel) -> None:
        """Over the memory budget: read no more of this body until requests in memory
        are answered (its deadline still runs)."""
        self.selector.unregister(channel.sock)
        channel.watched = False
        self._paused.append(channel)

    def _release(self, channel: Channel) -> None:
        """The channel's request bytes are no longer held: resume paused bodies."""
        self._held -= channel.held
        channel.held = 0
        paused = self._paused
        while paused and self._held < self.limits.memory:
            waiting = paused.popleft()
            if waiting.state == READING and not waiting.watched and waiting in self._kept:
                waiting.watched = True
                self.selector.register(waiting.sock, selectors.EVENT_READ,
                                       partial(self._on_readable, waiting))

    # -- writing and closing ---------------------------------------------------------------
    def _on_writable(self, channel: Channel, _sock: Any) -> None:
        pending = channel.pending
        sent = 0
        try:
            while pending:
                piece = pending[0]
                count = channel.sock.send(piece, socket.MSG_DONTWAIT)
                sent += count
                if count < len(piece):
                    pending[0] = memoryview(piece)[count:]
                    break
                pending.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close(channel)
            return
        if pending:
            if sent:
                channel.deadline = time.monotonic() + self.limits.write_stall_s
            return
        self._unwatch(channel)
        then, channel.then = channel.then, None
        if then is not None:
            then()

    def linger(self, channel: Channel) -> None:
        """Close as gunicorn does (RFC 9112 9.6): send FIN, drain what the client still
        sends for a while, then close."""
        self._unwatch(channel)
        channel.buffer = bytearray()
        self._release(channel)
        try:
            channel.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(channel)
            return
        channel.drained = 0
        self._watch(channel, selectors.EVENT_READ, self._on_lingering,
                    time.monotonic() + LINGER_S, LINGERING)

    def _on_lingering(self, channel: Channel, _sock: Any) -> None:
        try:
            data = channel.sock.recv(RECV_BYTES, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        channel.drained += len(data)
        if not data or channel.drained >= LINGER_BYTES:
            self.close(channel)

    def close(self, channel: Channel) -> None:
        if channel.state == CLOSED:
            return
        self._unwatch(channel)
        channel.state = CLOSED
        channel.token += 1
        channel.pending.clear()
        channel.then = None
        self._release(channel)
        self._closed(channel)

    # -- the selector and the clocks -----------------------------------------------------
    def _watch(self, channel: Channel, events: int, callback: Any, deadline: float,
               state: int) -> None:
        self._unwatch(channel)
        channel.state = state
        channel.token += 1
        channel.deadline = deadline
        channel.watched = True
        self._kept.add(channel)
        self.selector.register(channel.sock, events, partial(callback, channel))
        heapq.heappush(self._deadlines, (deadline, next(self._order), channel, channel.token))

    def _unwatch(self, channel: Channel) -> None:
        self._kept.discard(channel)
        if channel.watched:
            channel.watched = False
            try:
                self.selector.unregister(channel.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _set_deadline(self, channel: Channel, deadline: float) -> None:
        """A new deadline in the same state; an earlier one needs an entry of its own."""
        if deadline < channel.deadline:
            heapq.heappush(self._deadlines,
                           (deadline, next(self._order), channel, channel.token))
        channel.deadline = deadline

    def timeout(self, longest: float) -> float:
        """How long the loop may wait for events before a deadline comes up."""
        heap = self._deadlines
        if not heap:
            return longest
        return max(0.0, min(longest, heap[0][0] - time.monotonic()))

    def expire(self) -> None:
        """Act on every deadline that has passed."""
        heap, now = self._deadlines, time.monotonic()
        while heap and heap[0][0] <= now:
            _, _, channel, token = heapq.heappop(heap)
            if token != channel.token:
                continue  # the channel moved on since
            if channel.deadline > now:  # extended meanwhile
                heapq.heappush(heap, (channel.deadline, next(self._order), channel, token))
                continue
            self._expire(channel)

    def _expire(self, channel: Channel) -> None:
        state = channel.state
        if state == WRITING:
            self.log.warning("closing a connection: the client did not read its answer "
                             "within %s s", self.limits.write_stall_s)
            self._dropped("answer_stalled")
            self.close(channel)
        elif state == READING:
            # What came while the loop was busy (a long inline call) still counts.
            token = channel.token
            if self._pull(channel):
                self._advance(channel)
            if channel.state != READING or channel.token != token:
                return  # run, refused or closed
            if channel.deadline > time.monotonic():  # a request began: its own clock
                heapq.heappush(self._deadlines,
                               (channel.deadline, next(self._order), channel, token))
                return
            if channel.buffer:
                assert channel.frame is not None
                part = "body" if channel.frame.head_end is not None else "head"
                limit = self.limits.body_s if part == "body" else self.limits.header_s
                self._dropped(f"{part}_timeout")
                self.refuse(channel, 408, "request_timeout",
                            f"the request {part} did not arrive within {limit:g} s")
            else:
                if channel.started:  # a new connection that said nothing, not an idle one
                    self._dropped("silent")
                self.close(channel)
        else:
            self.close(channel)

    def cap_idle(self, deadline: float) -> None:
        """Close idle kept-alive connections by ``deadline`` at the latest (stopping)."""
        for channel in self._kept:
            if channel.state == READING and not channel.buffer:
                self._set_deadline(channel, min(channel.deadline, deadline))

    def close_all(self) -> None:
        for channel in list(self._kept):
            self.close(channel)
        self._deadlines.clear()


def _request_path(buffer: bytes | bytearray) -> str:
    """The path of the request line at the start of ``buffer`` ("" before it is in)."""
    line = bytes(buffer[:buffer.find(b"\n")]) if b"\n" in buffer[:8192] else b""
    parts = line.split(b" ")
    return parts[1].split(b"?", 1)[0].decode("latin-1") if len(parts) >= 3 else ""
