"""From settings and computes to engines: the container limits every engine applies,
the worker's Docker timeout, and engines built for one compute without waiting on
another's."""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest

from management.config import Settings
from management.engines import EngineError, EngineTimeout, Limits
from management.engines.factory import Engines, container_limits
from management.store import Compute
from tests.waiting import wait_for

from .docker_proxy import DockerProxy


def test_container_limits_come_from_the_settings():
    assert container_limits(Settings()) == Limits(pids=2048, memory=2 * 1024**3)
    loaded = Settings.load({"MOMA_SERVICE_PIDS_LIMIT": "300", "MOMA_SERVICE_DEFAULT_MEMORY": "512Mi"})
    assert container_limits(loaded) == Limits(pids=300, memory=512 * 1024**2)
    assert container_limits(Settings(service_pids_limit=0, service_default_memory="0")) == Limits()


def test_a_bad_default_memory_fails_at_start():
    with pytest.raises(ValueError, match="not a Kubernetes memory quantity"):
        container_limits(Settings(service_default_memory="2GB"))


@pytest.mark.docker
def test_the_worker_gives_up_on_a_host_that_stops_answering_after_its_docker_timeout(tmp_path: Path,
                                                                                     installation: str):
    settings = Settings.load({"MOMA_DOCKER_TIMEOUT_SECONDS": "2"}, home=tmp_path)
    engines = Engines(settings, installation)
    assert engines.timeout == 2.0 and Engines(Settings(home=tmp_path), installation).timeout == 120.0
    with DockerProxy() as host:
        engine = engines.for_compute(Compute("stops", "local", host.url))
        host.stall()
        started = time.monotonic()
        with pytest.raises(EngineTimeout):
            engine.status("a-service")
        assert time.monotonic() - started < 30, "the call waited past the setting"
        host.resume()


@pytest.mark.docker
def test_a_host_that_hangs_while_its_engine_is_built_holds_up_no_other(tmp_path: Path, installation: str):
    engines = Engines(Settings(home=tmp_path), installation)
    with DockerProxy() as hanging:
        hanging.stall()
        building = threading.Thread(target=_build, args=(engines, Compute("hanging", "local", hanging.url)),
                                    daemon=True)
        building.start()
        wait_for(lambda: hanging.connections, timeout=10, what="the hanging host to be asked")

        started = time.monotonic()
        local = engines.for_compute(Compute("local", "local"))
        assert time.monotonic() - started < 5, "the local engine waited for the hanging one"
        assert local.service_ids() is not None
    building.join(30)
    assert not building.is_alive(), "closing the hanging host ends the build"


def _build(engines: Engines, compute: Compute) -> None:
    with suppress(EngineError):
        engines.for_compute(compute)
