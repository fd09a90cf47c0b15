"""Images: created with their build operation in one transaction; their
``creationState`` follows the operation."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .common import Page, Values, drop_none, guid, keyset_page, next_version, now_iso
from .database import reading, writing
from .manifests import manifest_json
from .operations import FAILED, NOT_STARTED, RUNNING, Operations, insert_operation
from .tables import images, manifests


def image_json(row: Any, manifest: dict[str, Any] | None) -> dict[str, Any]:
    return drop_none({
        "id": row.id, "name": row.name, "version": row.version, "description": row.description,
        "imageType": row.image_type, "computeResourceId": row.compute_resource_id,
        "creationState": row.creation_state, "createdTime": row.created_time,
        "imageLocation": row.image_location, "imageBuildLogUri": row.image_build_log_uri,
        "error": row.error, "manifest": manifest,
    })


class Images:
    def __init__(self, engine: sa.Engine, operations: Operations) -> None:
        self.engine = engine
        self.operations = operations
        operations.failers["images"] = self._mark_failed

    def create(self, account_id: int, body: dict[str, Any], manifest: dict[str, Any],
               build_log_uri: str) -> tuple[dict[str, Any], str]:
        """Store a new image (NotStarted) and its build operation; returns (image, operation id).
        ``build_log_uri`` may contain ``{id}``, replaced by the new image's id."""
        image_id, operation_id = guid(), guid()
        values = {
            "id": image_id, "account_id": account_id, "name": body["name"], "description": body.get("description"),
            "manifest_id": manifest["id"], "manifest_name": manifest["name"], "image_type": body["imageType"],
            "compute_resource_id": body.get("computeResourceId"), "creation_state": NOT_STARTED,
            "created_time": now_iso(), "image_build_log_uri": build_log_uri.format(id=image_id),
            "operation_id": operation_id, "image_location": None, "error": None,
        }
        with writing(self.engine) as connection:
            values["version"] = next_version(connection, account_id, "image", body["name"])
            connection.execute(sa.insert(images).values(**values))
            insert_operation(connection, operation_id=operation_id, account_id=account_id, operation_type="Image",
                             resource_kind="images", resource_id=image_id)
        return image_json(Values(values), manifest), operation_id

    def get(self, account_id: int, image_id: str) -> dict[str, Any] | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(images).where(
                images.c.account_id == account_id, images.c.id == image_id)).first()
            if row is None:
                return None
            return image_json(row, _manifests(connection, [row.manifest_id]).get(row.manifest_id))

    def account_of(self, image_id: str) -> int | None:
        with reading(self.engine) as connection:
            return connection.execute(sa.select(images.c.account_id).where(images.c.id == image_id)).scalar()

    def list(self, account_id: int, *, manifest_id: str | None = None, manifest_name: str | None = None,
             after: int | None = None, limit: int = 100) -> Page:
        where: list[Any] = [images.c.account_id == account_id]
        if manifest_id is not None:
            where.append(images.c.manifest_id == manifest_id)
        if manifest_name is not None:
            where.append(images.c.manifest_name == manifest_name)
        with reading(self.engine) as connection:
            page = keyset_page(connection, images, where, after, limit,
                               lambda row: {**image_json(row, None), "_manifestId": row.manifest_id})
            embedded = _manifests(connection, [item["_manifestId"] for item in page.items])
        for item in page.items:
            item["manifest"] = embedded.get(item.pop("_manifestId"))
        return page

    def start(self, image_id: str) -> None:
        """Mark the image Running, unless it already ended: a worker that resumes after its
        lease was taken over must not undo its successor's outcome."""
        with writing(self.engine) as connection:
            connection.execute(sa.update(images).where(
                images.c.id == image_id, images.c.creation_state.in_((NOT_STARTED, RUNNING))).values(
                creation_state=RUNNING))

    def complete(self, operation_id: str, worker: str, image_id: str, state: str, *,
                 image_location: str | None = None, content_hash: str | None = None,
                 error: dict[str, Any] | None = None) -> bool:
        """End the build: operation and image change together, or not at all when the
        worker no longer owns the operation."""
        with writing(self.engine) as connection:
            if not self.operations.finish(connection, operation_id, worker, state, error):
                return False
            connection.execute(sa.update(images).where(images.c.id == image_id).values(
                creation_state=state, image_location=image_location, content_hash=content_hash, error=error))
        return True

    @staticmethod
    def _mark_failed(connection: sa.Connection, image_id: str, error: dict[str, Any]) -> None:
        connection.execute(sa.update(images).where(images.c.id == image_id).values(
            creation_state=FAILED, error=error))


def _manifests(connection: sa.Connection, manifest_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not manifest_ids:
        return {}
    rows = connection.execute(sa.select(manifests).where(manifests.c.id.in_(set(manifest_ids)))).all()
    return {row.id: manifest_json(row) for row in rows}
