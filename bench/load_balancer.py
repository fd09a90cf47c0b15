"""HAProxy (Debian's ``haproxy``) in front of API replicas, as docs/scale-out.md
configures it: round robin, a replica is up while it answers HTTP (``/swagger.json``
without a token answers 401), a request whose replica refuses the connection goes to
another. An unprivileged process of the caller's (``nobody`` when the caller is root)
with a generated configuration on a free 127.0.0.1 port; never the system service."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.moma_server import free_port

HAPROXY = "haproxy"


def config(port: int, backends: list[str], stats_socket: Path) -> str:
    """The configuration: ``backends`` are ``host:port`` of the replicas, named api1, api2, …"""
    drop = "    user nobody\n    group nogroup\n" if os.geteuid() == 0 else ""
    servers = "".join(f"    server api{number} {address} check\n" for number, address in enumerate(backends, 1))
    return (f"global\n{drop}    maxconn 512\n    stats socket {stats_socket} mode 600 level operator\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 600s\n    timeout server 600s\n"
            "    retries 3\n    option redispatch 1\n"
            f"frontend moma\n    bind 127.0.0.1:{port}\n    default_backend moma_api\n"
            "backend moma_api\n    balance roundrobin\n    option httpchk GET /swagger.json\n"
            "    http-check expect status 401\n    default-server inter 500ms fall 2 rise 1\n" + servers)


class HAProxy:
    def __init__(self, directory: Path, backends: list[str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stats_socket = directory / "stats.sock"
        self.config_file = directory / "haproxy.cfg"
        self.backends = backends
        self.log = directory / "haproxy.log"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which(HAPROXY) is not None

    def start(self, timeout: float = 30) -> "HAProxy":
        """Start it and wait until every replica is up in its eyes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config(self.port, self.backends, self.stats_socket))
        subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.config_file)], check=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config_file)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while set(self.status().values()) != {"UP"}:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy did not see every replica up ({self.status()}):\n"
                                     f"{self.log.read_text()}")
            time.sleep(0.2)
        return self

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the replicas, by server name (api1, …)."""
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.stats_socket))
            except (FileNotFoundError, ConnectionRefusedError):
                return {}
            sock.sendall(b"show stat\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = csv.DictReader(io.StringIO(answer.decode().lstrip("# ")))
        return {row["svname"]: row for row in rows if row["pxname"] == "moma_api" and row["svname"].startswith("api")}

    def status(self) -> dict[str, str]:
        """UP or DOWN (with what haproxy adds, e.g. "DOWN 1/2") by replica name."""
        return {name: row["status"] for name, row in self.stats().items()}

    def sessions(self) -> dict[str, int]:
        """Requests each replica has been sent, by name."""
        return {name: int(row["stot"]) for name, row in self.stats().items()}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
