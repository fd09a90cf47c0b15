"""A real `moma serve` in a subprocess, for benchmarks and for tests that need the whole
service."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from management.client import ApiClient, Scope

MOMA = str(Path(sys.executable).parent / "moma")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MomaServer:
    def __init__(self, home: Path, env: dict[str, str] | None = None, port: int | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.home = home
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MOMA_HOME": str(home), **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log = home / "serve.log"

    def start(self, timeout: float = 60) -> "MomaServer":
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([MOMA, "serve", "--port", str(self.port), *self.args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:  # the port takes connections before a gunicorn worker has loaded the app to answer them
                requests.get(f"{self.url}/swagger.json", timeout=1)
                return self
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moma serve did not start:\n{self.log.read_text()}") from None
                time.sleep(0.2)

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def client(self, scope: Scope = Scope()) -> ApiClient:
        return ApiClient(self.url, self.token, scope)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(10)

    def delete_services_and_stop(self, timeout: float = 60) -> None:
        """A test session's end: delete every service left, wait until the worker has
        removed their containers, then stop."""
        client = self.client()
        locations = [client.call("DELETE", f"/services/{service['id']}").headers.get("Operation-Location", "")
                     for service in client.pages("/services")]
        deadline = time.monotonic() + timeout
        for location in filter(None, locations):
            operation = f"/operations/{location.rsplit('/', 1)[-1]}"
            while client.call("GET", operation).json()["state"] in ("NotStarted", "Running") \
                    and time.monotonic() < deadline:
                time.sleep(0.5)
        self.stop()

    def kill(self) -> None:
        """SIGKILL the whole process group: API, gunicorn workers and the operation worker."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass


class MomaWorker:
    """A `moma worker` in a session of its own, its output in ``$MOMA_HOME/worker.log``."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {**os.environ, "MOMA_HOME": str(home), **(env or {})}
        self.log = home / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "MomaWorker":
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([MOMA, "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def stop(self, seconds: float = 30) -> None:
        """SIGTERM, SIGKILL after ``seconds``; nothing when it is gone already."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, as a host that dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
