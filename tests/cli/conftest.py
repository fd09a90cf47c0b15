"""The CLI driven as a user drives it: a subprocess of ``.venv/bin/moma`` with its own
MOMA_HOME (holding the admin token, as after `moma serve` on the same machine) and
``--url``, against a real `moma serve`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from bench.moma_server import MomaServer
from tests.conftest import TEST_RUN_LABEL
from tests.integration.conftest import EXAMPLE, train

MOMA = str(Path(sys.executable).parent / "moma")
RUNTIME_FIXTURES = Path(__file__).parents[1] / "runtime" / "fixtures"
EXAMPLE_2017 = Path(__file__).parents[2] / "examples" / "iris-2017"
COMMAND_TIMEOUT = 600  # a cold image build on a busy 2-core machine


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"moma {' '.join(self.args)} → exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Cli:
    """``cli("model", "list")`` runs ``moma --url URL model list`` in a subprocess."""

    def __init__(self, home: Path, url: str | None, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.url = url
        self.env = {"MOMA_HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})}

    def __call__(self, *args: str, ok: bool = True) -> Result:
        command = [MOMA, *(["--url", self.url] if self.url else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=self.env)
        result = Result(args, done.returncode, done.stdout, done.stderr)
        assert not any(line.startswith("Traceback") for line in result.stderr.splitlines()), result
        if ok:
            assert result.returncode == 0, result
        return result

    def json(self, *args: str) -> Any:
        return self(*args, "-o", "json").json()

    def popen(self, *args: str) -> subprocess.Popen:
        """The CLI running in the background, with Ctrl-C's default disposition: a test
        run started in the background by a shell inherits SIGINT ignored, and would
        pass that on to the CLI, which then cannot be interrupted."""
        command = [MOMA, *(["--url", self.url] if self.url else []), *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def server(tmp_path_factory, test_run_id: str, docker_client) -> Iterator[MomaServer]:
    """One `moma serve` for the CLI tests; services left behind are deleted before it stops.
    It asks for ``docker_client`` so that the session's clean-up of labelled containers
    runs after it stops: its reconciler would otherwise start them again."""
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "1", "MOMA_SERVICE_READY_SECONDS": "30"}
    server = MomaServer(tmp_path_factory.mktemp("cli-server-home"), env).start()
    yield server
    server.delete_services_and_stop()


@pytest.fixture
def cli(server: MomaServer, tmp_path: Path) -> Cli:
    """A user's own MOMA_HOME with the server's admin token saved in it."""
    home = tmp_path / "cli-home"
    home.mkdir()
    shutil.copy(server.home / "admin-token", home / "admin-token")
    return Cli(home, server.url)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The iris example with a trained model, the 2017-style schema driver beside its
    plain one, and the schema file under a local name the build must not keep."""
    directory = tmp_path / "iris"
    directory.mkdir()
    for name in ("score.py", "requirements.txt"):
        shutil.copy(EXAMPLE / name, directory / name)
    shutil.copy(RUNTIME_FIXTURES / "score.py", directory / "score_df.py")
    shutil.copy(RUNTIME_FIXTURES / "service_schema.json", directory / "iris-schema.json")
    train(directory)
    return directory


@pytest.fixture
def project_2017(tmp_path: Path) -> Path:
    """examples/iris-2017 with its model directory trained: score.py, iris_model/,
    service_schema.json, aml_config/conda_dependencies.yml."""
    directory = tmp_path / "iris-2017"
    shutil.copytree(EXAMPLE_2017, directory, ignore=shutil.ignore_patterns("iris_model*", "__pycache__"))
    subprocess.run([sys.executable, str(directory / "train.py"), str(directory)], check=True,
                   stdout=subprocess.DEVNULL)
    return directory
