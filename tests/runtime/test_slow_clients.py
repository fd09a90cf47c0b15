"""Clients that send slowly, or read slowly, against a real gunicorn runtime: none of
them may hold a worker thread or the event loop, so health checks and scoring calls
from everyone else are answered meanwhile, and each slow one is closed once its
deadline has passed (runtime/server/channels.py)."""

from __future__ import annotations

import http.client
import json
import select
import selectors
import socket
import threading
import time
from typing import Callable

import pytest

from runtime.server import gthread

from .conftest import prometheus_value

HEADER_TIMEOUT_S = 3.0
BODY_TIMEOUT_S = 3.0
SLOW_ENV = {"MOMA_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "MOMA_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)}
BODY = json.dumps({"sleep": 0}).encode()
HEAD = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BODY))


class Dribblers:
    """Many raw connections, each sending its bytes one at a time, every ``interval``;
    one thread drives them all and records when each connection was closed and what it
    was answered."""

    def __init__(self, port: int, payloads: list[bytes], first: list[int], interval: float = 0.1):
        self.interval = interval
        self.socks: list[socket.socket] = []
        self.pending: dict[socket.socket, bytes] = {}
        self.answers: dict[socket.socket, bytes] = {}
        self.closed_at: dict[socket.socket, float] = {}
        for payload, sent_at_once in zip(payloads, first):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(payload[:sent_at_once])
            sock.setblocking(False)
            self.socks.append(sock)
            self.pending[sock] = payload[sent_at_once:]
            self.answers[sock] = b""
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self.socks:
                selector.register(sock, selectors.EVENT_READ)
            next_byte = time.monotonic()
            while not self._stop.is_set() and len(self.closed_at) < len(self.socks):
                for key, _ in selector.select(max(0.0, next_byte - time.monotonic())):
                    self._receive(key.fileobj, selector)
                if time.monotonic() >= next_byte:
                    next_byte += self.interval
                    for sock, rest in self.pending.items():
                        if rest and sock not in self.closed_at:
                            try:
                                sock.send(rest[:1])
                                self.pending[sock] = rest[1:]
                            except OSError:
                                pass  # closed by the server: the read side tells when

    def _receive(self, sock, selector) -> None:  # type: ignore[no-untyped-def]
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.answers[sock] += data
        if not data:
            self.closed_at[sock] = time.monotonic() - self.started
            selector.unregister(sock)

    def wait_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.closed_at) < len(self.socks) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def _timed(call) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    call()
    return time.monotonic() - started


def _fresh_get(server, path: str) -> int:  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def _fresh_score(server) -> dict:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(HEAD + BODY)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.slow
def test_two_hundred_slow_clients_hold_no_thread_and_are_closed_at_their_deadline(serve):
    """Headers dribbled byte by byte, a body dribbled behind whole headers, connections
    that say nothing: /readyz and /score still answer within a second while they are
    connected, and each slow one is closed once its deadline passed (408 when it had
    sent part of a request)."""
    server = serve("threads.py", WORKERS="2", **SLOW_ENV)
    two_hundred_slow_clients(server, lambda: server.get("/metrics").text)


def two_hundred_slow_clients(server, metrics: Callable[[], str]) -> None:  # type: ignore[no-untyped-def]
    """The check itself, for a server listening on 127.0.0.1:``server.port`` with
    ``SLOW_ENV`` (here a gunicorn of the checkout; a built image's container in
    tests/integration/test_slow_clients_container.py); ``metrics`` reads its /metrics."""
    kinds = ("headers", "body", "silent")
    body = json.dumps({"sleep": 0, "pad": "x" * 200}).encode()  # 20 s at 10 bytes/s
    head = HEAD.replace(b"%d" % len(BODY), b"%d" % len(body))
    payloads = {"headers": HEAD + BODY, "body": head + body, "silent": b""}
    first = {"headers": 1, "body": len(head), "silent": 0}
    order = [kinds[i % 3] for i in range(200)]
    slow = Dribblers(server.port, [payloads[k] for k in order], [first[k] for k in order])
    try:
        slowest = 0.0
        while time.monotonic() - slow.started < HEADER_TIMEOUT_S - 0.5:
            slowest = max(slowest, _timed(lambda: _fresh_get(server, "/readyz") == 200),
                          _timed(lambda: _fresh_score(server)))
        assert slowest < 1.0, f"an answer took {slowest:.2f} s"
        assert _fresh_get(server, "/readyz") == 200
        slow.wait_closed(HEADER_TIMEOUT_S + 5)
        kind_of = dict(zip(slow.socks, order))
        for sock in slow.socks:
            kind = kind_of[sock]
            assert sock in slow.closed_at, f"a {kind} client is still connected"
            assert slow.closed_at[sock] >= HEADER_TIMEOUT_S - 0.5, (kind, slow.closed_at[sock])
            answer = slow.answers[sock]
            if kind == "silent":
                assert answer == b"", answer
            else:
                assert answer.startswith(b"HTTP/1.1 408 "), (kind, answer)
                assert b'"code": "request_timeout"' in answer
    finally:
        slow.close()
    assert _fresh_score(server)["pid"]
    text = metrics()
    for reason, count in (("head_timeout", order.count("headers")),
                          ("body_timeout", order.count("body")), ("silent", order.count("silent"))):
        assert prometheus_value(text, "moma_connections_dropped_total", {"reason": reason}) == count


