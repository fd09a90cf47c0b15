"""Fixtures for tests against the real Docker engine: the iris example project, a
builder whose images carry this run's label, and containers started from them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.manifest import load_manifest
from tests.conftest import TEST_RUN_LABEL

EXAMPLE = Path(__file__).parents[2] / "examples" / "iris"


def build_driver_image(builder: Builder, labels: dict[str, str], directory: Path, driver: Path, name: str,
                       model: str | None = None) -> str:
    """An image of one Python driver (copied in as ``score.py``) and, with ``model``, one
    model file of that content named after the image (version 3); its reference."""
    shutil.copy(driver, directory / "score.py")
    manifest = (f"name: {name}\ndriverProgram: driver\ntargetRuntime:\n  runtimeType: Python\n"
                "assets:\n  - id: driver\n    url: score.py\n    mimeType: application/x-python\n")
    if model is not None:
        (directory / "model.txt").write_text(model)
        manifest += (f"models:\n  - name: {name}\n    version: 3\n    url: model.txt\n"
                     "    mimeType: application/octet-stream\n")
    (directory / "manifest.yml").write_text(manifest)
    return builder.build(load_manifest(directory / "manifest.yml"),
                         BuildOptions(labels=labels, name=name, tag="1")).reference


def train(out_dir: Path, c: float = 1.0) -> Path:
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(out_dir), "--c", str(c)], check=True,
                   stdout=subprocess.DEVNULL)
    return out_dir / "model.pkl"


@pytest.fixture(scope="session")
def moma_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("moma-home")


@pytest.fixture(scope="session")
def builder_config(moma_home: Path) -> BuilderConfig:
    return BuilderConfig.from_env({"MOMA_HOME": str(moma_home)})


@pytest.fixture(scope="session")
def builder(builder_config: BuilderConfig, docker_client) -> Builder:
    return Builder(builder_config)


@pytest.fixture(scope="session")
def labels(test_run_id: str) -> dict[str, str]:
    return {TEST_RUN_LABEL: test_run_id}


@pytest.fixture
def options(labels: dict[str, str]) -> Callable[..., BuildOptions]:
    def make(**kwargs) -> BuildOptions:
        return BuildOptions(labels=labels, **kwargs)

    return make


@pytest.fixture
def iris_project(tmp_path: Path) -> Path:
    """A copy of examples/iris with a freshly trained model.pkl."""
    project = tmp_path / "iris"
    project.mkdir()
    for name in ("score.py", "requirements.txt", "manifest.yml"):
        shutil.copy(EXAMPLE / name, project / name)
    train(project)
    return project


class RunningImage:
    def __init__(self, container) -> None:
        self.container = container
        self.url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(5001)}"

    def wait_until_answering(self, path: str = "/", timeout: float = 60) -> requests.Response:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return requests.get(self.url + path, timeout=2)
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or workers still booting
                if time.monotonic() > deadline:
                    raise AssertionError(f"container did not answer within {timeout} s:\n{self.logs()}") from None
                time.sleep(0.25)

    def logs(self) -> str:
        out, err = self.container.get_logs()
        return (out + err).decode(errors="replace")


@pytest.fixture
def run_image(labels: dict[str, str]) -> Iterator[Callable[..., RunningImage]]:
    from testcontainers.core.container import DockerContainer

    started = []

    def run(reference: str, **env: str) -> RunningImage:
        container = DockerContainer(reference).with_exposed_ports(5001).with_kwargs(labels=labels)
        for key, value in env.items():
            container = container.with_env(key, value)
        container.start()
        started.append(container)
        return RunningImage(container)

    yield run
    for container in started:
        container.stop()
