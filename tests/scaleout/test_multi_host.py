"""Two hosts, no shared disk: an image built on host 2's engine and pushed to the
registry runs as a swarm service of 2 replicas, one on each node, both scoring; the
service names the pushed digest. Node 2's engine stops: swarm runs both replicas on
node 1 and the service stays ``Succeeded``, its keys unchanged. Runs where the kernel carries overlay networks and
host-mode ports (``scripts/netns_cluster.py probe`` says what it carries)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Iterator

import docker
import pytest

from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.engine import DockerEngine
from builder.manifest import load_manifest
from scripts import netns_cluster
from scripts.netns_cluster import Cluster, Host
from tests.engines.conftest import DRIVER, score
from tests.engines.worker_world import WorkerWorld
from tests.registry import Registry
from tests.waiting import wait_for

from .conftest import make_cluster

pytestmark = [pytest.mark.slow, pytest.mark.docker]
REGISTRIES = "10.77.0.0/16"  # every cluster's subnet: the registry listens on the root namespace's end


@pytest.fixture(scope="module")
def two_hosts() -> Iterator[Cluster]:
    made = make_cluster(2, insecure_registries=[REGISTRIES])
    try:
        yield made
    finally:
        netns_cluster.down(made.name)


@pytest.fixture(scope="module")
def registry(two_hosts: Cluster, tmp_path_factory) -> Iterator[Registry]:
    if not Registry.available():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    gateway = two_hosts.subnet.rsplit(".", 1)[0] + ".254"
    server = Registry(tmp_path_factory.mktemp("registry"), host=gateway).start()
    yield server
    server.stop()


def running_on(manager: Host, service: str) -> list[str]:
    """The nodes of the service's running tasks, sorted."""
    listed = manager.docker("service", "ps", service, "--filter", "desired-state=running",
                            "--format", "{{.Node}} {{.CurrentState}}").stdout
    return sorted(line.split()[0] for line in listed.splitlines() if line.split()[1:2] == ["Running"])


def test_an_image_built_on_one_host_runs_on_both(two_hosts: Cluster, registry: Registry, tmp_path: Path,
                                                 test_run_id: str) -> None:
    manager, builder_host = two_hosts.hosts
    engine = DockerEngine(docker.DockerClient(base_url=builder_host.docker_host, timeout=600))
    built = Builder(BuilderConfig(home=tmp_path / "worker-2"), engine=engine).build(
        load_manifest(DRIVER / "manifest.yml"),
        BuildOptions(name="multi-host", tag=test_run_id, push=registry.address))
    assert manager.docker("image", "inspect", built.location, check=False).returncode != 0

    world = WorkerWorld(tmp_path / "worker-1", f"test-{test_run_id}", test_run_id, registry=registry.address,
                        scoring_host=manager.address)
    try:
        world.add_compute("cluster", manager.docker_host, kind="swarm")
        service = world.add_service(world.add_image(built.location), compute="cluster", numReplicas=2)

        assert service.state == "Succeeded", service.error
        name = world.engine_name(service)
        spec = json.loads(manager.docker("service", "inspect", name).stdout)[0]["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == \
            f"{registry.address}/multi-host@{registry.digest('multi-host', test_run_id)}"
        assert running_on(manager, name) == sorted(host.name for host in two_hosts.hosts)
        key = world.cipher.decrypt(service.primary_key, service.id)
        for host in two_hosts.hosts:
            assert score(f"http://{host.address}:{service.scoring_port}", key).status_code == 200

        os.kill(int(Path(builder_host.pidfile).read_text()), signal.SIGTERM)  # node 2's engine stops
        wait_for(lambda: running_on(manager, name) == [manager.name, manager.name], timeout=180, interval=2,
                 what="swarm to run both replicas on node 1")
        world.reconciler.reconcile_once()
        after = world.service(service.id)
        assert (after.state, after.primary_key) == ("Succeeded", service.primary_key)
        assert score(f"http://{manager.address}:{service.scoring_port}", key).status_code == 200
    finally:
        world.close()
