"""The store side of the operation worker, without Docker: claims are exclusive, a
lease that expires is taken over, an operation whose worker keeps dying ends Failed
(and its image with it), and a worker that lost its lease changes nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from management.config import Settings
from management.store import Operation, Store
from management.store.common import now_ms
from management.store.database import reading, writing
from management.store.tables import operations
from management.worker import Worker
from tests.waiting import wait_until

from ..helpers import Api, create_service, image_id_of, run_in_threads, succeeded_image


@pytest.fixture
def manifest_id(api: Api) -> str:
    return api.register_manifest([api.register_model()["id"]])["id"]


def new_operations(api: Api, manifest_id: str, count: int) -> list[str]:
    return [api.create_image(manifest_id, name=f"img{i}") for i in range(count)]


def lease_runs_out(store: Store, operation_id: str) -> None:
    """Wait until the operation's lease has run out by the store's clock, as when its
    worker died."""
    def ran_out() -> bool:
        with reading(store.engine) as connection:
            expires = connection.execute(sa.select(operations.c.lease_expires_ms).where(
                operations.c.id == operation_id)).scalar_one()
        return expires is not None and expires < now_ms()

    assert wait_until(ran_out, timeout=10), f"the lease of operation {operation_id} did not run out"


def test_concurrent_workers_never_share_an_operation(api: Api, store: Store, manifest_id: str) -> None:
    operation_ids = new_operations(api, manifest_id, 16)
    counter = iter(range(1000))

    def drain() -> list[tuple[str, str]]:
        worker = f"worker-{next(counter)}"
        claimed = []
        while (operation := store.operations.claim(worker, 60_000, 3)) is not None:
            claimed.append((operation.id, worker))
        return claimed

    claims = run_in_threads(4, drain)

    assert sorted(operation_id for operation_id, _ in claims) == sorted(operation_ids)
    for operation_id, worker in claims:
        assert api.ok("GET", f"/operations/{operation_id}")["state"] == "Running"
        assert store.operations.heartbeat(operation_id, worker, 60_000)


def test_one_operation_many_claimants_one_winner(api: Api, store: Store, manifest_id: str) -> None:
    for round_ in range(3):
        [operation_id] = new_operations(api, manifest_id, 1)
        counter = iter(range(100))

        def claim() -> list[Operation]:
            operation = store.operations.claim(f"w{round_}-{next(counter)}", 60_000, 3)
            return [operation] if operation else []

        winners = run_in_threads(6, claim)

        assert [operation.id for operation in winners] == [operation_id]
        assert winners[0].attempts == 1 and winners[0].state == "Running"


def test_an_expired_lease_is_claimed_again(api: Api, store: Store, manifest_id: str) -> None:
    [operation_id] = new_operations(api, manifest_id, 1)

    first = store.operations.claim("w1", 500, 3)
    assert first is not None and first.id == operation_id
    assert store.operations.claim("w2", 60_000, 3) is None
    lease_runs_out(store, operation_id)
    second = store.operations.claim("w2", 60_000, 3)

    assert second is not None and second.id == operation_id
    assert (second.attempts, second.lease_owner) == (2, "w2")
    assert not store.operations.heartbeat(operation_id, "w1", 60_000)
    assert store.operations.heartbeat(operation_id, "w2", 60_000)
    assert api.ok("GET", f"/operations/{operation_id}")["state"] == "Running"


def test_a_heartbeat_keeps_the_lease(api: Api, store: Store, manifest_id: str) -> None:
    new_operations(api, manifest_id, 1)
    claimed = store.operations.claim("w1", 400, 3)
    assert claimed is not None

    for _ in range(4):  # 0.8 s in all, twice the lease
        time.sleep(0.2)
        assert store.operations.heartbeat(claimed.id, "w1", 400)
        assert store.operations.claim("w2", 400, 3) is None


def test_after_max_attempts_the_operation_and_its_image_fail(api: Api, store: Store, manifest_id: str,
                                                              home: Path) -> None:
    max_attempts = Settings.load(home=home, worker_max_attempts=2).worker_max_attempts
    [operation_id] = new_operations(api, manifest_id, 1)
    image_id = image_id_of(api, operation_id)

    for attempt in range(1, max_attempts + 1):
        claimed = store.operations.claim(f"dies-{attempt}", 1, max_attempts)
        assert claimed is not None and claimed.attempts == attempt
        store.images.start(image_id)
        lease_runs_out(store, operation_id)
    assert store.operations.claim("survivor", 60_000, max_attempts) is None

    operation = api.ok("GET", f"/operations/{operation_id}")
    assert operation["state"] == "Failed" and "endTime" in operation
    assert f"stopped {max_attempts} times" in operation["error"]["message"]
    assert f"dies-{max_attempts}" in operation["error"]["message"]
    image = api.ok("GET", f"/images/{image_id}")
    assert image["creationState"] == "Failed"
    assert image["error"] == operation["error"]
    assert not store.operations.heartbeat(operation_id, f"dies-{max_attempts}", 60_000)


def test_a_worker_that_lost_its_lease_changes_nothing(api: Api, store: Store, manifest_id: str) -> None:
    [operation_id] = new_operations(api, manifest_id, 1)
    image_id = image_id_of(api, operation_id)
    assert store.operations.claim("slow", 1, 3) is not None
    store.images.start(image_id)
    lease_runs_out(store, operation_id)
    assert store.operations.claim("fast", 60_000, 3) is not None

    assert not store.images.complete(operation_id, "slow", image_id, "Succeeded", image_location="stale:1")
    assert not store.images.complete(operation_id, "slow", image_id, "Failed", error={"code": "X", "message": "x"})

    operation = api.ok("GET", f"/operations/{operation_id}")
    image = api.ok("GET", f"/images/{image_id}")
    assert operation["state"] == image["creationState"] == "Running"
    assert "imageLocation" not in image and "error" not in image and "error" not in operation
    assert store.images.complete(operation_id, "fast", image_id, "Succeeded", image_location="fresh:1")
    assert not store.images.complete(operation_id, "fast", image_id, "Failed", error={"code": "X", "message": "x"})
    store.images.start(image_id)  # the slow worker, resuming late
    image = api.ok("GET", f"/images/{image_id}")
    assert (image["creationState"], image["imageLocation"]) == ("Succeeded", "fresh:1")


def test_the_worker_heartbeat_outlives_a_short_lease(api: Api, store: Store, manifest_id: str, home: Path) -> None:
    """A build longer than the lease keeps its operation: the heartbeat renews it."""
    [operation_id] = new_operations(api, manifest_id, 1)
    settings = Settings.load(home=home, worker_lease_seconds=0.45)
    stolen: list[Any] = []

    def slow_build(operation: Operation, worker: str) -> None:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            stolen.append(store.operations.claim("thief", 60_000, 3))
            time.sleep(0.1)
        image_id = operation.resource_id
        assert store.images.complete(operation.id, worker, image_id, "Succeeded", image_location="slow:1")

    assert Worker(settings, store, {"Image": slow_build}).run_once()

    assert stolen and all(claim is None for claim in stolen)
    assert api.ok("GET", f"/operations/{operation_id}")["state"] == "Succeeded"


def test_an_orphaned_worker_renews_no_lease(api: Api, store: Store, manifest_id: str, home: Path) -> None:
    """Once its server is gone, the worker's heartbeat stops: another worker takes the
    operation over when the lease runs out, although the orphan's handler still runs."""
    [operation_id] = new_operations(api, manifest_id, 1)
    settings = Settings.load(home=home, worker_lease_seconds=0.45)
    orphaned = threading.Event()
    successor: list[Operation] = []

    def stuck_build(operation: Operation, worker: str) -> None:
        orphaned.set()
        successor.extend(filter(None, [wait_until(lambda: store.operations.claim("successor", 60_000, 3), 10)]))

    assert Worker(settings, store, {"Image": stuck_build}, orphaned=orphaned).run_once()

    assert [operation.id for operation in successor] == [operation_id]
    assert successor[0].attempts == 2


