"""The gunicorn this package was written for.

``WRITTEN_FOR``: the versions whose gthread worker ``gthread.py`` was written against;
on any other, ``gunicorn_conf`` logs one line and serves with gunicorn's stock gthread
worker (keys, admission and metrics are the app's and stay). ``MEMBERS``: every member
of gunicorn's that this package relies on, with the signature it was written against
(or ``ATTRIBUTE``: set on an instance; or ``SOURCE`` text its code must contain);
``tests/runtime/test_gunicorn_seam.py`` checks them against the installed gunicorn, so
an upgrade fails a test rather than a service.
"""

from __future__ import annotations

import dataclasses

WRITTEN_FOR = ("27.0.1",)
ATTRIBUTE = "attribute"
SOURCE = "source:"

_GTHREAD = "gunicorn.workers.gthread"
_WORKER = f"{_GTHREAD}.ThreadWorker"
_CONN = f"{_GTHREAD}.TConn"


@dataclasses.dataclass(frozen=True)
class Member:
    owner: str  # importable module, or module.Class
    name: str
    expected: str  # "(self, conn)", ATTRIBUTE, or SOURCE + text
    why: str = ""


MEMBERS: tuple[Member, ...] = (
    # gthread.py: the worker class overrides these, or calls them
    Member(_WORKER, "__init__", "(self, *args, **kwargs)"),
    Member(_WORKER, "run", "(self)"),
    Member(_WORKER, "handle_exit", "(self, sig, frame)"),
    Member(_WORKER, "accept", "(self, listener)"),
    Member(_WORKER, "enqueue_req", "(self, conn)"),
    Member(_WORKER, "finish_request", "(self, conn, fs)", "fs: .cancelled(), .result()"),
    Member(_WORKER, "handle", "(self, conn)"),
    Member(_WORKER, "handle_request", "(self, req, conn)"),
    Member(_WORKER, "wait_for_and_dispatch_events", "(self, timeout)"),
    Member(_WORKER, "murder_keepalived", "(self, force=False)"),
    Member(_WORKER, "_cap_keepalive", "(self, deadline)"),
    Member(_WORKER, "notify", "(self)"),
    Member(_WORKER, "nr_conns", ATTRIBUTE, "replaced by a property"),
    Member(_WORKER, "worker_connections", ATTRIBUTE, "replaced by a property"),
    Member(_WORKER, "method_queue", ATTRIBUTE, ".defer(callback, *args)"),
    Member(_WORKER, "keepalived_conns", ATTRIBUTE),
    Member(_WORKER, "_accepting", ATTRIBUTE),
    Member(_WORKER, "alive", ATTRIBUTE),
    Member(_WORKER, "cfg", ATTRIBUTE),
    Member(_WORKER, "log", ATTRIBUTE),
    Member(_WORKER, "timeout", ATTRIBUTE),
    Member(_WORKER, "init_process", SOURCE + "self.poller = selectors.DefaultSelector()",
           "the selector the channels register with"),
    Member(_WORKER, "handle", SOURCE + "if not conn.initialized and not conn.data_ready:",
           "a whole request read by the loop skips the wait for data"),
    Member(_WORKER, "handle", SOURCE + "conn.init()", "an initialized connection keeps its parser"),
    Member(_CONN, "__init__", "(self, cfg, sock, client, server)"),
    Member(_CONN, "close", "(self, graceful=False)"),
    Member(_CONN, "sock", ATTRIBUTE, "swapped for a ResponseSocket while a response is written"),
    Member(_CONN, "client", ATTRIBUTE),
    Member(_CONN, "parser", ATTRIBUTE, "set to a parser over a BufferedSource"),
    Member(_CONN, "initialized", ATTRIBUTE),
    Member(_CONN, "data_ready", ATTRIBUTE),
    Member(_CONN, "is_http2", ATTRIBUTE),
    Member("gunicorn.http", "get_parser", "(cfg, source, source_addr, http2_connection=False)"),
    Member("gunicorn.http.parser.Parser", "__init__", "(self, cfg, source, source_addr)",
           "a source with recv() is read through a SocketUnreader"),
    Member("gunicorn.http.unreader.SocketUnreader", "__init__", "(self, sock, max_chunk=8192)"),
    Member("gunicorn.http.unreader.Unreader", "take_buffered", "(self)"),
    Member("gunicorn.http.unreader.Unreader", "buf", ATTRIBUTE),
    Member("gunicorn.http.wsgi", "create", SOURCE + 'sock.send(b"HTTP/1.1 100 Continue\\r\\n\\r\\n")',
           "the 100 Continue the loop already sent is dropped (ResponseSocket.send)"),
    # gunicorn_conf.py
    Member("gunicorn.sock.TCPSocket", "__init__", "(self, address, conf, log, fd=None)"),
    Member("gunicorn.sock.TCP6Socket", "__init__", "(self, address, conf, log, fd=None)"),
    Member("gunicorn.arbiter.Arbiter", "LISTENERS", ATTRIBUTE, "replaced in on_starting"),
    # access_log.py
    Member("gunicorn.glogging.Logger", "setup", "(self, cfg)"),
    Member("gunicorn.glogging.Logger", "access", "(self, resp, req, environ, request_time)"),
    Member("gunicorn.glogging.Logger", "atoms", "(self, resp, req, environ, request_time)"),
    Member("gunicorn.glogging.Logger", "access_log_enabled", ATTRIBUTE),
)


def supported(version: str) -> bool:
    return version in WRITTEN_FOR
