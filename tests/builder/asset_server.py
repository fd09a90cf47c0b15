"""The HTTP server the fetch tests download from (on 127.0.0.1; each test sets its routes),
and what they check the download directory with."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

Route = Callable[["Handler", int], None]  # (handler, 1-based attempt count for the path)


@dataclass
class Server:
    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path with query, headers)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: every response ends the connection, so a short body is a truncated one."""

    server: _StatefulServer

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.hits[path] += 1
            attempt = state.hits[path]
            state.requests.append((self.path, dict(self.headers)))
        route = state.routes.get(path)
        try:
            if route is None:
                self.respond(404, b"no such route")
            else:
                route(self, attempt)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should for an oversized body

    def respond(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                content_length: int | None = -1) -> None:
        """Send a response; content_length -1 means the true length, None means no header."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_length is not None:
            self.send_header("Content-Length", str(len(body) if content_length == -1 else content_length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StatefulServer(ThreadingHTTPServer):
    def __init__(self, state: Server) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state


@contextmanager
def running_server() -> Iterator[Server]:
    state = Server()
    httpd = _StatefulServer(state)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())
