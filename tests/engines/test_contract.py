"""The Engine contract, run against every engine (``local`` and ``swarm``) on the real
Docker engine with a real scoring image."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import requests

from management.engines import LABEL_SERVICE, EngineError, Limits, keys_dir
from management.engines.local import LocalEngine
from management.engines.swarm import SwarmEngine
from tests.waiting import wait_for

from .conftest import PRIMARY, SECONDARY, Scorer, key_hash, score

MiB = 1024 * 1024
KEYS_NOTICED_S = 2.0  # the runtime's promise: every worker goes by a changed key file by then

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_deploy_answers_with_a_key_and_reports_status_and_logs(engine, make_workload):
    workload = make_workload("basic")
    endpoint = engine.deploy(workload)

    assert endpoint.host == "127.0.0.1"
    ready = requests.get(f"{endpoint.base_url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    assert score(endpoint.base_url, PRIMARY).json() == {"version": "v1"}
    assert score(endpoint.base_url, SECONDARY).status_code == 200
    assert score(endpoint.base_url).status_code == 401
    assert score(endpoint.base_url, "not-a-key").status_code == 401

    status = engine.status(workload.service_id)
    assert (status.present, status.running, status.desired, status.generation, status.endpoint) == \
        (True, 1, 1, 1, endpoint)
    assert "gunicorn" in engine.logs(workload.service_id, tail=200).lower()
    assert workload.service_id in engine.service_ids()

    assert engine.deploy(workload) == endpoint, "deploying the same workload again keeps the endpoint"
    assert score(endpoint.base_url, PRIMARY).status_code == 200
    assert not engine.status(uuid.uuid4().hex).present


def test_set_keys_rotates_one_key_while_the_other_keeps_working(engine, make_workload):
    workload = make_workload("keys")
    endpoint = engine.deploy(workload)
    new_primary = f"primary-{uuid.uuid4().hex}"

    with Scorer(endpoint.base_url, SECONDARY) as client:
        engine.set_keys(workload.service_id, (key_hash(new_primary), key_hash(SECONDARY)), workload.generation)
        changed = time.monotonic()
        wait_for(lambda: score(endpoint.base_url, new_primary).status_code == 200, timeout=5, what="the new key")
        wait_for(lambda: score(endpoint.base_url, PRIMARY).status_code == 401, timeout=5, what="the old key to stop")
        engine.set_keys(workload.service_id, (key_hash(new_primary), key_hash(SECONDARY)), workload.generation)  # no-op

    assert client.total > 20 and client.failures == 0, (client.statuses, client.errors[:5])
    # The waits above saw one worker take the change; each worker checks the file on its own.
    time.sleep(max(0.0, changed + KEYS_NOTICED_S - time.monotonic()))
    assert {score(endpoint.base_url, new_primary).status_code for _ in range(8)} == {200}
    assert {score(endpoint.base_url, PRIMARY).status_code for _ in range(8)} == {401}


@pytest.mark.parametrize("keep_alive", [False, True], ids=["new-connections", "keep-alive"])
def test_update_to_a_new_generation_under_continuous_scoring(engine, make_workload, keep_alive):
    workload = make_workload("update")
    endpoint = engine.deploy(workload)

    with Scorer(endpoint.base_url, PRIMARY, keep_alive=keep_alive) as client:
        updated = engine.deploy(replace(workload, generation=2, env={"ENGINE_TEST_VERSION": "v2"}))
        wait_for(lambda: client.last_version == "v2", timeout=5, what="the client to see v2")

    print(f"\n{type(engine).__name__} update ({'keep-alive' if keep_alive else 'new connection per request'}): "
          f"{client.failures} failed of {client.total} requests {dict(client.statuses)} {client.errors[:3]}")
    assert updated == endpoint, "an update keeps the published port"
    assert client.versions["v1"] > 0 and client.versions["v2"] > 0
    assert engine.status(workload.service_id).generation == 2
    assert all(score(endpoint.base_url, PRIMARY).json() == {"version": "v2"} for _ in range(10))
    if isinstance(engine, SwarmEngine):  # the promise: zero failed requests through a swarm update
        assert client.failures == 0, (client.statuses, client.errors[:5])


def test_a_generation_that_fails_init_leaves_the_previous_one_serving(engine, make_workload):
    workload = make_workload("fails")
    endpoint = engine.deploy(workload)

    with pytest.raises(EngineError) as failure:
        engine.deploy(replace(workload, generation=2, env={"ENGINE_TEST_FAIL_INIT": "1"}, ready_seconds=45))

    assert "init() failed on purpose" in failure.value.logs
    assert score(endpoint.base_url, PRIMARY).json() == {"version": "v1"}
    wait_for(lambda: engine.status(workload.service_id).running == 1, timeout=20, what="only the old task left")
    status = engine.status(workload.service_id)
    assert (status.generation, status.endpoint) == (1, endpoint)

    assert engine.deploy(replace(workload, generation=3, env={"ENGINE_TEST_VERSION": "v3"})) == endpoint
    assert score(endpoint.base_url, PRIMARY).json() == {"version": "v3"}


def test_remove_leaves_nothing(engine, make_workload, docker_client):
    workload = make_workload("remove")
    engine.deploy(workload)
    engine.remove(workload.service_id)

    selector = {"label": f"{LABEL_SERVICE}={workload.service_id}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    if isinstance(engine, SwarmEngine):
        assert docker_client.services.list(filters=selector) == []
        assert docker_client.secrets.list(filters=selector) == []
    if isinstance(engine, LocalEngine):
        assert not keys_dir(engine.services_dir, workload.service_id).parent.exists()
    assert not engine.status(workload.service_id).present
    assert workload.service_id not in engine.service_ids()
    engine.remove(workload.service_id)  # nothing left: no error


def test_removes_at_the_same_time_both_succeed(engine, make_workload, docker_client):
    """The reconciler may remove an orphan while the delete operation removes it too."""
    workload = make_workload("twice")
    engine.deploy(workload)
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(engine.remove, workload.service_id) for _ in range(2)]:
            done.result()
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={workload.service_id}"}) == []
    assert not engine.status(workload.service_id).present


def test_deploy_restores_what_was_removed_behind_its_back(engine, make_workload, docker_client):
    workload = make_workload("restore")
    endpoint = engine.deploy(workload)
    if isinstance(engine, SwarmEngine):
        for service in docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"}):
            service.remove()
        wait_for(lambda: not engine.status(workload.service_id).present, what="the service to go")
    else:
        for container in docker_client.containers.list(
                filters={"label": [f"{LABEL_SERVICE}={workload.service_id}", "moma.role=scoring"]}):
            container.remove(force=True)
        assert engine.status(workload.service_id).running == 0

    restored = engine.deploy(replace(workload, port=endpoint.port))

    assert restored == endpoint
    assert score(endpoint.base_url, PRIMARY).json() == {"version": "v1"}
    assert engine.status(workload.service_id).running == 1


def test_containers_get_a_pids_limit_and_a_default_memory_limit(engine, make_workload, docker_client):
    engine.limits = Limits(pids=96, memory=256 * MiB)
    workload = make_workload("limits")
    endpoint = engine.deploy(workload)

    def host_configs() -> list[dict]:
        containers = docker_client.containers.list(filters={"label": [f"{LABEL_SERVICE}={workload.service_id}",
                                                                      "moma.role=scoring"]})
        return [container.attrs["HostConfig"] for container in containers]

    assert [(config["PidsLimit"], config["Memory"]) for config in host_configs()] == [(96, 256 * MiB)]
    started = score(endpoint.base_url, PRIMARY, timeout=30).json()
    assert started == {"version": "v1"}
    bomb = replace(workload, generation=2, env={"ENGINE_TEST_SPAWN": "1000"}, memory=300 * MiB)
    engine.deploy(bomb)
    wait_for(lambda: [(c["PidsLimit"], c["Memory"]) for c in host_configs()] == [(96, 300 * MiB)],
             what="only the new generation, with the service's own memory limit")
    answer = score(endpoint.base_url, PRIMARY, timeout=30)
    print(f"\n{type(engine).__name__}: {answer.text} threads of 1000 under a pids limit of 96")
    assert answer.status_code == 200 and 0 < answer.json()["started"] < 96, answer.text
    assert requests.get(f"{endpoint.base_url}/readyz", timeout=5).status_code == 200, "the service outlives it"


def test_containers_run_the_image_by_id_and_keep_the_reference_in_a_label(engine, make_workload, engine_image,
                                                                          docker_client, test_run_id):
    alias = f"moma-engine-test-alias:{test_run_id}"
    docker_client.images.get(engine_image).tag(alias)
    try:
        workload = make_workload("pinned", image=alias)
        engine.deploy(workload)
        containers = docker_client.containers.list(filters={"label": [f"{LABEL_SERVICE}={workload.service_id}",
                                                                      "moma.role=scoring"]})
        assert containers and {c.attrs["Config"]["Image"] for c in containers} == {
            docker_client.images.get(engine_image).id}
        if isinstance(engine, LocalEngine):
            assert {c.labels["moma.image"] for c in containers} == {alias}
        else:
            [service] = docker_client.services.list(filters={"label": f"{LABEL_SERVICE}={workload.service_id}"})
            assert service.attrs["Spec"]["Labels"]["moma.image"] == alias
    finally:
        docker_client.images.remove(alias)
