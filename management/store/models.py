"""Registered models: a new version (and id) per registration of a name."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .common import Page, Values, drop_none, hex_id, keyset_page, next_version, now_iso
from .database import reading, writing
from .tables import model_tags, models


def model_json(row: Any) -> dict[str, Any]:
    return drop_none({
        "id": row.id, "name": row.name, "version": row.version, "description": row.description,
        "url": row.url, "mimeType": row.mime_type, "unpack": row.unpack, "tags": list(row.tags),
        "createdAt": row.created_at,
    })


class Models:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def register(self, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
        tags = list(dict.fromkeys(body.get("tags") or []))
        values = {
            "id": hex_id(), "account_id": account_id, "name": body["name"], "description": body.get("description"),
            "url": body["url"], "mime_type": body["mimeType"], "unpack": bool(body.get("unpack", False)),
            "tags": tags, "created_at": now_iso(),
        }
        with writing(self.engine) as connection:
            values["version"] = next_version(connection, account_id, "model", body["name"])
            seq = connection.execute(sa.insert(models).values(**values)).inserted_primary_key[0]
            if tags:
                connection.execute(sa.insert(model_tags), [
                    {"model_seq": seq, "tag": tag, "account_id": account_id} for tag in tags])
        return model_json(Values(values))

    def get(self, account_id: int, model_id: str) -> dict[str, Any] | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(models).where(
                models.c.account_id == account_id, models.c.id == model_id)).first()
        return model_json(row) if row else None

    def get_many(self, account_id: int, model_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not model_ids:
            return {}
        with reading(self.engine) as connection:
            rows = connection.execute(sa.select(models).where(
                models.c.account_id == account_id, models.c.id.in_(model_ids))).all()
        return {row.id: model_json(row) for row in rows}

    def list(self, account_id: int, *, name: str | None = None, tag: str | None = None,
             url_prefix: str | None = None, after: int | None = None, limit: int = 100) -> Page:
        where: list[Any] = [models.c.account_id == account_id]
        select_from = None
        if name is not None:
            where.append(models.c.name == name)
        if url_prefix is not None:
            where.append(models.c.url.startswith(url_prefix, autoescape=True))
        if tag is not None:
            select_from = models.join(model_tags, model_tags.c.model_seq == models.c.seq)
            where += [model_tags.c.account_id == account_id, model_tags.c.tag == tag]
        with reading(self.engine) as connection:
            return keyset_page(connection, models, where, after, limit, model_json, select_from)