# -- lanes: operation types, places per account, one resource at a time ------------------------------
def account_images(api: Api, count: int) -> list[str]:
    """``count`` image operations in the account of ``api``."""
    manifest = api.register_manifest([api.register_model()["id"]])["id"]
    return new_operations(api, manifest, count)


def test_an_account_gets_no_more_places_than_its_limit_whoever_claims(api: Api, store: Store,
                                                                       other_account) -> None:
    other = api.as_account(*other_account)
    mine, theirs = account_images(api, 4), account_images(other, 4)
    counter = iter(range(1000))

    def claim() -> list[Operation]:
        operation = store.operations.claim(f"w-{next(counter)}", 60_000, 3, ("Image",), account_limit=2)
        return [operation] if operation else []

    for _ in range(2):  # a second round, all places taken: nobody gets more
        claimed = run_in_threads(8, claim)
        assert sum(operation.id in mine for operation in claimed) <= 2
        assert sum(operation.id in theirs for operation in claimed) <= 2
    for client, operation_ids in ((api, mine), (other, theirs)):
        states = [client.ok("GET", f"/operations/{operation_id}")["state"] for operation_id in operation_ids]
        assert sorted(states) == ["NotStarted", "NotStarted", "Running", "Running"]


def test_a_finished_or_expired_claim_frees_the_accounts_place(api: Api, store: Store) -> None:
    first, second, third = account_images(api, 3)
    claimed = store.operations.claim("w1", 300, 3, ("Image",), account_limit=1)
    assert claimed is not None and claimed.id == first
    assert store.operations.claim("w2", 60_000, 3, ("Image",), account_limit=1) is None
    assert store.images.complete(first, "w1", claimed.resource_id, "Succeeded", image_location="x:1")
    again = store.operations.claim("w2", 300, 3, ("Image",), account_limit=1)
    assert again is not None and again.id == second
    lease_runs_out(store, second)  # w2 died: its place is free, and its operation comes first again
    taken_over = store.operations.claim("w3", 60_000, 3, ("Image",), account_limit=1)
    assert taken_over is not None and (taken_over.id, taken_over.attempts) == (second, 2)
    assert store.operations.claim("w4", 60_000, 3, ("Image",), account_limit=1) is None
    assert third not in {taken_over.id}


