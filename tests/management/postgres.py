"""A throwaway PostgreSQL cluster for the management tests, from the server binaries of
Debian's ``postgresql`` package: ``initdb`` into a temporary directory, ``pg_ctl start``
on a free port of 127.0.0.1 (and a socket in that directory), ``pg_ctl stop`` and
removal at the end. Durability is switched off: the cluster lives for one session.

The tests share one migrated database, emptied before each test."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg

from management.store import Store
from management.store.tables import metadata

FAST_AND_THROWAWAY = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<n>/bin``, or the directory of ``pg_ctl`` on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda path: int(re.sub(r"\D", "", path.parent.parent.name) or 0))
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


@dataclass
class Cluster:
    bin_dir: Path
    directory: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://moma@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the ``postgres`` user when we are root (initdb refuses root)."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.directory / "data"), "--username=moma",
                         "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C")
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")

    def start(self, attempts: int = 3) -> None:
        """Start on a free port; another process may take the port between our probe and
        the server's bind, so try a few."""
        for _ in range(attempts):
            self.port = _free_port()
            options = " ".join([f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                                f"-c unix_socket_directories={self.directory}",
                                *(f"-c {option}" for option in FAST_AND_THROWAWAY)])
            done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-w", "-t", "60",
                             "-l", str(self.directory / "server.log"), "-o", options, "start")
            if done.returncode == 0:
                return
        log = self.directory / "server.log"
        raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text() if log.exists() else done.stderr}")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop")


@contextlib.contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    """The admin URL of a fresh cluster, stopped and removed on exit."""
    cluster = Cluster(bin_dir, Path(tempfile.mkdtemp(prefix="moma-pg-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(cluster.directory, ignore_errors=True)


class Database:
    """One migrated database for the session, on any server we may create databases
    on, emptied before each test: deleting the rows of a few small tables takes a few
    milliseconds, where creating a database per test, even from a template, takes
    hundreds. The name carries a run id so that test runs sharing a server
    (``MOMA_TEST_POSTGRES_URL``) do not meet."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"moma_test_{uuid.uuid4().hex[:12]}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')
        store = Store(self.url)
        try:
            store.migrate()
        finally:
            store.close()

    def empty(self) -> None:
        """Delete every row, children first. A connection a test left open in a
        transaction would block this: fail after a while rather than hang."""
        with psycopg.connect(self.url, autocommit=True) as connection, connection.transaction():
            connection.execute("SET LOCAL lock_timeout = '10s'")
            for table in reversed(metadata.sorted_tables):
                connection.execute(f'DELETE FROM "{table.name}"')  # type: ignore[arg-type]

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
