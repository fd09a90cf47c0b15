"""Two hosts, no shared disk: an image built on host 2's engine and pushed to the
registry runs as a swarm service of 2 replicas, one on each node, both scoring; the
service names the pushed digest. Node 2's engine stops: swarm runs both replicas on
node 1 and the service stays ``Succeeded``, its keys unchanged. Runs where the kernel carries overlay networks and
host-mode ports (``scripts/netns_cluster.py probe`` says what it carries)."""

from __future__ import annotations

import json
import os
import signal
import urllib.parse
from pathlib import Path
from typing import Iterator

import docker
import pytest

from bench.api_flow import create_image, register_iris, wait_operation
from bench.installation import Installation
from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.engine import DockerEngine
from builder.manifest import load_manifest
from management.client import ApiClient
from scripts import netns_cluster
from scripts.netns_cluster import Cluster, Host
from tests.conftest import TEST_RUN_LABEL
from tests.engines.conftest import DRIVER, score
from tests.engines.worker_world import WorkerWorld
from tests.integration.conftest import EXAMPLE, train
from tests.management.postgres import Database
from tests.registry import Registry
from tests.services_flow import create_service
from tests.services_flow import score as score_iris
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


def test_upload_build_push_and_serve_across_hosts_through_the_api(
        two_hosts: Cluster, registry: Registry, postgres_database: Database, azurite, tmp_path: Path,
        test_run_id: str, docker_client) -> None:
    """The whole path as a user takes it, no shared disk: a model uploaded through API
    replica A (artifacts in blob storage), built by the worker on host 2 (its engine, its
    own ``$MOMA_HOME``) and pushed; a service of 2 replicas on the swarm whose manager is
    host 1, created through replica B, scoring on both nodes; the build log read through
    replica B. Node 2's engine keeps running for the next test."""
    manager, builder_host = two_hosts.hosts
    project = tmp_path / "iris"
    project.mkdir()
    for name in ("score.py", "requirements.txt"):
        (project / name).write_bytes((EXAMPLE / name).read_bytes())
    train(project)
    postgres_database.empty()
    installation = Installation(tmp_path / "installation", postgres_database.url, azurite.connection_string,
                                f"{TEST_RUN_LABEL}={test_run_id}", MOMA_REGISTRY=registry.address,
                                MOMA_SCORING_HOST=manager.address).start()
    try:
        installation.worker("worker-on-host-2", DOCKER_HOST=builder_host.docker_host)
        replica_a, replica_b = (ApiClient(replica.url, installation.token) for replica in installation.replicas)
        manifest = register_iris(replica_a, project, "acrosshosts")["manifest"]["id"]
        built = wait_operation(replica_a, create_image(replica_a, manifest, "acrosshosts"), timeout=900)
        assert built["state"] == "Succeeded", built
        image = replica_b.call("GET", f"/images/{built['resourceLocation'].rsplit('/', 1)[-1]}").json()
        assert image["imageLocation"].startswith(f"{registry.address}/"), image["imageLocation"]
        assert builder_host.docker("image", "inspect", image["imageLocation"], check=False).returncode == 0
        assert manager.docker("image", "inspect", image["imageLocation"], check=False).returncode != 0

        log = replica_b.get_url(image["imageBuildLogUri"].replace(installation.balancer.url, replica_b.url)).text
        assert "Successfully tagged" in log, log[-500:]

        replica_b.call("POST", "/computes", json={"name": "cluster", "type": "swarm",
                                                    "dockerHost": manager.docker_host})
        service = create_service(replica_b, image["id"], "acrosshosts", compute="cluster", numReplicas=2)
        assert service["state"] == "Succeeded", service
        service = replica_a.call("GET", f"/services/{service['resourceLocation'].rsplit('/', 1)[-1]}").json()
        key = replica_a.call("GET", f"/services/{service['id']}/keys").json()["primaryKey"]
        names = manager.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
        assert len(names) == 1, names
        assert running_on(manager, names[0]) == sorted(host.name for host in two_hosts.hosts)
        scoring = urllib.parse.urlsplit(service["scoringUri"])
        assert scoring.hostname == manager.address
        for host in two_hosts.hosts:
            url = scoring._replace(netloc=f"{host.address}:{scoring.port}").geturl()
            answer = score_iris(url, key)
            assert answer.status_code == 200, (url, answer.headers, answer.text[:300])
        deleted = replica_a.call("DELETE", f"/services/{service['id']}").headers["Operation-Location"]
        assert wait_operation(replica_a, deleted.rsplit("/", 1)[-1])["state"] == "Succeeded"
    finally:
        installation.stop()


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
