"""A Docker host a test can break: ``tcp://127.0.0.1:PORT`` (or ``https`` with TLS and
client certificates) in front of the local engine's socket, passing bytes both ways.

- ``stall()``: connections are still accepted, but nothing a client sends reaches the
  engine (and so nothing comes back) until ``resume()`` — a host that hangs; ``held``
  counts what clients sent meanwhile;
- ``close()``: the port is closed and every connection cut — a host that is gone.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from typing import Any

CHUNK = 65536


class DockerProxy:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            raise RuntimeError(f"the proxy needs the engine on a unix socket, not {host}")
        self.engine_socket = host.removeprefix("unix://")
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.connections = 0
        self.held = 0
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="docker-proxy", daemon=True).start()

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._open.set()
            for sock in [self.listener, *self._sockets]:
                _close(sock)

    def __enter__(self) -> "DockerProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.engine_socket)
        except (OSError, ssl.SSLError):
            _close(client)
            return
        with self._lock:
            if self._closed:
                _close(client, engine)
                return
            self.connections += 1
            self._sockets += [client, engine]
        threading.Thread(target=self._pump, args=(engine, client, False), daemon=True).start()
        self._pump(client, engine, True)

    def _pump(self, source: Any, target: Any, gated: bool) -> None:
        """Copy until either side closes; bytes towards the engine wait while stalled."""
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if gated and not self._open.is_set():
                    self.held += 1
                    self._open.wait()
                if self._closed:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close(source, target)


def _close(*sockets: Any) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
