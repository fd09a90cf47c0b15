"""``ScoringWorker``, the gunicorn worker class behind ``WORKER_CLASS=gthread``:
gunicorn's gthread worker with four changes for short CPU-bound scoring calls and for
clients that are slow on purpose or not, each switchable (``Features``; their measured
worth is in runtime/README.md). This is the one module that touches gthread's
internals: every member it relies on is listed in ``compat.MEMBERS``, which a test
checks against the installed gunicorn, and ``gunicorn_conf`` falls back to the stock
gthread worker on a gunicorn version not in ``compat.WRITTEN_FOR``.

**Balanced connections** (``WORKER_BALANCE``). gthread keeps a connection on the worker
that accepted it for as long as the client keeps it alive, and which worker accepts is
a race the kernel decides, which can leave one worker with nearly every connection. A
worker here accepts a new connection only while no other worker of the container has
fewer open connections; each publishes its count in the shared memory
(``shared_memory.ConnectionBalance``), stamped at every turn of its event loop. A worker
that may not accept looks again every ``RECHECK_S`` and at every event of its own. A
worker takes no part while it is booting, while its event loop runs a request inline,
once it is stopping (a signal, ``max_requests``, a lost master), and when its stamp is
older than ``STALE_S`` (a stopped or wedged process), so new connections never wait for
it. Balancing needs the one accept queue all workers share: gunicorn's own
``reuse_port`` (a listening socket per worker, picked by the kernel's hash, where a
connection put in a worker that holds back would wait) turns it off, and
``gunicorn_conf`` never sets it (``REUSE_PORT`` binds one shared ``SO_REUSEPORT``
socket in the master instead).

**Requests read whole by the event loop** (``WORKER_READ_WHOLE``). gthread hands a new
connection to a pool thread, whose parser then waits in ``recv`` for as long as the
client dribbles: a few clients sending half a request each held every thread. Here the
loop reads every connection without blocking until its request is whole
(``channels.py``, with deadlines and caps) and only then runs it, gunicorn's parser
reading from the buffer (``sockets.BufferedSource``). Should the framing ever disagree
with gunicorn's parser, ``SO_RCVTIMEO`` bounds how long a thread waits for the
difference. Not with TLS, the PROXY protocol, uWSGI or cleartext HTTP/2: those
connections are served as gthread serves them.

**Inline fast path** (``INLINE_BUDGET_MS``, 0: off). gthread hands every request from its
event loop to a pool thread and the connection back through a pipe: two thread
switches per request, and GIL contention. Here the loop runs a whole request itself
while the worker's last ``FAST_STREAK`` scoring requests each took at most the budget
(10 ms by default) and none since was slower, so a driver that is slow, or just was,
runs on pool threads where it cannot hold up the loop. A call nobody could foresee as
slow still runs inline once (new connections go to the other workers meanwhile); a
heartbeat thread then tells the master the worker is alive.

**One write per response** (``WORKER_ONE_WRITE``). gunicorn sends a response's status
line and headers in one ``sendall`` and the body in another: two system calls, two
TCP segments. ``sockets.ResponseSocket`` holds the headers back and sends them with
the first body bytes. Whatever the switch, answers are written without blocking: what
the socket does not take at once is sent by the loop as the client reads
(``channels.py``), so a client that does not read holds neither the loop nor a thread.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from gunicorn import http as gunicorn_http
from gunicorn.workers.gthread import TConn, ThreadWorker

from .. import shared_memory
from ..config import Settings, parse_bool, parse_float, parse_int
from .channels import LINGER_S, Channel, Channels, Limits
from .framing import Refused, RequestFrame
from .sockets import BufferedSource, ResponseSocket

RECHECK_S = 0.01
STALE_S = 1.5  # > the 1 s an idle gthread loop sleeps
INLINE_BUDGET_MS = 10
FAST_STREAK = 16
STREAK_PATHS = frozenset({"/score"})  # and a model's /v2/.../infer (scoring calls: is_scoring)
PEEK_BYTES = 65536
WRITE_STALL_S = 5.0
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_HEAD_BYTES = 65536


@dataclasses.dataclass(frozen=True)
class Features:
    """Which of the worker's changes are on (all, by default)."""

    balance: bool = True
    read_whole: bool = True
    inline_budget_s: float | None = INLINE_BUDGET_MS / 1000  # None: no inline path
    one_write: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Features":
        return cls(balance=parse_bool("WORKER_BALANCE", environ.get("WORKER_BALANCE"), True),
                   read_whole=parse_bool("WORKER_READ_WHOLE", environ.get("WORKER_READ_WHOLE"),
                                         True),
                   inline_budget_s=inline_budget_s(environ),
                   one_write=parse_bool("WORKER_ONE_WRITE", environ.get("WORKER_ONE_WRITE"),
                                        True))


