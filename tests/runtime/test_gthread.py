"""The gthread worker class (runtime/server/gthread.py): balanced connections, the inline
fast path and its guards, the switches. Real gunicorn processes and keep-alive
connections (slow clients: test_slow_clients.py)."""

from __future__ import annotations

import collections
import http.client
import json
import os
import platform
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from runtime.server import gthread
from tests.waiting import wait_for

FAST = json.dumps({"sleep": 0})
# The servers here answer inline what takes up to 250 ms, not 10: on a loaded machine a
# fast call can take longer than 10 ms and cost the worker its fast streak, and these
# tests need to know which path a call takes.
BUDGET_MS = 250
BUDGET_S = BUDGET_MS / 1000


@pytest.fixture
def serve(serve):
    def start(driver: str, **kwargs):
        kwargs.setdefault("INLINE_BUDGET_MS", str(BUDGET_MS))
        return serve(driver, **kwargs)
    return start


# -- units ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, budget", [(None, 0.01), ("", 0.01), (" 250 ", 0.25), ("0", None)])
def test_inline_budget(raw, budget):
    assert gthread.inline_budget_s({} if raw is None else {"INLINE_BUDGET_MS": raw}) == budget


# -- real gunicorn ------------------------------------------------------------------------------
class OneWriteConnection(http.client.HTTPConnection):
    """http.client writes a request's headers and its body apart; when the body is not
    in yet as the worker looks (a loaded machine), the request goes to a thread. wrk and
    most proxies write a small request whole, and these tests must know which path a
    call takes: this connection writes each request whole."""

    _held: list[bytes] | None = None

    def endheaders(self, message_body=None, *, encode_chunked=False) -> None:
        self._held = []
        try:
            super().endheaders(message_body, encode_chunked=encode_chunked)
            whole = b"".join(self._held)
        finally:
            self._held = None
        super().send(whole)

    def send(self, data) -> None:
        if self._held is not None and isinstance(data, bytes):
            self._held.append(data)
        else:
            super().send(data)


def _connection(server, timeout: float = 10.0) -> http.client.HTTPConnection:
    return OneWriteConnection("127.0.0.1", server.port, timeout=timeout)


def _score(conn: http.client.HTTPConnection, sleep: float = 0.0) -> dict:
    conn.request("POST", "/score", json.dumps({"sleep": sleep}).encode(),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    return json.loads(body)


def _warm(conn: http.client.HTTPConnection, limit: int = 200) -> None:
    """Fast scoring calls until the worker answers one inline (after FAST_STREAK of them,
    more if the machine's load made one slower than the budget)."""
    for _ in range(limit):
        if _score(conn)["thread"] == "MainThread":
            return
    raise AssertionError(f"no call ran inline in {limit} fast ones")


def _inline_call(conn: http.client.HTTPConnection, sleep: float, attempts: int = 3,
                 out: threading.Event | None = None) -> dict:
    """A call of ``sleep`` s that the worker runs inline. Should the fast call before it
    take longer than the budget on a loaded machine, it goes to a thread: warm, try again.
    ``out`` is set while the ``sleep`` s call is out (sent, its answer not read yet)."""
    for _ in range(attempts):
        _warm(conn)
        if out is not None:
            out.set()
        try:
            result = _score(conn, sleep)
        finally:
            if out is not None:
                out.clear()
        if result["thread"] == "MainThread":
            return result
    raise AssertionError(f"a {sleep} s call never ran inline in {attempts} attempts")


# -- what the tests wait on: the kernel's view of the workers ---------------------------------
TCP_LISTEN = 0x0A
LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
CLOCK_NANOSLEEP = {"x86_64": 230, "aarch64": 115}[platform.machine()]  # time.sleep's system call


def _tcp_table() -> list[tuple[int, int, int, int, int, int]]:
    """/proc/net/tcp: (local port, remote port, state, bytes not yet acknowledged by the
    peer, bytes received not yet read, inode) of every TCP socket between two ends on
    127.0.0.1. The inode is 0 while no process holds the socket: a connection still in
    the accept queue, or one its process closed."""
    rows = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            (local, local_port), (remote, remote_port) = (
                address.split(":") for address in fields[1:3])
            if local != LOOPBACK or remote not in (LOOPBACK, "00000000"):
                continue
            unacked, unread = (int(queue, 16) for queue in fields[4].split(":"))
            rows.append((int(local_port, 16), int(remote_port, 16), int(fields[3], 16),
                         unacked, unread, int(fields[9])))
    return rows


def _held_connections(server) -> dict[int, int]:
    """The server's ends of the connections its workers hold open (accepted, not yet
    closed): the bytes each has received and not read yet, by the client's port."""
    return {remote: unread for local, remote, state, _, unread, inode in _tcp_table()
            if local == server.port and state != TCP_LISTEN and inode}


def _sent_and_read(server, sock: socket.socket) -> bool:
    """Whether what the client ``sock`` sent has reached the server's end (acknowledged)
    and the worker has read it out of the socket (in that order: two looks)."""
    port = sock.getsockname()[1]
    acknowledged = any(local == port and remote == server.port and unacked == 0
                       for local, remote, _, unacked, _, _ in _tcp_table())
    return acknowledged and _held_connections(server).get(port) == 0


def _sleeping_threads(pid: int) -> set[int]:
    """The threads of process ``pid`` in time.sleep now, by thread id (the main thread's is
    ``pid``): in the threads.py driver, a run() under way."""
    tids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "syscall").read_text().split()[0] == str(CLOCK_NANOSLEEP):
                tids.add(int(task.name))
        except (OSError, IndexError):  # a thread that ended meanwhile
            continue
    return tids


