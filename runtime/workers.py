"""The gunicorn worker class behind ``WORKER_CLASS=gthread``: gunicorn's gthread worker
with four changes, for short CPU-bound scoring calls and for clients that are slow on
purpose or not (measured in bench/runtime/README.md).

**Balanced connections.** gthread keeps a connection on the worker that accepted it
for as long as the client keeps it alive, and which worker accepts is a race the
kernel decides. With 16 keep-alive clients on 2 workers we measured splits of 1/15 and
0/16; the loaded worker queues requests while the other core idles. A worker here
accepts a new connection only while no other worker of the container has fewer open
connections; each publishes its count on the shared board (``shared.py``), stamped at
every turn of its event loop. A worker that may not accept looks again every
``RECHECK_S`` and at every event of its own. A worker takes no part while it is
booting, while its event loop runs a request inline (below), once it is stopping (a
signal, ``max_requests``, a lost master), and when its stamp is older than
``STALE_S`` (a stopped or wedged process), so new connections never wait for it.
Balancing needs the one accept queue all workers share. gunicorn's own ``reuse_port``
gives each worker a listening socket of its own, the kernel picks one by a hash of
the connection, and a connection put in a worker that holds back would wait there:
so ``reuse_port`` turns balancing off, and ``gunicorn_conf`` never sets it (with
``REUSE_PORT`` its master binds one shared socket with ``SO_REUSEPORT`` instead).

**Requests read whole by the event loop.** gthread hands a new connection to a pool
thread, whose parser then waits in ``recv`` for as long as the client dribbles: a few
clients sending half a request each held every thread, and no new connection was
answered. Here the event loop reads each connection's bytes without blocking into a
buffer of its own until the request is whole (``framing.py``: the head, then a
``Content-Length`` or chunked body), and only then runs it, inline or on a thread,
gunicorn's parser reading from the buffer (``BufferedSource``). A client must send its
head within ``MOMA_HEADER_TIMEOUT_S`` of connecting (or of its first byte on a
kept-alive connection) and its body within ``MOMA_BODY_TIMEOUT_S`` after the head;
past that it gets ``408`` and is closed (closed quietly if it sent nothing). A head
over ``MAX_HEAD_BYTES`` gets ``431``, a body over ``MOMA_MAX_BODY_BYTES`` ``413``, both
before the rest is read. A worker holds at most ``THREADS`` x ``MOMA_MAX_BODY_BYTES``
of requests in memory (what gthread's threads could hold): past that, bodies are read
no further (each may have ``RECV_BYTES``) until held ones are answered or time out.
The loop answers ``Expect: 100-continue`` itself. A
connection gunicorn closes is drained and closed by the loop too (gthread lingered up
to 2 s in its loop), and should the framing ever disagree with gunicorn's parser, the
socket's ``SO_RCVTIMEO`` bounds how long a thread can wait for the difference. Not
with TLS, the PROXY protocol, uWSGI or cleartext HTTP/2 (those connections are
served as in gthread).

**Inline fast path.** gthread hands every request from its event loop to a pool thread
and the finished connection back through a pipe: two thread switches per request, and
the loop and the pool threads contend for the GIL. Here the loop runs a whole request
itself while the worker's last ``FAST_STREAK`` scoring requests each took at most the
inline budget (``INLINE_BUDGET_MS``, 10 ms by default; 0 turns the fast path off) and
no request since was slower, so a driver that is slow, or just was, runs on pool
threads where it cannot hold up the loop (new connections, health checks, the other
connections' requests). A call nobody could foresee as slow still runs inline once
and holds up that worker's other connections meanwhile (new ones go to the other
workers); a heartbeat thread then tells the master the worker is alive, as gthread's
free loop would, so a long run() is not taken for a hung worker.

**Answers that never wait for the client.** gunicorn sends a response's status line
and headers in one ``sendall`` and the body in another: two system calls and two TCP
segments. A ``ResponseSocket`` holds the headers back and sends them with the first
body bytes (bodies up to ``COALESCE_BYTES``; the runtime's own answers carry a
``Content-Length``, so there is no closing chunk to write apart). It never blocks: what
the socket's send buffer does not take at once is left to the event loop, which sends
it as the client reads, so a client that stops reading holds neither the loop nor a
thread; it is closed once it has taken nothing for ``WRITE_STALL_S``. The WSGI
environ's ``gunicorn.socket`` is that wrapper.
"""