def test_lanes_take_only_their_operation_types(api: Api, store: Store) -> None:
    [image_operation] = account_images(api, 1)
    assert store.operations.claim("services", 60_000, 3, ("Service",)) is None
    claimed = store.operations.claim("builds", 60_000, 3, ("Image",))
    assert claimed is not None and claimed.id == image_operation


def test_operations_of_one_service_run_one_after_the_other(api: Api, store: Store) -> None:

    first, second = succeeded_image(api, store, "imagea"), succeeded_image(api, store, "imageb")
    location = create_service(api, first["id"]).headers["Operation-Location"]
    created = api.ok("GET", "/operations/" + location.rsplit("/", 1)[-1])
    service_id = created["resourceLocation"].rsplit("/", 1)[-1]
    assert api.call("PUT", f"/services/{service_id}", json={"imageId": second["id"]}).status_code == 202
    deploy = store.operations.claim("w1", 300, 3, ("Service",))
    assert deploy is not None and deploy.payload == {"action": "deploy", "generation": 1}
    assert store.operations.claim("w2", 60_000, 3, ("Service",)) is None  # the update waits for the create
    lease_runs_out(store, deploy.id)
    retried = store.operations.claim("w2", 60_000, 3, ("Service",))
    assert retried is not None and (retried.id, retried.attempts) == (deploy.id, 2)
    with writing(store.engine) as connection:
        assert store.operations.finish(connection, deploy.id, "w2", "Succeeded")
    update = store.operations.claim("w3", 60_000, 3, ("Service",))
    assert update is not None and update.payload == {"action": "deploy", "generation": 2}


def test_a_slow_account_leaves_the_worker_free_for_others(api: Api, store: Store, other_account,
                                                          home: Path) -> None:
    """Two build slots, one place per account: three stuck builds of one account hold
    one slot; another account's build and a service operation run meanwhile."""

    image = succeeded_image(api, store)
    stuck = account_images(api, 3)
    assert create_service(api, image["id"]).status_code == 202
    [other_build] = account_images(api.as_account(*other_account), 1)
    release, done = threading.Event(), set()
    default_account = store.accounts.find("default", "default", "default")
    assert default_account is not None

    def build(operation: Operation, worker: str) -> None:
        if operation.account_id == default_account.id:
            release.wait(30)
        assert store.images.complete(operation.id, worker, operation.resource_id, "Succeeded", image_location="x:1")
        done.add(operation.id)

    def service(operation: Operation, worker: str) -> None:
        with writing(store.engine) as connection:
            assert store.operations.finish(connection, operation.id, worker, "Succeeded")
        done.add(operation.id)

    settings = Settings.load(home=home, worker_poll_seconds=0.05, worker_build_slots=2, account_build_slots=1,
                             worker_service_slots=1)
    stop = threading.Event()
    worker = threading.Thread(target=Worker(settings, store, {"Image": build, "Service": service}).run, args=(stop,))
    worker.start()
    try:
        assert wait_until(lambda: other_build in done and len(done) == 2, timeout=20), done
        states = [api.ok("GET", f"/operations/{operation_id}")["state"] for operation_id in stuck]
        assert sorted(states) == ["NotStarted", "NotStarted", "Running"]
        release.set()
        assert wait_until(lambda: set(stuck) <= done, timeout=20), done
    finally:
        release.set()
        stop.set()
        worker.join(30)