def _running_inline(pid: int, out: threading.Event) -> bool:
    """Whether worker ``pid``'s event loop is in run(): its main thread sleeps in the driver
    while the slow call is out, before and after the look (the warm-up's fast calls sleep
    0 s inline too)."""
    return out.is_set() and pid in _sleeping_threads(pid) and out.is_set()


def _wait_for_workers(server, count: int) -> None:
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only workers {seen} answered"
        seen.add(server.score({"sleep": 0}).json()["pid"])


def test_connections_are_spread_evenly_over_the_workers(serve):
    """The kernel alone gave splits of 1/15 and 2/14 here; every round must be even."""
    server = serve("threads.py", WORKERS="2")
    _wait_for_workers(server, 2)  # a booting worker takes no part in the balance
    for _ in range(3):
        wait_for(lambda: not _held_connections(server),  # the last round's, the warm-up's
                 what="the workers closed the connections and counted them out")
        connections = [_connection(server) for _ in range(16)]
        for conn in connections:
            conn.connect()
        ports = {conn.sock.getsockname()[1] for conn in connections}
        # the balance is made as the workers accept, before a request is sent
        wait_for(lambda: ports <= set(_held_connections(server)),
                 what="the workers accepted the 16 connections")
        pids = collections.Counter(_score(conn)["pid"] for conn in connections)
        for conn in connections:
            conn.close()
        assert len(pids) == 2 and max(pids.values()) - min(pids.values()) <= 2, pids


def test_with_reuse_port_the_workers_share_one_socket_and_stay_balanced(serve):
    """REUSE_PORT: the master binds one socket with SO_REUSEPORT for all its workers
    (gunicorn's own reuse_port would give each worker one, and the kernel's hash would
    strand connections at a worker holding back for the balance)."""
    server = serve("threads.py", WORKERS="2", REUSE_PORT="true")
    _wait_for_workers(server, 2)
    connections = [_connection(server) for _ in range(16)]
    pids = collections.Counter(_score(conn)["pid"] for conn in connections)
    assert len(pids) == 2 and max(pids.values()) - min(pids.values()) <= 2, pids
    slowest = 0.0
    for _ in range(20):  # new connections, as requests.post makes them
        started = time.monotonic()
        server.score({"sleep": 0}, timeout=4)
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 1.0
    for conn in connections:
        conn.close()


def test_with_reuse_port_two_servers_share_the_port(serve):
    """What the local engine's updates need: the next generation listens on the same
    port while the previous one still serves; the kernel spreads connections."""
    first = serve("threads.py", REUSE_PORT="true")
    second = serve("threads.py", wait=None, REUSE_PORT="true", PORT=str(first.port))
    second.port, second.url = first.port, first.url
    answered: set[int] = set()
    deadline = time.monotonic() + 20
    while not (answered & set(first.worker_pids()) and answered & set(second.worker_pids())):
        assert time.monotonic() < deadline, (answered, first.stderr()[-2000:], second.stderr()[-2000:])
        answered.add(first.score({"sleep": 0}).json()["pid"])