def test_a_request_whose_head_or_body_comes_in_pieces_in_time_is_answered(serve):
    """Slow but within the deadlines: answered, on a keep-alive connection, twice."""
    server = serve("threads.py", **SLOW_ENV)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for _ in range(2):
            for piece in (HEAD[:10], HEAD[10:-3], HEAD[-3:] + BODY[:4], BODY[4:]):
                sock.sendall(piece)
                time.sleep(0.1)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ") and b'"thread"' in answer, answer


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (gthread.MAX_HEAD_BYTES + 10), 431),
    (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 1000001\r\n\r\n{", 413),
])
def test_a_request_beyond_the_caps_is_refused_before_it_is_read(serve, request_bytes, status):
    server = serve("threads.py", MOMA_MAX_BODY_BYTES="1000000")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    assert b"Connection: close" in answer
    reason = {431: "head_too_large", 413: "body_too_large"}[status]
    assert prometheus_value(server.get("/metrics").text, "moma_connections_dropped_total",
                            {"reason": reason}) == 1


def test_chunked_bodies_are_buffered_too(serve):
    """A chunked body, whole or in pieces with extensions and trailers, reaches run()."""
    server = serve("ok.py", **SLOW_ENV)
    head = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    body = b'4;ext=1\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + body)
        first = sock.recv(65536)
        for piece in (head + body[:5], body[5:20], body[20:-2], body[-2:]):
            sock.sendall(piece)
            time.sleep(0.1)
        second = sock.recv(65536)
    for answer in (first, second):
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["input"] == {"a": 1}


def test_expect_100_continue_gets_one_continue_then_the_answer(serve):
    server = serve("ok.py", **SLOW_ENV)
    body = b'{"a": 2}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"100 Continue" not in answer


# -- clients that do not read -----------------------------------------------------------
BIG = 16 * 1024 * 1024


def _until_answering(sock: socket.socket) -> None:
    """Until the server has begun the answer (the client's socket has bytes to read)."""
    readable, _, _ = select.select([sock], [], [], 10)
    assert readable, "no answer began"


def _ask_and_never_read(server, size: int = BIG) -> socket.socket:  # type: ignore[no-untyped-def]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps({"size": size}).encode()
    sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return sock


def test_a_client_that_does_not_read_its_inline_answer_stalls_nobody(serve):
    """One worker: a kept-alive client that stops reading a multi-MB answer the loop
    wrote inline; the worker's other connections are answered at once, and the stalled
    one is closed once it has taken nothing for WRITE_STALL_S."""
    server = serve("threads.py", INLINE_BUDGET_MS="250")
    other = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    from .test_gthread import OneWriteConnection, _warm
    stalled_conn = OneWriteConnection("127.0.0.1", server.port, timeout=10)
    _warm(stalled_conn)
    stalled = stalled_conn.sock
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps({"size": BIG}).encode()
    stalled.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    _until_answering(stalled)  # the loop wrote what the socket took; the rest waits
    for _ in range(5):
        started = time.monotonic()
        other.request("GET", "/livez")
        assert other.getresponse().read()
        assert time.monotonic() - started < 1.0
    started = time.monotonic()
    deadline = started + gthread.WRITE_STALL_S + 10
    while "the client did not read its answer within" not in server.stderr():
        assert time.monotonic() < deadline, server.stderr()[-2000:]
        time.sleep(0.1)
    assert time.monotonic() - started > gthread.WRITE_STALL_S - 1.5
    assert prometheus_value(server.get("/metrics").text, "moma_connections_dropped_total",
                            {"reason": "answer_stalled"}) == 1
    other.close()
    stalled_conn.close()


def test_clients_that_do_not_read_their_answers_hold_no_thread(serve):
    """More non-reading clients than the worker has threads, each asking for an answer
    far bigger than the socket buffers: threads write what the socket takes and leave
    the rest to the event loop, so everyone else is still answered."""
    server = serve("threads.py", THREADS="2", INLINE_BUDGET_MS="0")
    stalled = [_ask_and_never_read(server) for _ in range(4)]
    for sock in stalled:
        _until_answering(sock)  # each answer is being written, its thread free again
    for _ in range(3):
        started = time.monotonic()
        assert _fresh_score(server)["pid"]
        assert time.monotonic() - started < 1.0
    for sock in stalled:
        sock.close()


def _post(port: int, body: bytes, sent: int | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    sock.sendall(head + body[:sent])
    return sock


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def test_bodies_past_the_memory_budget_wait_until_memory_frees(serve):
    """A worker holds at most THREADS x MOMA_MAX_BODY_BYTES of requests (what gthread's
    threads could): past that, bodies are read no further until held ones are answered
    or time out, while small requests still pass."""
    server = serve("threads.py", THREADS="1", MOMA_MAX_BODY_BYTES="300000", **SLOW_ENV)
    padded = json.dumps({"sleep": 0, "pad": "x" * 299_000}).encode()
    held = [_post(server.port, padded, sent=290_000) for _ in range(2)]  # all but the end
    time.sleep(1.5)
    waiting_result: list[tuple[float, bytes]] = []

    def big() -> None:
        started = time.monotonic()
        with _post(server.port, json.dumps({"sleep": 0, "pad": "y" * 200_000}).encode()) as sock:
            answer = _answer(sock)
        waiting_result.append((time.monotonic() - started, answer))

    waiting = threading.Thread(target=big)
    waiting.start()
    time.sleep(0.3)
    assert _timed(lambda: _fresh_score(server)) < 1.0  # a small request passes meanwhile
    waiting.join(timeout=10)
    took, answer = waiting_result[0]
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert took > BODY_TIMEOUT_S - 1.5 - 0.5, took  # it waited for the held one's 408
    for sock in held:
        assert _answer(sock).startswith(b"HTTP/1.1 408 ")
        sock.close()
