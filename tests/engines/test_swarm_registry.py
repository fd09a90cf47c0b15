"""Images through a registry (``MOMA_REGISTRY``): the builder pushes what the worker
builds, and the swarm service runs the pushed digest, found in the registry when the
manager does not have the image (built on another worker's host)."""

from __future__ import annotations

from typing import Iterator

import docker.errors
import pytest

from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.manifest import load_manifest
from management.engines import LABEL_SERVICE, EngineError
from management.engines.swarm.engine import SwarmEngine
from tests.conftest import TEST_RUN_LABEL
from tests.registry import Registry

from .conftest import DRIVER, PRIMARY, score

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def engine(swarm_engine):
    return swarm_engine


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    if not Registry.available():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


def test_the_service_runs_the_pushed_digest_pulled_from_the_registry(engine: SwarmEngine, make_workload, registry,
                                                                     engine_image: str, docker_client, tmp_path,
                                                                     test_run_id: str) -> None:
    """As a worker builds it with MOMA_REGISTRY set; the manager then has only the registry's copy."""
    builder = Builder(BuilderConfig.from_env({"MOMA_HOME": str(tmp_path / "home")}))
    result = builder.build(load_manifest(DRIVER / "manifest.yml"), BuildOptions(
        name="moma-engine-test", tag=test_run_id, push=registry.address, labels={TEST_RUN_LABEL: test_run_id}))
    pushed = registry.digest("moma-engine-test", test_run_id)
    assert result.location == f"{registry.address}/moma-engine-test:{test_run_id}"
    docker_client.images.remove(result.location)  # untagged: the image stays as engine_image
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(result.location)

    workload = make_workload("registry", image=result.location)
    endpoint = engine.deploy(workload)

    [service] = docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
    image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image == f"{registry.address}/moma-engine-test@{pushed}"
    assert score(endpoint.base_url, PRIMARY).status_code == 200


def test_an_image_in_no_registry_it_reaches_is_refused_with_the_reason(engine: SwarmEngine, make_workload,
                                                                       registry) -> None:
    workload = make_workload("noimage", image=f"{registry.address}/never-pushed:1")

    with pytest.raises(EngineError, match="neither on the swarm manager nor in a registry it reaches"):
        engine.deploy(workload)
