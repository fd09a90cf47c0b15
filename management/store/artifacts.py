"""Which account uploaded which content-addressed artifact."""

from __future__ import annotations

import sqlalchemy as sa

from .common import now_iso
from .database import reading, writing
from .tables import artifacts


class Artifacts:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, account_id: int, sha256: str, size: int) -> None:
        with writing(self.engine) as connection:
            exists = connection.execute(sa.select(artifacts.c.sha256).where(
                artifacts.c.account_id == account_id, artifacts.c.sha256 == sha256)).first()
            if not exists:
                connection.execute(sa.insert(artifacts).values(account_id=account_id, sha256=sha256, size=size,
                                                                created_at=now_iso()))

    def owned(self, account_id: int, sha256: str) -> bool:
        with reading(self.engine) as connection:
            return connection.execute(sa.select(artifacts.c.sha256).where(
                artifacts.c.account_id == account_id, artifacts.c.sha256 == sha256)).first() is not None
