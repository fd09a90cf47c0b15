"""The socket stand-ins the worker gives gunicorn (runtime/server/sockets.py)."""

from __future__ import annotations

import collections
import socket

from runtime.server import sockets


class RecordingSocket:
    def __init__(self, takes: int = 1 << 30) -> None:
        self.sent: list[bytes] = []
        self.takes = takes  # bytes a non-blocking send takes before the buffer is full

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def send(self, data: bytes, flags: int = 0) -> int:
        assert flags == socket.MSG_DONTWAIT
        if not self.takes:
            raise BlockingIOError
        taken = bytes(data[:self.takes])
        self.takes -= len(taken)
        self.sent.append(taken)
        return len(taken)

    def shutdown(self, how: int) -> None:
        self.sent.append(b"<shutdown>")


def test_response_socket_sends_headers_with_the_body():
    raw = RecordingSocket()
    sock = sockets.ResponseSocket(raw)  # type: ignore[arg-type]
    sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert raw.sent == []
    sock.sendall(b"body")
    sock.sendall(b"more")
    sock.flush()
    assert raw.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


def test_response_socket_flushes_before_anything_else_and_sends_big_bodies_apart():
    raw = RecordingSocket()
    sock = sockets.ResponseSocket(raw)  # type: ignore[arg-type]
    sock.sendall(b"head")
    sock.shutdown(socket.SHUT_WR)
    assert raw.sent == [b"head", b"<shutdown>"]
    raw, big = RecordingSocket(), b"x" * (sockets.COALESCE_BYTES + 1)
    sock = sockets.ResponseSocket(raw)  # type: ignore[arg-type]
    sock.sendall(b"head")
    sock.sendall(big)
    assert raw.sent == [b"head", big]
    raw = RecordingSocket()
    sock = sockets.ResponseSocket(raw)  # type: ignore[arg-type]
    sock.sendall(b"head only")
    sock.flush()
    sock.flush()
    assert raw.sent == [b"head only"]


def test_response_socket_leaves_what_the_socket_does_not_take_to_the_loop():
    raw, pending = RecordingSocket(takes=6), collections.deque()
    sock = sockets.ResponseSocket(raw, pending)  # type: ignore[arg-type]
    sock.sendall(b"head|")
    sock.sendall(b"body")
    sock.sendall(b"more")  # after a partial write: queued behind it, never sent first
    assert raw.sent == [b"head|b"]
    assert b"".join(bytes(piece) for piece in pending) == b"odymore"


def test_response_socket_skips_the_second_100_continue():
    raw = RecordingSocket()
    sock = sockets.ResponseSocket(raw, collections.deque(), skip_continue=True)  # type: ignore[arg-type]
    sock.send(sockets.CONTINUE)
    sock.sendall(b"head")
    sock.sendall(b"body")
    assert raw.sent == [b"headbody"]


def test_buffered_source_gives_the_buffer_then_the_socket():
    class Sock:
        def recv(self, size: int) -> bytes:
            return b"from the socket"

    source = sockets.BufferedSource(Sock())  # type: ignore[arg-type]
    source.give(b"abcdef")
    assert [source.recv(4), source.recv(4), source.recv(4)] == [b"abcd", b"ef", b"from the socket"]
    source.give(b"xyz")
    assert source.recv(1) == b"x" and source.take() == b"yz" and source.take() == b""
