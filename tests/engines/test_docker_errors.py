"""The one boundary where Docker SDK errors become engine errors, with real failures:
a port nobody listens on, a host that never answers, an engine that says no."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Iterator

import docker
import docker.errors
import pytest
import requests

from management.engines import EngineError, EngineTimeout, EngineUnavailable
from management.engines.docker_errors import docker_errors


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A TCP port whose connections are accepted (by the kernel) and never answered."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def test_nobody_listening_is_unavailable_with_the_cause_kept():
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{closed_port()}", version="1.41", timeout=5)
    with pytest.raises(EngineUnavailable) as caught:
        with docker_errors("local engine: cannot list"):
            client.containers.list()
    assert type(caught.value) is EngineUnavailable
    assert caught.value.message.startswith("local engine: cannot list: no Docker engine answers")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_host_that_never_answers_times_out(silent_host: str):
    client = docker.DockerClient(base_url=silent_host, version="1.41", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(EngineTimeout) as caught:
        with docker_errors("swarm engine: cannot read the logs of service s"):
            client.ping()
    assert time.monotonic() - started < 3
    assert caught.value.status == 504 and caught.value.code == "EngineTimeout"
    assert "did not answer in time" in caught.value.message
    assert isinstance(caught.value.__cause__, requests.Timeout)


@pytest.mark.docker
def test_what_the_engine_refuses_is_an_engine_error_in_its_words(docker_client):
    with pytest.raises(EngineError) as caught:
        with docker_errors("local engine: cannot remove service s"):
            docker_client.containers.get("moma-no-such-container")
    assert not isinstance(caught.value, EngineUnavailable)
    assert caught.value.message == "local engine: cannot remove service s: No such container: moma-no-such-container"
    assert isinstance(caught.value.__cause__, docker.errors.NotFound)


def test_our_own_errors_pass_through_unchanged(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        with docker_errors("local engine"):
            (tmp_path / "missing").read_text()
    original = EngineError("already ours")
    with pytest.raises(EngineError) as caught:
        with docker_errors("local engine"):
            raise original
    assert caught.value is original
