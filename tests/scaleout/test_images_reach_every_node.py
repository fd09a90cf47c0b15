"""A swarm of several nodes runs only images every node can pull: without
``MOMA_REGISTRY`` creating a service there answers 400 saying why, and the engine
refuses an image only its manager has; a single-node swarm needs no registry."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from management.api import create_app
from management.engines import EngineError, Workload
from management.engines.swarm.engine import SwarmEngine
from management.store import Store
from scripts import netns_cluster
from scripts.netns_cluster import Cluster
from tests.management.helpers import Api, check_error, create_service, succeeded_image

from .conftest import make_cluster

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'moma.db'}")
    made.migrate()
    made.accounts.ensure_default()
    yield made
    made.close()


def api_of(store: Store, home: Path, **settings: str) -> Api:
    secret, _ = store.tokens.create("test-admin", None)
    return Api(create_app(config={"home": home, **settings}, store=store).test_client(), secret)


def test_a_service_on_a_multi_node_swarm_needs_a_registry(cluster: Cluster, store: Store, tmp_path: Path) -> None:
    account = store.accounts.ensure_default()
    store.computes.add(account.id, "cluster", "swarm", cluster.hosts[0].docker_host)
    api = api_of(store, tmp_path / "home")
    image = succeeded_image(api, store)
    compute = {"computeResource": {"id": "cluster", "type": "Cluster"}}

    refused = create_service(api, image["id"], **compute)

    assert refused.status_code == 400
    error = check_error(refused)
    assert f"swarm of {len(cluster.hosts)} nodes and no registry is set" in error["message"]
    assert "MOMA_REGISTRY" in error["message"]
    assert [detail["code"] for detail in error["details"]] == ["RegistryRequired"]
    assert api.ok("GET", "/services")["value"] == []
    with_registry = api_of(store, tmp_path / "home", registry="10.77.0.254:5000")
    assert create_service(with_registry, image["id"], **compute).status_code == 202


def test_a_single_node_swarm_needs_no_registry(store: Store, tmp_path: Path) -> None:
    single = make_cluster(1, images=())
    try:
        account = store.accounts.ensure_default()
        store.computes.add(account.id, "single", "swarm", single.hosts[0].docker_host)
        api = api_of(store, tmp_path / "home")
        image = succeeded_image(api, store)

        accepted = create_service(api, image["id"], computeResource={"id": "single", "type": "Cluster"})

        assert accepted.status_code == 202, accepted.get_data(as_text=True)
    finally:
        netns_cluster.down(single.name)


def test_the_engine_refuses_an_image_only_the_manager_has(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.hosts[0]
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        entry = tarfile.TarInfo("hello.txt")
        entry.size = 5
        tar.addfile(entry, io.BytesIO(b"hello"))
    (tmp_path / "layer.tar").write_bytes(layer.getvalue())
    manager.docker("import", str(tmp_path / "layer.tar"), "moma-only-here:1")
    engine = SwarmEngine.from_env("127.0.0.1", docker_host=manager.docker_host, installation="test-registry")
    workload = Workload(service_id=uuid.uuid4().hex, name="moma-only-here", image="moma-only-here:1", generation=1,
                        key_hashes=("a" * 64, "b" * 64), ready_seconds=10)
    try:
        with pytest.raises(EngineError, match=f"only on the swarm manager .* swarm has {len(cluster.hosts)} nodes: "
                                              "set MOMA_REGISTRY"):
            engine.deploy(workload)
        assert engine.service_ids() == set()
    finally:
        engine.remove(workload.service_id)
        engine.close()