def test_a_stopped_worker_with_fewer_connections_does_not_stop_the_others(serve):
    """A worker frozen (SIGSTOP here; a wedged process alike) keeps its low count on the
    board; once its stamp is older than STALE_S the others accept without it."""
    server = serve("threads.py", WORKERS="2")
    _wait_for_workers(server, 2)
    wait_for(lambda: not _held_connections(server),
             what="the workers closed the warm-up connections and counted them out")
    first = _connection(server)
    working = _score(first)["pid"]
    frozen = next(pid for pid in server.worker_pids() if pid != working)
    os.kill(frozen, signal.SIGSTOP)
    try:
        started = time.monotonic()
        second = _connection(server, timeout=gthread.STALE_S + 6)
        assert _score(second)["pid"] == working
        assert time.monotonic() - started < gthread.STALE_S + 3
    finally:
        os.kill(frozen, signal.SIGCONT)
    first.close()
    second.close()


def test_a_worker_busy_inline_leaves_new_connections_to_the_others(serve):
    """The busy worker has fewer connections, but its event loop is in run(): the new
    connections go to the other worker rather than wait for it."""
    server = serve("threads.py", WORKERS="2")
    _wait_for_workers(server, 2)
    busy = _connection(server)
    busy_pid = _inline_call(busy, 0.0)["pid"]
    out = threading.Event()
    call = threading.Thread(target=_inline_call, args=(busy, 3.0), kwargs={"out": out})
    call.start()
    wait_for(lambda: _running_inline(busy_pid, out) or not call.is_alive(),
             what="the 3 s call running inline")
    assert call.is_alive()  # still running: what follows happens during it
    started = time.monotonic()
    kept = [_connection(server) for _ in range(3)]  # open: more than the busy worker has
    assert all(_score(conn)["pid"] != busy_pid for conn in kept)
    assert time.monotonic() - started < 1.5
    call.join()
    for conn in (busy, *kept):
        conn.close()


def test_fast_calls_run_on_the_event_loop_and_a_slow_one_sends_the_next_to_threads(serve):
    server = serve("threads.py")
    conn = _connection(server)
    first = [_score(conn)["thread"] for _ in range(gthread.FAST_STREAK)]
    assert "MainThread" not in first  # not before the worker saw a streak of fast calls
    _inline_call(conn, BUDGET_S * 3)
    after_slow = [_score(conn)["thread"] for _ in range(gthread.FAST_STREAK)]
    assert "MainThread" not in after_slow
    _warm(conn)
    conn.close()


def test_with_a_budget_of_0_nothing_runs_inline(serve):
    server = serve("threads.py", INLINE_BUDGET_MS="0")
    conn = _connection(server)
    assert "MainThread" not in {_score(conn)["thread"] for _ in range(gthread.FAST_STREAK * 3)}
    conn.close()


def test_with_cleartext_http2_nothing_runs_inline(serve):
    """A prior-knowledge HTTP/2 connection would be served by the loop for its whole life."""
    server = serve("threads.py", GUNICORN_CMD_ARGS="--http2-cleartext prior-knowledge")
    conn = _connection(server)
    assert "MainThread" not in {_score(conn)["thread"] for _ in range(gthread.FAST_STREAK * 3)}
    conn.close()


def test_the_loop_stays_free_while_a_slow_call_runs(serve):
    """After one slow call ran inline, the next slow call runs on a thread: health checks
    and other connections are answered meanwhile."""
    server = serve("threads.py")
    busy, other = _connection(server), _connection(server)
    _score(other)
    _inline_call(busy, BUDGET_S * 2)  # a slow call nobody could foresee runs inline
    slow = threading.Thread(target=_score, args=(busy, 2.0))
    slow.start()
    worker, = server.worker_pids()
    wait_for(lambda: _sleeping_threads(worker), what="the 2 s call running")
    started = time.monotonic()
    other.request("GET", "/livez")
    assert other.getresponse().read() and time.monotonic() - started < 1.0
    assert _score(other)["thread"] != "MainThread"
    slow.join()
    busy.close()
    other.close()