from __future__ import annotations

import errno
import heapq
import http
import itertools
import json
import os
import selectors
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from functools import partial
from typing import Any

from gunicorn import http as gunicorn_http
from gunicorn.workers.gthread import TConn, ThreadWorker

from . import shared
from .config import parse_float, parse_int
from .framing import Refused, RequestFrame

RECHECK_S = 0.01
STALE_S = 1.5  # > the 1 s an idle gthread loop sleeps
INLINE_BUDGET_MS = 10
FAST_STREAK = 16
STREAK_PATHS = frozenset({"/score"})
PEEK_BYTES = 65536
COALESCE_BYTES = 65536
WRITE_STALL_S = 5.0
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
MAX_HEAD_BYTES = 65536
RECV_BYTES = 65536
MAX_RECV_BYTES = 1024 * 1024
LINGER_S = 2.0  # gthread's: how long a closing connection is drained
LINGER_BYTES = 65536
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# What a connection is doing, as far as the event loop is concerned.
READING, BUSY, WRITING, LINGERING, CLOSED = range(5)


def inline_budget_s(environ: Mapping[str, str]) -> float | None:
    """``INLINE_BUDGET_MS`` in seconds; None when 0 turns the inline fast path off."""
    budget_ms = parse_int("INLINE_BUDGET_MS", environ.get("INLINE_BUDGET_MS"), INLINE_BUDGET_MS)
    return budget_ms / 1000 if budget_ms else None


def client_timeouts(environ: Mapping[str, str]) -> tuple[float, float]:
    """``MOMA_HEADER_TIMEOUT_S`` and ``MOMA_BODY_TIMEOUT_S``."""
    return (parse_float("MOMA_HEADER_TIMEOUT_S", environ.get("MOMA_HEADER_TIMEOUT_S"),
                        HEADER_TIMEOUT_S),
            parse_float("MOMA_BODY_TIMEOUT_S", environ.get("MOMA_BODY_TIMEOUT_S"), BODY_TIMEOUT_S))


def request_complete(data: bytes) -> bool:
    """Whether ``data`` starts with a whole HTTP/1.x request that the parser can read
    without waiting for the client (a client expecting ``100 Continue`` waits for it)."""
    frame = RequestFrame(len(data) + 4, DEFAULT_MAX_BODY_BYTES)
    try:
        return frame.end(data) is not None and not frame.expects_continue
    except Refused:
        return False


class _Done:
    """The finished "future" ``finish_request`` gets for a request answered inline."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def cancelled(self) -> bool:
        return False

    def result(self) -> Any:
        return self.value


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
    the next, when ``coalesce``. With a ``pending`` queue, writes never block: what the
    socket does not take at once goes to ``pending``, in order, for the event loop to
    send; without one they block as gunicorn's always do (TLS). Anything else done with
    the socket sends what is held first.
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


class Inbox:
    """A connection's request as the event loop reads it."""

    __slots__ = ("buffer", "frame", "started", "continued")

    def __init__(self, frame: RequestFrame, buffer: bytes = b"", started: bool = False) -> None:
        self.buffer = bytearray(buffer)
        self.frame = frame
        self.started = started or bool(buffer)  # the head's clock runs
        self.continued = False  # the loop answered Expect: 100-continue


def _track(conn: TConn) -> TConn:
    """Give a gthread connection the state this worker keeps on it (once)."""
    if not hasattr(conn, "moma_state"):
        conn.moma_state = READING
        conn.moma_token = 0
        conn.moma_watched = False
        conn.moma_deadline = 0.0
        conn.moma_in = None
        conn.moma_out = None
        conn.moma_rest = b""
        conn.moma_continued = False
        conn.moma_held = 0
    return conn


def _keep(fs: Any) -> bool:
    """Whether the connection stays open after the request ``fs`` ran (gthread's
    reading of a request's outcome: a failed one closes)."""
    try:
        return bool(fs.result()) if not fs.cancelled() else False
    except Exception:  # noqa: BLE001
        return False


class ScoringWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._board: shared.Board | None = None
        self._open = 0
        self._cap = 0
        self._fast_streak = 0
        self._streak_lock = threading.Lock()
        self._inline: TConn | None = None  # the connection whose request the loop runs
        self._stopped = threading.Event()
        self._deadlines: list[tuple[float, int, TConn, int]] = []  # a heap; stale entries skipped
        self._order = itertools.count()
        self._watched: set[TConn] = set()  # connections the loop reads, writes or drains
        self._held = 0  # bytes of requests read and not yet answered
        self._paused: deque[TConn] = deque()  # bodies not read on while over the budget
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        plain = not (cfg.is_ssl or cfg.proxy_protocol != "off" or cfg.http2_cleartext != "off"
                     or getattr(cfg, "protocol", "http") != "http")
        self._budget_s = inline_budget_s(os.environ) or 0.0
        self._inline_allowed = self._budget_s > 0 and plain
        self._buffered = plain
        self._spill = not cfg.is_ssl
        self._balanced = not cfg.reuse_port  # per-worker listening sockets: see above
        self._header_s, self._body_s = client_timeouts(os.environ)
        self._max_body = parse_int("MOMA_MAX_BODY_BYTES", os.environ.get("MOMA_MAX_BODY_BYTES"),
                                   DEFAULT_MAX_BODY_BYTES, minimum=1)
        # As much request memory as gthread's threads could hold at once.
        self._budget = max(1, cfg.threads) * self._max_body
        recv_timeout = max(self._header_s, self._body_s)
        self._recv_timeval = struct.pack("ll", int(recv_timeout), int(recv_timeout % 1 * 1e6))
        self._send_timeval = struct.pack("ll", int(WRITE_STALL_S), 0)

    # -- balance: gthread's loop accepts while ``nr_conns < worker_connections``; both
    # are properties here, one publishing the count, the other folding in the balance.
    @property
    def nr_conns(self) -> int:
        return self._open

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        self._open = value
        self._publish(value)

    @property
    def worker_connections(self) -> int:
        board = self._board
        if board is None:
            return self._cap
        fewest = board.fewest_connections_elsewhere(time.monotonic() - STALE_S)
        return self._cap if fewest is None else min(self._cap, fewest + 1)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._cap = value

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self._publish(self._open)  # the loop's stamp, too
        if self.alive and not self._accepting:
            timeout = min(timeout, RECHECK_S)
        if self._deadlines:
            timeout = max(0.0, min(timeout, self._deadlines[0][0] - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)

    def _publish(self, count: int | None) -> None:
        board = self._board
        if board is None:
            return
        if not self.alive:  # stopping: SIGTERM, max_requests, the master gone
            self._withdraw()
            return
        board.publish_connections(count, time.monotonic())
        if self._board is None:  # a signal withdrew the worker meanwhile
            board.publish_connections(None)

    def _withdraw(self) -> None:
        """Leave the balance: a stopping worker accepts nothing more."""
        board, self._board = self._board, None
        if board is not None:
            board.publish_connections(None)

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> None:
        self._board = shared.inherited() if self._balanced else None
        self._publish(self._open)
        if self._inline_allowed:
            threading.Thread(target=self._heartbeat, name="moma-inline-heartbeat",
                             daemon=True).start()
        try:
            super().run()
        finally:
            self._withdraw()
            self._stopped.set()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._withdraw()
        super().handle_exit(sig, frame)

    def _heartbeat(self) -> None:
        interval = max(0.2, self.timeout / 4) if self.timeout else 5.0
        while not self._stopped.wait(interval):  # also while stopping: graceful_timeout
            if self._inline is not None:
                self.notify()

    # -- connections read whole by the loop ----------------------------------------------
    def accept(self, listener: Any) -> None:
        if not self._buffered:
            super().accept(listener)
            return
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = _track(TConn(self.cfg, sock, client, listener.getsockname()))
        try:  # bounds on a thread's blocking reads and writes, should one ever happen
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, self._recv_timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self._send_timeval)
        except OSError:
            self._close(conn)
            return
        conn.moma_in = Inbox(self._frame(), started=True)  # the head's clock runs from now
        conn.moma_deadline = time.monotonic() + self._header_s
        if self._pull(conn):  # often the request came with the connection
            self._advance(conn)
        elif conn.moma_state == READING:
            self._watch(conn, selectors.EVENT_READ, self._on_readable, conn.moma_deadline)

    def _frame(self) -> RequestFrame:
        return RequestFrame(MAX_HEAD_BYTES, self._max_body, self.cfg.strip_header_spaces)

    def _pull(self, conn: TConn) -> bool:
        """One read without waiting into the connection's inbox: whether bytes came. A
        connection the client closed (or broke) is closed here."""
        inbox = conn.moma_in
        frame = inbox.frame
        want = RECV_BYTES
        if frame.body_end is not None:
            want = min(MAX_RECV_BYTES, max(want, frame.body_end - len(inbox.buffer)))
        try:
            data = conn.sock.recv(want, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return False
        if not inbox.started:  # a kept-alive connection's next request begins
            inbox.started = True
            self._set_deadline(conn, time.monotonic() + self._header_s)
        inbox.buffer += data
        conn.moma_held += len(data)
        self._held += len(data)
        return True

    def _on_readable(self, conn: TConn, _sock: Any) -> None:
        if self._held >= self._budget and len(conn.moma_in.buffer) >= RECV_BYTES:
            self._pause(conn)
        elif self._pull(conn):
            self._advance(conn)

    def _pause(self, conn: TConn) -> None:
        """Over the memory budget: read no more of this body until requests in memory
        are answered (its deadline still runs). Every request may buffer RECV_BYTES."""
        self.poller.unregister(conn.sock)
        conn.moma_watched = False
        self._paused.append(conn)

    def _release(self, conn: TConn) -> None:
        """The connection's request bytes are no longer held: resume paused bodies."""
        self._held -= conn.moma_held
        conn.moma_held = 0
        paused = self._paused
        while paused and self._held < self._budget:
            waiting = paused.popleft()
            if waiting.moma_state == READING and not waiting.moma_watched \
                    and waiting in self._watched:
                waiting.moma_watched = True
                self.poller.register(waiting.sock, selectors.EVENT_READ,
                                     partial(self._on_readable, waiting))

    def _advance(self, conn: TConn) -> None:
        """After new bytes: run the request once it is whole, else wait for more."""
        inbox = conn.moma_in
        frame = inbox.frame
        had_head = frame.head_end is not None
        try:
            end = frame.end(inbox.buffer)
        except Refused as refused:
            self._refuse(conn, refused.status, refused.code, refused.message)
            return
        if end is not None:
            self._unwatch(conn)
            self._dispatch(conn, end)
            return
        if not had_head and frame.head_end is not None:  # the head is in: the body's clock
            self._set_deadline(conn, time.monotonic() + self._body_s)
            if frame.expects_continue and not inbox.continued:
                inbox.continued = True
                self._send_quietly(conn, CONTINUE)
        if not conn.moma_watched:
            self._watch(conn, selectors.EVENT_READ, self._on_readable, conn.moma_deadline)

    def _dispatch(self, conn: TConn, end: int) -> None:
        """The whole request is in: gunicorn's parser reads it from the buffer, on a
        pool thread or, on the fast path, right here."""
        inbox = conn.moma_in
        buffer = inbox.buffer
        source = conn.parser.unreader.sock if conn.parser is not None else None
        if source is None:
            source = BufferedSource(conn.sock)
            conn.parser = gunicorn_http.get_parser(self.cfg, source, conn.client)
            conn.initialized = True
        source.give(bytes(buffer[:end]))
        conn.moma_rest = bytes(buffer[end:])  # pipelined: the next request's first bytes
        conn.moma_continued = inbox.continued
        conn.moma_in = None
        conn.moma_state = BUSY
        conn.data_ready = True
        if self._fast_streak >= FAST_STREAK and self._inline_allowed:
            self._run_inline(conn)
        else:
            ThreadWorker.enqueue_req(self, conn)

    def _refuse(self, conn: TConn, status: int, code: str, message: str) -> None:
        """Answer an error from the loop (408, 413, 431) and close."""
        body = json.dumps({"message": message, "code": code}).encode()
        head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\nx-ms-request-id: {uuid.uuid4()}\r\n\r\n")
        self.log.debug("closing %s: %s (%d)", conn.client, message, status)
        self._send_quietly(conn, head.encode() + body)
        self._linger(conn)

    @staticmethod
    def _send_quietly(conn: TConn, data: bytes) -> None:
        try:
            conn.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass  # a small answer the client is not there to read: closing says the rest

    # -- after an answer ----------------------------------------------------------------
    def finish_request(self, conn: TConn, fs: Any) -> None:
        if getattr(conn, "moma_held", 0):
            self._release(conn)
        pending = getattr(conn, "moma_out", None)
        if pending:  # the rest of the answer, sent as the client reads
            self._watch(conn, selectors.EVENT_WRITE, self._on_writable,
                        time.monotonic() + WRITE_STALL_S, WRITING)
            conn.moma_keep = _keep(fs)
        elif self._buffered:
            self._answered(conn, _keep(fs))
        else:
            super().finish_request(conn, fs)

    def _answered(self, conn: TConn, keep: bool) -> None:
        if not self._buffered:
            super().finish_request(conn, _Done(keep))
            return
        if not keep:
            self._linger(conn)
            return
        # What the parser read ahead, then what the loop read behind the last request.
        rest = conn.parser.unreader.take_buffered() + conn.parser.unreader.sock.take() \
            + conn.moma_rest
        conn.moma_rest = b""
        conn.moma_in = Inbox(self._frame(), rest)
        conn.moma_held = len(rest)
        self._held += len(rest)
        conn.moma_state = READING
        now = time.monotonic()
        if rest:  # pipelined: on the loop's next turn (inline answers must not nest)
            conn.moma_deadline = now + self._header_s
            self.method_queue.defer(self._advance, conn)
            return
        idle = now + self.cfg.keepalive
        if not self.alive:  # stopping: a request already on its way is still answered
            idle = min(idle, now + LINGER_S)
        self._watch(conn, selectors.EVENT_READ, self._on_readable, idle)

    def _on_writable(self, conn: TConn, _sock: Any) -> None:
        pending = conn.moma_out
        sent = 0
        try:
            while pending:
                piece = pending[0]
                count = conn.sock.send(piece, socket.MSG_DONTWAIT)
                sent += count
                if count < len(piece):
                    pending[0] = memoryview(piece)[count:]
                    break
                pending.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(conn)
            return
        if pending:
            if sent:
                conn.moma_deadline = time.monotonic() + WRITE_STALL_S
            return
        self._unwatch(conn)
        self._answered(conn, conn.moma_keep)

    def _linger(self, conn: TConn) -> None:
        """Close as gunicorn does (RFC 9112 9.6): send FIN, drain what the client still
        sends for a while, then close; from the loop, without waiting in it."""
        self._unwatch(conn)
        conn.moma_in = None
        self._release(conn)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.moma_drained = 0
        self._watch(conn, selectors.EVENT_READ, self._on_lingering,
                    time.monotonic() + LINGER_S, LINGERING)

    def _on_lingering(self, conn: TConn, _sock: Any) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.moma_drained += len(data)
        if not data or conn.moma_drained >= LINGER_BYTES:
            self._close(conn)

    # -- the poller and the clocks --------------------------------------------------------
    def _watch(self, conn: TConn, events: int, callback: Any, deadline: float,
               state: int = READING) -> None:
        self._unwatch(conn)
        conn.moma_state = state
        conn.moma_token += 1
        conn.moma_deadline = deadline
        conn.moma_watched = True
        self._watched.add(conn)
        self.poller.register(conn.sock, events, partial(callback, conn))
        heapq.heappush(self._deadlines, (deadline, next(self._order), conn, conn.moma_token))

    def _unwatch(self, conn: TConn) -> None:
        self._watched.discard(conn)
        if conn.moma_watched:
            conn.moma_watched = False
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _set_deadline(self, conn: TConn, deadline: float) -> None:
        """A new deadline in the same state; an earlier one needs an entry of its own."""
        if deadline < conn.moma_deadline:
            heapq.heappush(self._deadlines, (deadline, next(self._order), conn, conn.moma_token))
        conn.moma_deadline = deadline

    def _close(self, conn: TConn) -> None:
        if conn.moma_state == CLOSED:
            return
        self._unwatch(conn)
        conn.moma_state = CLOSED
        conn.moma_token += 1
        conn.moma_out = None
        self._release(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        heap, now = self._deadlines, time.monotonic()
        if force:
            for conn in list(self._watched):
                self._close(conn)
            heap.clear()
            return
        while heap and heap[0][0] <= now:
            _, _, conn, token = heapq.heappop(heap)
            if token != conn.moma_token:
                continue  # the connection moved on since
            if conn.moma_deadline > now:  # extended meanwhile
                heapq.heappush(heap, (conn.moma_deadline, next(self._order), conn, token))
                continue
            self._expire(conn)

    def _expire(self, conn: TConn) -> None:
        state = conn.moma_state
        if state == WRITING:
            self.log.warning("closing %s: the client did not read its answer within %s s",
                             conn.client, WRITE_STALL_S)
            self._close(conn)
        elif state == READING:
            # What came while the loop was busy (a long inline call) still counts.
            token = conn.moma_token
            if self._pull(conn):
                self._advance(conn)
            if conn.moma_state != READING or conn.moma_token != token:
                return  # run, refused or closed
            if conn.moma_deadline > time.monotonic():  # a request began: its own clock
                heapq.heappush(self._deadlines,
                               (conn.moma_deadline, next(self._order), conn, token))
                return
            if conn.moma_in.buffer:
                phase = "body" if conn.moma_in.frame.head_end is not None else "head"
                limit = self._body_s if phase == "body" else self._header_s
                self._refuse(conn, 408, "request_timeout",
                             f"the request {phase} did not arrive within {limit:g} s")
            else:
                self._close(conn)
        else:
            self._close(conn)

    def _cap_keepalive(self, deadline: float) -> None:
        super()._cap_keepalive(deadline)
        for conn in self._watched:
            if conn.moma_state == READING and not conn.moma_in.buffer:
                conn.moma_deadline = min(conn.moma_deadline, deadline)
                self._set_deadline(conn, conn.moma_deadline)

    # -- inline fast path ---------------------------------------------------------------
    def enqueue_req(self, conn: TConn) -> None:
        """gthread's path to the pool (when requests are not buffered): the loop still
        answers a request itself when the whole of it is in the socket already."""
        _track(conn)
        if self._fast_streak < FAST_STREAK or not self._whole_request_waiting(conn):
            super().enqueue_req(conn)
            return
        conn.data_ready = True
        self._run_inline(conn)

    def _run_inline(self, conn: TConn) -> None:
        self._publish(None)  # busy: new connections go to the other workers meanwhile
        self._inline = conn
        try:
            result = self.handle(conn)
        finally:
            self._inline = None
            self._publish(self._open)
        self.finish_request(conn, _Done(result))

    def _whole_request_waiting(self, conn: TConn) -> bool:
        if not self._inline_allowed or conn.is_http2:
            return False
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return False  # read ahead into the next request: the pool path copes
        try:
            data = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True  # a broken connection: handle() closes it at once
        return not data or request_complete(data)

    def handle_request(self, req: Any, conn: TConn) -> bool:
        """gthread's, timed for the fast streak, writing through a ResponseSocket."""
        sock = conn.sock
        pending = None
        if self._spill:
            pending = conn.moma_out = deque()
        writer = conn.sock = ResponseSocket(  # type: ignore[assignment]
            sock, pending, skip_continue=conn.moma_continued)
        started = time.perf_counter()
        try:
            keep = super().handle_request(req, conn)
            writer.flush()  # an answer without a body: its headers are still held
            return keep
        finally:
            conn.sock = sock
            self._count(req.path, time.perf_counter() - started)

    def _count(self, path: str, seconds: float) -> None:
        if not self._inline_allowed:
            return
        with self._streak_lock:  # pool threads and the loop: a reset must not be lost
            if seconds > self._budget_s:
                self._fast_streak = 0
            elif path in STREAK_PATHS:
                self._fast_streak += 1
