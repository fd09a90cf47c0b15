"""Named leases for jobs that any worker may run but only one at a time."""

from __future__ import annotations

import sqlalchemy as sa

from .common import now_ms
from .database import writing
from .tables import leases


class Leases:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def hold(self, name: str, owner: str, lease_ms: int) -> bool:
        """Take or renew the lease; False while another owner holds it."""
        now = now_ms()
        with writing(self.engine) as connection:
            row = connection.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is None:
                connection.execute(sa.insert(leases).values(name=name, owner=owner, expires_ms=now + lease_ms))
                return True
            if row.owner != owner and row.expires_ms > now:
                return False
            connection.execute(sa.update(leases).where(leases.c.name == name).values(
                owner=owner, expires_ms=now + lease_ms))
            return True
