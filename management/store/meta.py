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
        with reading(self.engine) as connection:
            found = connection.execute(sa.select(meta.c.value).where(meta.c.key == "installation")).scalar()
        if found:
            return found
        with writing(self.engine) as connection:
            found = connection.execute(sa.select(meta.c.value).where(meta.c.key == "installation")).scalar()
            if found:
                return found
            value = uuid.uuid4().hex[:12]
            connection.execute(sa.insert(meta).values(key="installation", value=value))
            return value
