"""Small pieces every repository uses: clocks, ids, keyset pages, version counters."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .tables import name_versions


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(time.time() * 1000)


def hex_id() -> str:
    """32 hex characters without dashes (model ids, as the original)."""
    return uuid.uuid4().hex


def guid() -> str:
    """A dashed GUID (manifest, image and operation ids, as the original)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_after: int | None  # the seq to continue after, or None on the last page


def keyset_page(connection: sa.Connection, table: sa.Table, where: list[Any], after: int | None, limit: int,
                to_json: Callable[[Any], dict[str, Any]], select_from: Any = None) -> Page:
    """One page ordered by ``seq``; stable under concurrent inserts because it continues
    after the last seq seen rather than skipping an offset."""
    query = sa.select(table).where(*where)
    if select_from is not None:
        query = query.select_from(select_from)
    if after is not None:
        query = query.where(table.c.seq > after)
    rows = connection.execute(query.order_by(table.c.seq).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_json(row) for row in rows], rows[-1].seq if more else None)


def next_version(connection: sa.Connection, account_id: int, kind: str, name: str) -> int:
    """Atomically take the next version for a name: an upsert that increments the counter
    and returns it, in the caller's transaction."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(name_versions)
        .values(account_id=account_id, kind=kind, name=name, last_version=1)
        .on_conflict_do_update(
            index_elements=["account_id", "kind", "name"],
            set_={"last_version": name_versions.c.last_version + 1},
        )
        .returning(name_versions.c.last_version)
    )
    return int(connection.execute(statement).scalar_one())


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class Values:
    """Attribute access over a dict, so freshly inserted values serialise like rows."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
