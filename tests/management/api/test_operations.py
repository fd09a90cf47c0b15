"""Operations: 200 in every state, with the resource they are about in the state it
ended in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from management.store import Store
from management.store.tables import operations

from ..helpers import Api, image_id_of, image_of


def test_operation_is_200_in_every_state(api: Api, manifest: dict[str, Any], store: Store) -> None:
    running, succeeded, failed = (api.create_image(manifest["id"], name=f"img{i}") for i in range(3))
    for operation_id in (running, succeeded, failed):
        claimed = store.operations.claim("w1", 60_000, 3)
        assert claimed is not None and claimed.id == operation_id
    assert store.images.complete(succeeded, "w1", image_id_of(api, succeeded), "Succeeded",
                                 image_location="default/img1:1")
    assert store.images.complete(failed, "w1", image_id_of(api, failed), "Failed",
                                 error={"code": "ImageBuildFailed", "message": "boom", "statusCode": 400})
    not_started, cancelled = (api.create_image(manifest["id"], name=f"img{i}") for i in range(3, 5))
    with store.engine.begin() as connection:
        connection.execute(sa.update(operations).where(operations.c.id == cancelled).values(state="Cancelled"))
    states = {not_started: "NotStarted", running: "Running", succeeded: "Succeeded", failed: "Failed",
              cancelled: "Cancelled"}

    for operation_id, state in states.items():
        operation = api.ok("GET", f"/operations/{operation_id}")
        assert operation["state"] == state
        assert ("endTime" in operation) == (state in ("Succeeded", "Failed"))
    built = image_of(api, succeeded)
    assert (built["creationState"], built["imageLocation"]) == ("Succeeded", "default/img1:1")
    broken = image_of(api, failed)
    assert broken["creationState"] == "Failed" and broken["error"]["message"] == "boom"
