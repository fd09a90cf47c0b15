"""Fixtures for the scoring runtime: real gunicorn processes over real HTTP.

``serve(driver, **env)`` copies a fixture driver into a fresh app root, starts
the images' command (``runtime.contract.COMMAND``) there on a free
127.0.0.1 port (in its own process group) and waits for it; every server a test starts
is stopped at teardown (SIGTERM, then SIGKILL of the whole group).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runtime import contract

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def absolute_imports(source: Path) -> Iterator[tuple[str, bool]]:
    """The top-level package of every absolute import in ``source``, and whether the
    import statement is at module level (relative imports stay inside the package)."""
    tree = ast.parse(source.read_text())
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                continue
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            yield name.split(".")[0], id(node) in module_level


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One gunicorn master and its workers."""

    def __init__(self, root: Path, env: dict[str, str], log_dir: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = log_dir / f"gunicorn-{self.port}.out"
        self.stderr_path = log_dir / f"gunicorn-{self.port}.err"
        ours = ("MOMA_", "MAX_", "SCORING_", "WORKER", "THREADS", "INLINE_")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        full_env.update(PYTHONPATH=str(REPO), PORT=str(self.port), MOMA_BIND="127.0.0.1",
                        WORKERS="1", PYTHONUNBUFFERED="1")
        full_env.update(env)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [GUNICORN, *contract.COMMAND[1:]],
                cwd=root, env=full_env, stdout=out, stderr=err, start_new_session=True)

    # -- life cycle ----------------------------------------------------------------------
    def wait(self, path: str = "/readyz", status: int = 200, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n"
                                     f"{self.stderr()[-3000:]}")
            try:
                if self.get(path, timeout=5).status_code == status:
                    return
            except requests.RequestException:  # not listening yet, or still booting
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} did not answer {status} within {timeout} s:\n"
                             f"{self.stderr()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:  # orphaned workers, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.proc.returncode

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def worker_pids(self) -> list[int]:
        """Live children of the gunicorn master (from /proc; zombies excluded)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    # -- HTTP ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, key: str | None = None,
                json_body: Any = None, data: bytes | str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10.0,
                ) -> requests.Response:
        all_headers = {"Connection": "close"}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if json_body is not None:
            data = json.dumps(json_body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        with requests.Session() as session:
            session.trust_env = False  # never a proxy: 127.0.0.1 only
            return session.request(method, self.url + path, data=data, headers=all_headers,
                                   timeout=timeout)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def score(self, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", "/score", json_body=body, **kwargs)


def _servers(base: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(driver: str, *, wait: str | None = "/readyz", wait_status: int = 200,
              files: dict[str, str | bytes] | None = None, copy: tuple[str, ...] = (),
              **env: str) -> Server:
        root = base / f"app{len(servers)}"
        root.mkdir()
        shutil.copy(FIXTURES / driver, root / "score.py")
        for name in copy:
            shutil.copy(FIXTURES / name, root / name)
        for name, content in (files or {}).items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(root / name, mode) as fh:
                fh.write(content)
        env.setdefault("MOMA_STATE_DIR", str(base))
        server = Server(root, env, base)
        servers.append(server)
        if wait:
            server.wait(wait, wait_status)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server: ``serve("ok.py", WORKERS="2", wait="/readyz", files={...})``."""
    yield from _servers(tmp_path)


@pytest.fixture(scope="module")
def serve_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """``serve`` for servers that several tests of a module use (read-only tests)."""
    yield from _servers(tmp_path_factory.mktemp("shared"))


def prometheus_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text output (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels or {}).items() <= sample.labels.items():
                return sample.value
    return 0.0