def test_a_partial_request_never_holds_up_the_loop(serve):
    """A kept-alive client sends half a request to a worker that answers inline: the
    worker's other connections are answered meanwhile, and the request once whole."""
    server = serve("threads.py")
    fast = _connection(server, timeout=3.0)
    body = FAST.encode()
    head = (f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(3):  # load on the machine can cost the worker its fast streak: again
        _warm(fast)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(head + body)  # a kept-alive client's first request, whole...
            assert slow.recv(65536).startswith(b"HTTP/1.1 200 ")
            slow.sendall(head + body[:3])  # ...then half of its second
            wait_for(lambda: _sent_and_read(server, slow), what="the half request read by the worker")
            started = time.monotonic()
            thread = _score(fast)["thread"]
            assert time.monotonic() - started < 1.0
            slow.sendall(body[3:])
            answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ") and b'"thread"' in answer
        if thread == "MainThread":  # the streak held: the half request met the fast path
            break
    else:
        raise AssertionError("the worker never answered inline around the half request")
    fast.close()


def test_pipelined_requests_are_answered_in_order(serve):
    server = serve("threads.py")
    conn = _connection(server)
    _warm(conn)
    conn.close()
    body = FAST.encode()
    request = (f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request * 3 + b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 5
        while received.count(b"HTTP/1.1 ") < 4 and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 ") == 4
    assert received.count(b'"thread"') == 3 and received.rstrip().endswith(b"}")


def test_a_request_sent_during_a_slow_inline_call_is_answered_not_dropped(serve):
    """The other connection's keep-alive clock ran out while the loop was in run(); it
    had sent a request meanwhile, so it must be answered rather than closed."""
    server = serve("threads.py", KEEPALIVE="1")
    other = _connection(server)
    _score(other)
    busy = _connection(server)
    outcome: list[object] = []
    out = threading.Event()

    def slow_call() -> None:
        try:
            outcome.append(_inline_call(busy, 2.0, out=out))
        except (AssertionError, OSError) as exc:  # reported below, not lost in a thread
            outcome.append(exc)

    worker, = server.worker_pids()
    call = threading.Thread(target=slow_call)
    call.start()
    wait_for(lambda: _running_inline(worker, out) or outcome, what="the 2 s call running inline")
    assert not outcome, outcome  # still running: what follows happens during it
    assert _score(other)["pid"]  # 200, not a reset connection
    call.join()
    assert isinstance(outcome[0], dict), outcome
    other.close()
    busy.close()


@pytest.mark.slow
def test_a_long_inline_call_does_not_get_the_worker_killed(serve):
    """gunicorn kills a worker that is silent for --timeout; an inline run() keeps the
    worker's heartbeat going, as gthread's free event loop would."""
    server = serve("threads.py", GUNICORN_CMD_ARGS="--timeout 1")
    pids = server.worker_pids()
    conn = _connection(server)
    _inline_call(conn, 3.0)
    assert server.worker_pids() == pids
    assert "WORKER TIMEOUT" not in server.stderr()
    conn.close()


@pytest.mark.parametrize("switch, off", [("WORKER_BALANCE", "false"), ("WORKER_READ_WHOLE", "false"),
                                         ("WORKER_ONE_WRITE", "false"), ("INLINE_BUDGET_MS", "0")])
def test_each_change_switches_off_alone(serve, switch, off):
    """With any one change off the worker serves as before: keep-alive, pipelining, the
    inline path unless that is the one off, and a client that does not read its answer
    stalls nobody."""
    server = serve("threads.py", **{switch: off})
    conn = _connection(server)
    threads = {_score(conn)["thread"] for _ in range(gthread.FAST_STREAK * 3)}
    assert ("MainThread" in threads) is (switch != "INLINE_BUDGET_MS"), threads
    body = FAST.encode()
    request = (f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as pipelined, \
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = json.dumps({"size": 16 * 1024 * 1024}).encode()
        stalled.sendall(request.replace(b"%d\r\n\r\n" % len(body), b"%d\r\n\r\n" % len(big))
                        .replace(body, big))
        pipelined.sendall(request * 3)
        received = b""
        deadline = time.monotonic() + 2
        while received.count(b'"thread"') < 3 and time.monotonic() < deadline:
            received += pipelined.recv(65536)
        assert received.count(b"HTTP/1.1 200 ") == 3 and received.count(b'"thread"') == 3
        started = time.monotonic()
        assert _score(conn)["pid"] and time.monotonic() - started < 1.0
    conn.close()