def is_scoring(path: str) -> bool:
    """A request that calls run(): what the inline path's streak counts."""
    return path in STREAK_PATHS or (path.startswith("/v2/models/") and path.endswith("/infer"))


def inline_budget_s(environ: Mapping[str, str]) -> float | None:
    """``INLINE_BUDGET_MS`` in seconds; None when 0 turns the inline fast path off."""
    budget_ms = parse_int("INLINE_BUDGET_MS", environ.get("INLINE_BUDGET_MS"), INLINE_BUDGET_MS)
    return budget_ms / 1000 if budget_ms else None


def limits_from_env(environ: Mapping[str, str], max_body: int, threads: int = 1,
                    strip_header_spaces: bool = False) -> Limits:
    """``MOMA_HEADER_TIMEOUT_S`` and ``MOMA_BODY_TIMEOUT_S``, with the body cap; a worker
    holds as much request memory as gthread's threads could."""
    return Limits(
        header_s=parse_float("MOMA_HEADER_TIMEOUT_S", environ.get("MOMA_HEADER_TIMEOUT_S"),
                             HEADER_TIMEOUT_S),
        body_s=parse_float("MOMA_BODY_TIMEOUT_S", environ.get("MOMA_BODY_TIMEOUT_S"),
                           BODY_TIMEOUT_S),
        write_stall_s=WRITE_STALL_S, max_head=MAX_HEAD_BYTES, max_body=max_body,
        memory=max(1, threads) * max_body, strip_header_spaces=strip_header_spaces)


def request_complete(data: bytes) -> bool:
    """Whether ``data`` starts with a whole HTTP/1.x request that the parser can read
    without waiting for the client (a client expecting ``100 Continue`` waits for it)."""
    frame = RequestFrame(len(data) + 4, len(data))  # a whole request fits in data
    try:
        return frame.end(data) is not None and not frame.expects_continue
    except Refused:
        return False


class _RequestOutcome:
    """A request's outcome known already (``handle``'s keep-alive verdict: whether the
    connection stays open), shaped as the finished future ``finish_request`` reads: for
    a request the loop ran inline, and for one whose answer's rest the loop flushed."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def cancelled(self) -> bool:
        return False

    def result(self) -> Any:
        return self.value


def _keep(fs: Any) -> bool:
    """Whether the connection stays open after the request ``fs`` ran (gthread's reading
    of a request's outcome: a failed one closes)."""
    try:
        return bool(fs.result()) if not fs.cancelled() else False
    except Exception:  # noqa: BLE001 - as gthread reads it: a request that raised closes
        return False


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))


class ScoringWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._memory: shared_memory.SharedMemory | None = None  # balancing: the counts
        self._open = 0
        self._cap = 0
        self._fast_streak = 0
        self._streak_lock = threading.Lock()
        self._inline: TConn | None = None  # the connection whose request the loop runs
        self._stopped = threading.Event()
        # made by run() before the loop's first event (``_loop_channels`` on the paths
        # that only a running loop takes)
        self.channels: Channels | None = None
        # Told of every client dropped for being slow or sending too much (gunicorn_conf
        # points it at the app's metrics once the app is loaded).
        self.count_dropped: Callable[[str], None] = lambda reason: None
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        features = Features.from_env(os.environ)
        plain = not (cfg.is_ssl or cfg.proxy_protocol != "off" or cfg.http2_cleartext != "off"
                     or getattr(cfg, "protocol", "http") != "http")
        self._budget_s = features.inline_budget_s or 0.0
        self._inline_allowed = self._budget_s > 0 and plain
        self._read_whole = features.read_whole and plain
        self._one_write = features.one_write
        self._balanced = features.balance and not cfg.reuse_port  # see the docstring
        self._limits = limits_from_env(os.environ, Settings.load().max_body_bytes, cfg.threads,
                                       cfg.strip_header_spaces)
        self._sock_options = (
            (socket.SO_RCVTIMEO, _timeval(max(self._limits.header_s, self._limits.body_s))),
            (socket.SO_SNDTIMEO, _timeval(self._limits.write_stall_s)))

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
        memory = self._memory
        if memory is None:
            return self._cap
        fewest = memory.balance.fewest_elsewhere(time.monotonic() - STALE_S)
        return self._cap if fewest is None else min(self._cap, fewest + 1)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._cap = value

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self._publish(self._open)  # the loop's stamp, too
        if self.alive and not self._accepting:
            timeout = min(timeout, RECHECK_S)
        if self.channels is not None:
            timeout = self.channels.timeout(timeout)
        super().wait_for_and_dispatch_events(timeout)

    def _publish(self, count: int | None) -> None:
        memory = self._memory
        if memory is None:
            return
        if not self.alive:  # stopping: SIGTERM, max_requests, the master gone
            self._withdraw()
            return
        memory.balance.publish(count, time.monotonic())
        if self._memory is None:  # a signal withdrew the worker meanwhile
            memory.balance.publish(None)

    def _withdraw(self) -> None:
        """Leave the balance: a stopping worker accepts nothing more."""
        memory, self._memory = self._memory, None
        if memory is not None:
            memory.balance.publish(None)

    @property
    def _loop_channels(self) -> Channels:
        """The channels, on the paths only a running loop takes (accepting a connection to
        read whole, answering a request on a channel): run() made them by then."""
        return cast(Channels, self.channels)

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> None:
        """gthread's loop, with the channels on its selector (made in init_process)."""
        self.channels = Channels(self.poller, self._limits, self._run_request,
                                 self._closed, self._defer, self.log, self.count_dropped)
        self._memory = shared_memory.inherited() if self._balanced else None
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

    # -- connections: the channels read, write and close them ----------------------------
    def accept(self, listener: Any) -> None:
        if not self._read_whole:
            super().accept(listener)
            return
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, client, listener.getsockname())
        try:  # bounds on a thread's blocking reads and writes, should one ever happen
            for option, value in self._sock_options:
                sock.setsockopt(socket.SOL_SOCKET, option, value)
        except OSError:
            self.nr_conns -= 1
            conn.close()
            return
        conn.moma = Channel(sock, conn)
        self._loop_channels.open(conn.moma)

    def _run_request(self, channel: Channel, request: bytes) -> None:
        """A whole request: gunicorn's parser reads it from the buffer, on a pool thread
        or, on the fast path, right here."""
        conn = channel.owner
        if conn.parser is None:
            conn.parser = gunicorn_http.get_parser(self.cfg, BufferedSource(conn.sock),
                                                   conn.client)
            conn.initialized = True
        conn.parser.unreader.sock.give(request)
        conn.data_ready = True
        if self._fast_streak >= FAST_STREAK and self._inline_allowed:
            self._run_inline(conn)
        else:
            ThreadWorker.enqueue_req(self, conn)

    def _closed(self, channel: Channel) -> None:
        self.nr_conns -= 1
        channel.owner.close()

    def _defer(self, callback: Any) -> None:
        self.method_queue.defer(callback)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        channel: Channel | None = getattr(conn, "moma", None)
        if channel is None:
            super().finish_request(conn, fs)
            return
        keep = _keep(fs)
        if self._read_whole:
            # What the parser read ahead of the next request goes back to the channel.
            leftover = conn.parser.unreader.take_buffered() + conn.parser.unreader.sock.take() \
                if keep else b""
            idle_s = self.cfg.keepalive if self.alive else min(self.cfg.keepalive, LINGER_S)
            self._loop_channels.answered(channel, keep, leftover, idle_s)
        elif channel.pending:  # gthread's path: the answer's rest first, then gthread's finish
            self._loop_channels.flush(
                channel, lambda: ThreadWorker.finish_request(self, conn, _RequestOutcome(keep)))
        else:
            super().finish_request(conn, fs)

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        if self.channels is not None:
            if force:
                self.channels.close_all()
            else:
                self.channels.expire()

    def _cap_keepalive(self, deadline: float) -> None:
        super()._cap_keepalive(deadline)
        if self.channels is not None:
            self.channels.cap_idle(deadline)

    # -- inline fast path ---------------------------------------------------------------
    def enqueue_req(self, conn: TConn) -> None:
        """gthread's path to the pool (requests not read whole): the loop still answers
        a request itself when the whole of it is in the socket already."""
        if getattr(conn, "moma", None) is None:
            conn.moma = Channel(conn.sock, conn)
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
        self.finish_request(conn, _RequestOutcome(result))

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
        channel: Channel = conn.moma
        writer = conn.sock = ResponseSocket(
            sock, None if self.cfg.is_ssl else channel.pending, coalesce=self._one_write,
            skip_continue=channel.continued)
        started = time.perf_counter()
        try:
            keep: bool = super().handle_request(req, conn)
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
            elif is_scoring(path):
                self._fast_streak += 1
