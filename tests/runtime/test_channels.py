"""Connections on the event loop (runtime/server/channels.py), without gunicorn: real
sockets, a real selector, the loop turned here until a condition holds."""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from runtime.server.channels import BUSY, CLOSED, LINGERING, READING, Channel, Channels, Limits

LIMITS = Limits(header_s=0.5, body_s=0.5, write_stall_s=0.5, max_head=1024, max_body=4096,
                memory=1 << 30)
HEAD = b"POST /score HTTP/1.1\r\nContent-Length: 4\r\n\r\n"


class Loop:
    """A selector, a Channels on it, and what the channels handed over or closed."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.selector = selectors.DefaultSelector()
        self.requests: list[tuple[Channel, bytes]] = []
        self.closed: list[Channel] = []
        self.deferred: list[Callable[[], None]] = []
        self.channels = Channels(self.selector, limits, self._run, self._closed,
                                 self.deferred.append, logging.getLogger("test-channels"))
        self.peers: list[socket.socket] = []

    def _run(self, channel: Channel, request: bytes) -> None:
        self.requests.append((channel, request))

    def _closed(self, channel: Channel) -> None:
        self.closed.append(channel)
        channel.sock.close()

    def connect(self) -> tuple[Channel, socket.socket]:
        ours, peer = socket.socketpair()
        self.peers.append(peer)
        channel = Channel(ours, owner=None)
        self.channels.open(channel)
        return channel, peer

    def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "not within the time"
            for key, _ in self.selector.select(self.channels.timeout(0.05)):
                key.data(key.fileobj)
            while self.deferred:
                self.deferred.pop(0)()
            self.channels.expire()

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        for channel, _ in self.requests:
            channel.sock.close()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    made = Loop()
    yield made
    made.close()


def _read_all(peer: socket.socket) -> bytes:
    peer.settimeout(5)
    data = b""
    while chunk := peer.recv(65536):
        data += chunk
    return data


def test_a_request_in_pieces_is_handed_over_whole_and_pipelined_bytes_kept(loop):
    channel, peer = loop.connect()
    for piece in (HEAD[:7], HEAD[7:], b"{}", b"{}GET / HT"):
        peer.sendall(piece)
        loop.until(lambda: len(channel.buffer) or loop.requests)
    loop.until(lambda: loop.requests)
    assert loop.requests == [(channel, HEAD + b"{}{}")]
    assert channel.state == BUSY and channel.rest == b"GET / HT"
    peer.sendall(b"TP/1.1\r\n\r\n")
    loop.channels.answered(channel, keep=True)
    loop.until(lambda: len(loop.requests) == 2)
    assert loop.requests[1][1] == b"GET / HTTP/1.1\r\n\r\n"


def test_a_head_too_slow_gets_408_and_is_closed(loop):
    channel, peer = loop.connect()
    peer.sendall(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    loop.until(lambda: channel.state in (LINGERING, CLOSED))
    peer.shutdown(socket.SHUT_WR)
    loop.until(lambda: channel in loop.closed)
    assert time.monotonic() - started >= LIMITS.header_s - 0.05
    answer = _read_all(peer)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"request head" in answer


def test_a_silent_connection_is_closed_without_an_answer(loop):
    channel, peer = loop.connect()
    loop.until(lambda: channel in loop.closed)
    assert _read_all(peer) == b""


def test_a_body_too_slow_gets_408_after_its_own_clock(loop):
    channel, peer = loop.connect()
    peer.sendall(HEAD + b"{")
    loop.until(lambda: channel.state != READING)
    assert _read_all_after_close(loop, channel, peer).startswith(b"HTTP/1.1 408 ")


def _read_all_after_close(loop: Loop, channel: Channel, peer: socket.socket) -> bytes:
    peer.shutdown(socket.SHUT_WR)
    loop.until(lambda: channel in loop.closed)
    return _read_all(peer)


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 2000, 431),
    (b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
])
def test_over_a_cap_answers_at_once(loop, data, status):
    channel, peer = loop.connect()
    peer.sendall(data)
    loop.until(lambda: channel.state == LINGERING)
    assert _read_all_after_close(loop, channel, peer).startswith(b"HTTP/1.1 %d " % status)


def test_expect_100_continue_is_answered_once_the_head_is_in(loop):
    channel, peer = loop.connect()
    peer.sendall(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    loop.until(lambda: channel.continued)
    peer.settimeout(5)
    assert peer.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    peer.sendall(b"{}")
    loop.until(lambda: loop.requests)


def test_an_answer_the_client_does_not_read_is_sent_as_it_reads_or_closed(loop, caplog):
    channel, peer = loop.connect()
    peer.sendall(b"GET / HTTP/1.1\r\n\r\n")
    loop.until(lambda: loop.requests)
    channel.pending.append(b"x" * (8 << 20))  # what the socket did not take
    loop.channels.answered(channel, keep=True)
    loop.until(lambda: len(channel.pending[0]) < 8 << 20)  # sent what the socket takes
    peer.settimeout(5)
    received = peer.recv(65536)
    loop.until(lambda: channel in loop.closed)  # it stopped reading: closed after the stall
    assert received and "did not read its answer" in caplog.text


def test_bodies_wait_while_the_memory_budget_is_spent():
    loop = Loop(Limits(header_s=5, body_s=5, write_stall_s=5, max_head=1024,
                       max_body=1 << 20, memory=100_000))
    try:
        holder, holder_peer = loop.connect()
        holder_peer.sendall(b"POST / HTTP/1.1\r\nContent-Length: 500000\r\n\r\n" + b"a" * 150_000)
        loop.until(lambda: len(holder.buffer) >= 150_000)
        waiting, waiting_peer = loop.connect()
        waiting_peer.sendall(HEAD.replace(b"4", b"90000") + b"b" * 90_000)
        loop.until(lambda: len(waiting.buffer) >= 65536)
        deadline = time.monotonic() + 0.3
        loop.until(lambda: time.monotonic() > deadline)
        assert not loop.requests and not waiting.watched  # paused, not read
        loop.channels.linger(holder)  # the held request goes: memory frees
        loop.until(lambda: loop.requests)
        assert loop.requests[0][0] is waiting
    finally:
        loop.close()
