"""The gunicorn worker class behind ``WORKER_CLASS=gthread``: gunicorn's gthread worker
with three changes that matter for short CPU-bound scoring calls (measured in
bench/runtime/README.md).

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

**Inline fast path.** gthread hands every request from its event loop to a pool thread
and the finished connection back through a pipe: two thread switches per request, and
the loop and the pool threads contend for the GIL. Here the loop answers a request
itself when both hold:

- the whole request is already in the socket's receive buffer (headers and a
  ``Content-Length`` body, seen with ``MSG_PEEK``), so reading it never waits for the
  client; anything else (a partial, chunked, ``Expect``-ing or upgrading request, a
  body still on its way behind its headers, a new connection whose request has not
  arrived yet, TLS, the PROXY protocol, cleartext HTTP/2) goes to the pool as in
  gthread;
- the worker's last ``FAST_STREAK`` scoring requests each took at most the inline
  budget (``INLINE_BUDGET_MS``, 10 ms by default; 0 turns the fast path off) and no
  request since was slower, so a driver that is slow, or just was, runs on pool
  threads where it cannot hold up the loop (new connections, health checks, the other
  connections' requests).

A call nobody could foresee as slow still runs inline once and holds up that worker's
other connections meanwhile (new ones go to the other workers). While a request runs
inline a heartbeat thread tells the master the worker is alive, as gthread's free loop
would, so a long run() is not taken for a hung worker; and an inline answer that the
client does not read within ``WRITE_STALL_S`` closes the connection rather than hold
the loop.

**One write per response.** gunicorn sends a response's status line and headers in one
``sendall`` and the body in another: two system calls and two TCP segments for the
client to read. A ``CoalescingSocket`` holds the headers back and sends them with the
first body bytes (bodies up to ``COALESCE_BYTES``; the runtime's own answers carry a
``Content-Length``, so there is no closing chunk to write apart). The WSGI environ's
``gunicorn.socket`` is that wrapper.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from . import shared
from .config import parse_int

RECHECK_S = 0.01
STALE_S = 1.5  # > the 1 s an idle gthread loop sleeps
INLINE_BUDGET_MS = 10
FAST_STREAK = 16
STREAK_PATHS = frozenset({"/score"})
PEEK_BYTES = 65536
COALESCE_BYTES = 65536
WRITE_STALL_S = 5.0
CONTENT_LENGTH = b"\r\ncontent-length:"
UNSURE_HEADERS = (b"\r\ntransfer-encoding:", b"\r\nexpect:", b"\r\nupgrade:")


def inline_budget_s(environ: Mapping[str, str]) -> float | None:
    """``INLINE_BUDGET_MS`` in seconds; None when 0 turns the inline fast path off."""
    budget_ms = parse_int("INLINE_BUDGET_MS", environ.get("INLINE_BUDGET_MS"), INLINE_BUDGET_MS)
    return budget_ms / 1000 if budget_ms else None


def request_complete(data: bytes) -> bool:
    """Whether ``data`` starts with a whole HTTP/1.x request: headers and, when
    announced, its ``Content-Length`` body. Chunked, ``Expect``-ing or unclear requests
    count as incomplete, and so do upgrades: the pool path reads them as gunicorn
    always does."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end].lower()
    if any(name in head for name in UNSURE_HEADERS):
        return False
    at = head.find(CONTENT_LENGTH)
    if head.count(b"content-length") != (at >= 0):
        return False  # two of them, an odd spelling, or the name elsewhere: the pool
    if at < 0:
        return True
    line_end = head.find(b"\r\n", at + 2)
    value = head[at + len(CONTENT_LENGTH): line_end if line_end >= 0 else len(head)].strip()
    return value.isdigit() and len(data) >= end + 4 + int(value)


class _Done:
    """The finished "future" ``finish_request`` gets for a request answered inline."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def cancelled(self) -> bool:
        return False

    def result(self) -> Any:
        return self.value


class ClientStalled(TimeoutError):
    """An inline answer's client did not take it within ``WRITE_STALL_S``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(errno.ETIMEDOUT, f"the client did not read its answer within {seconds} s")


class CoalescingSocket:
    """A connection's socket while one response is written: the first ``sendall``
    (gunicorn's status line and headers) is held and goes out with the next. Anything
    else done with the socket sends what is held first.

    With ``stall_s`` (requests answered inline) a client that has not taken the whole
    answer that long after the socket's buffer filled gets its connection closed
    (``ClientStalled``) instead of holding up the event loop; without it writes block
    as gunicorn's always do.
    """

    __slots__ = ("sock", "held", "stall_s")

    def __init__(self, sock: socket.socket, stall_s: float | None = None) -> None:
        self.sock = sock
        self.held: bytes | None = None  # None: nothing written yet
        self.stall_s = stall_s

    def sendall(self, data: bytes) -> None:
        held = self.held
        if held is None:
            self.held = bytes(data)
            return
        self.held = b""
        if held and len(data) <= COALESCE_BYTES:
            self._send(held + data)
            return
        if held:
            self._send(held)
        self._send(data)

    def flush(self) -> None:
        held = self.held
        if held:
            self.held = b""
            self._send(held)

    def _send(self, data: bytes) -> None:
        if self.stall_s is None:
            self.sock.sendall(data)
            return
        view, deadline = memoryview(data), 0.0
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            now = time.monotonic()
            deadline = deadline or now + self.stall_s
            waiter = select.poll()
            waiter.register(self.sock, select.POLLOUT)
            if now >= deadline or not waiter.poll((deadline - now) * 1000):
                raise ClientStalled(self.stall_s)

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self.sock, name)


class ScoringWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._board: shared.Board | None = None
        self._open = 0
        self._cap = 0
        self._fast_streak = 0
        self._streak_lock = threading.Lock()
        self._inline: TConn | None = None  # the connection whose request the loop runs
        self._stopped = threading.Event()
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        self._budget_s = inline_budget_s(os.environ) or 0.0
        self._inline_allowed = self._budget_s > 0 and not (
            cfg.is_ssl or cfg.proxy_protocol != "off" or cfg.strip_header_spaces
            or cfg.http2_cleartext != "off")
        self._balanced = not cfg.reuse_port  # per-worker listening sockets: see above

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

    # -- inline fast path ---------------------------------------------------------------
    def enqueue_req(self, conn: TConn) -> None:
        if self._fast_streak < FAST_STREAK or not self._whole_request_waiting(conn):
            super().enqueue_req(conn)
            return
        conn.data_ready = True
        self._publish(None)  # busy: new connections go to the other workers meanwhile
        self._inline = conn
        started = time.monotonic()
        try:
            result = self.handle(conn)
        finally:
            self._inline = None
            self._publish(self._open)
            self._forgive_idle(time.monotonic() - started)
        self.finish_request(conn, _Done(result))

    def _forgive_idle(self, seconds: float) -> None:
        """After a slow inline call: the loop was away, so the other connections' keep-alive
        clocks move on by as much; one that sent a request meanwhile is answered, not
        closed for idling."""
        if seconds > self._budget_s:
            for waiting in (self.keepalived_conns, self.pending_conns):
                for other in waiting:
                    other.timeout += seconds

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
        """gthread's, timed for the fast streak, writing through a CoalescingSocket."""
        sock = conn.sock
        coalescing = conn.sock = CoalescingSocket(  # type: ignore[assignment]
            sock, WRITE_STALL_S if conn is self._inline else None)
        started = time.perf_counter()
        try:
            keep = super().handle_request(req, conn)
            coalescing.flush()  # an answer without a body: its headers are still held
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
