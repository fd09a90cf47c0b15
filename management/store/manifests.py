"""Manifests: the driver, assets, models and runtime an image is built from."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .common import Page, guid, keyset_page, next_version, now_iso
from .database import reading, writing
from .errors import MissingReferences
from .tables import manifest_models, manifests, models

_STORED_ELSEWHERE = ("id", "name", "version", "createdTime")


def manifest_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "version": row.version, "createdTime": row.created_time, **row.body}


class Manifests:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def register(self, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Store a manifest; its ``modelIds`` must be registered in the same account,
        checked inside the transaction that stores it."""
        model_ids = list(dict.fromkeys(body.get("modelIds") or []))
        stored = {key: value for key, value in body.items() if key not in _STORED_ELSEWHERE}
        values = {"id": guid(), "account_id": account_id, "name": body["name"], "body": stored,
                  "created_time": now_iso()}
        with writing(self.engine) as connection:
            _check_models_exist(connection, account_id, model_ids)
            values["version"] = next_version(connection, account_id, "manifest", body["name"])
            seq = connection.execute(sa.insert(manifests).values(**values)).inserted_primary_key[0]
            if model_ids:
                connection.execute(sa.insert(manifest_models), [
                    {"manifest_seq": seq, "model_id": model_id, "account_id": account_id} for model_id in model_ids])
        return {"id": values["id"], "name": values["name"], "version": values["version"],
                "createdTime": values["created_time"], **stored}

    def get(self, account_id: int, manifest_id: str) -> dict[str, Any] | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(manifests).where(
                manifests.c.account_id == account_id, manifests.c.id == manifest_id)).first()
        return manifest_json(row) if row else None

    def list(self, account_id: int, *, model_id: str | None = None, name: str | None = None,
             after: int | None = None, limit: int = 100) -> Page:
        where: list[Any] = [manifests.c.account_id == account_id]
        select_from = None
        if name is not None:
            where.append(manifests.c.name == name)
        if model_id is not None:
            select_from = manifests.join(manifest_models, manifest_models.c.manifest_seq == manifests.c.seq)
            where += [manifest_models.c.account_id == account_id, manifest_models.c.model_id == model_id]
        with reading(self.engine) as connection:
            return keyset_page(connection, manifests, where, after, limit, manifest_json, select_from)


def _check_models_exist(connection: sa.Connection, account_id: int, model_ids: list[str]) -> None:
    if not model_ids:
        return
    found = set(connection.execute(sa.select(models.c.id).where(
        models.c.account_id == account_id, models.c.id.in_(model_ids))).scalars())
    missing = [model_id for model_id in model_ids if model_id not in found]
    if missing:
        raise MissingReferences(
            f"model {', '.join(missing)} is not registered in this account",
            [("ModelNotFound", f"modelIds: {model_id} is not a registered model") for model_id in missing],
        )
