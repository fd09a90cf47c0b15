"""The reconciler against real engines that fail: a Docker host that is gone, a redeploy
that Docker refuses. Services are isolated from each other and failures of the
reconciler's own making are tried again."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator

import pytest

from management.engines import LABEL_SERVICE
from management.store.operations import FAILED, SUCCEEDED
from tests.conftest import TEST_RUN_LABEL
from tests.waiting import wait_for

from .docker_proxy import DockerProxy
from .worker_world import WorkerWorld

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path, installation: str, test_run_id: str) -> Iterator[WorkerWorld]:
    world = WorkerWorld(tmp_path / "home", installation, test_run_id)
    yield world
    world.close()


@pytest.fixture
def proxy() -> Iterator[DockerProxy]:
    with DockerProxy() as proxy:
        yield proxy


def containers_of(docker_client, service_id: str) -> list:
    return docker_client.containers.list(ignore_removed=True, all=True,
                                         filters={"label": f"{LABEL_SERVICE}={service_id}"})


def remove_containers(docker_client, service_id: str) -> None:
    for container in containers_of(docker_client, service_id):
        container.remove(force=True)


def running(docker_client, service_id: str) -> bool:
    return any(c.status == "running" and c.labels.get("moma.role") == "scoring"
               for c in containers_of(docker_client, service_id))


def test_a_gone_docker_host_stops_no_other_service(world, proxy, engine_image, docker_client, caplog):
    image = world.add_image(engine_image)
    world.add_compute("remote", proxy.url)
    remote = world.add_service(image, compute="remote")  # first in every pass
    local = world.add_service(image)
    assert (remote.state, local.state) == (SUCCEEDED, SUCCEEDED)

    proxy.close()
    remove_containers(docker_client, local.id)
    with caplog.at_level(logging.WARNING, logger="moma.reconciler"):
        world.reconciler.reconcile_once()
        world.reconciler.reconcile_once()

    assert running(docker_client, local.id), "the service on the working engine came back"
    assert world.service(local.id).state == SUCCEEDED
    lost = world.service(remote.id)
    assert lost.state == FAILED and lost.error["code"] == "EngineLost"
    assert "no Docker engine answers" in lost.error["message"]
    assert not [record for record in caplog.records if record.exc_info], "failures logged without tracebacks"


def test_a_redeploy_that_docker_refuses_is_tried_again(world, engine_image, docker_client, test_run_id):
    service = world.add_service(world.add_image(engine_image))
    remove_containers(docker_client, service.id)
    blocker = docker_client.containers.create(engine_image, name=f"{world.engine_name(service)}-net",
                                              labels={TEST_RUN_LABEL: test_run_id})  # takes the holder's name

    world.reconciler.reconcile_once()
    failed = world.service(service.id)
    assert failed.state == FAILED and failed.error["code"] == "RedeployFailed"
    assert "Conflict" in failed.error["message"] or "in use" in failed.error["message"]

    blocker.remove(force=True)

    def back() -> bool:
        world.reconciler.reconcile_once()
        return world.service(service.id).state == SUCCEEDED

    wait_for(back, timeout=30, interval=0.2, what="the service to be deployed again")
    assert running(docker_client, service.id)


def test_a_hanging_docker_host_holds_up_only_its_own_services(world, proxy, engine_image, docker_client):
    image = world.add_image(engine_image)
    world.add_compute("remote", proxy.url)
    remote = world.add_service(image, compute="remote")
    local = world.add_service(image)
    stop = threading.Event()
    reconciling = threading.Thread(target=world.reconciler.run, args=(stop,), daemon=True)
    try:
        proxy.stall()
        reconciling.start()
        wait_for(lambda: proxy.held, timeout=10, what="the reconciler to wait for the hanging host")
        remove_containers(docker_client, local.id)
        wait_for(lambda: running(docker_client, local.id) and world.service(local.id).state == SUCCEEDED,
                 timeout=30, what="the service on the working engine to come back while the other engine hangs")
        assert world.service(remote.id).state == SUCCEEDED, "nothing is known about the hanging one yet"

        proxy.close()  # the hanging calls end: the service there is seen lost
        wait_for(lambda: world.service(remote.id).state == FAILED, timeout=30, what="the lost service marked")
        assert world.service(remote.id).error["code"] == "EngineLost"
    finally:
        stop.set()
        reconciling.join(30)
