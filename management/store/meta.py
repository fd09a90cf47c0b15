"""Key-value facts about the installation."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from .database import reading, writing
from .tables import meta


class Meta:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def installation_id(self) -> str:
        """A random id made once per store; labels everything this installation runs."""
        return self.remember("installation", uuid.uuid4().hex[:12])

    def remember(self, key: str, value: str) -> str:
        """The value stored under ``key``; ``value`` is stored when there is none yet
        (of processes that start together, the first one's: on PostgreSQL two of them may
        both find none and insert, and the second insert's conflict means the other won)."""
        found = self._read(key)
        if found:
            return found
        try:
            with writing(self.engine) as connection:
                found = connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
                if found:
                    return found
                connection.execute(sa.insert(meta).values(key=key, value=value))
                return value
        except sa.exc.IntegrityError:
            found = self._read(key)
            if not found:
                raise
            return found

    def _read(self, key: str) -> str | None:
        with reading(self.engine) as connection:
            found: str | None = connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
            return found
