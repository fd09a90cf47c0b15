"""Compute resources: where an account's services run. ``local`` always exists."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import Conflict
from .common import now_iso
from .database import reading, writing
from .tables import computes

LOCAL = "local"


@dataclass(frozen=True)
class Compute:
    name: str
    kind: str  # local | swarm
    docker_host: str = ""
    created_at: str = ""

    def as_json(self) -> dict[str, str]:
        return {"id": self.name, "type": self.kind, "dockerHost": self.docker_host, "createdAt": self.created_at}


class Computes:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, account_id: int, name: str, kind: str, docker_host: str) -> Compute:
        if name == LOCAL:
            raise Conflict("the compute 'local' always exists")
        created = now_iso()
        with writing(self.engine) as connection:
            if connection.execute(sa.select(computes.c.name).where(
                    computes.c.account_id == account_id, computes.c.name == name)).first():
                raise Conflict(f"a compute named {name} exists")
            connection.execute(sa.insert(computes).values(account_id=account_id, name=name, kind=kind,
                                                           docker_host=docker_host, created_at=created))
        return Compute(name, kind, docker_host, created)

    def get(self, account_id: int, name: str) -> Compute | None:
        if name == LOCAL:
            return Compute(LOCAL, "local")
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(computes).where(
                computes.c.account_id == account_id, computes.c.name == name)).first()
        return Compute(row.name, row.kind, row.docker_host, row.created_at) if row else None

    def list(self, account_id: int) -> list[Compute]:
        with reading(self.engine) as connection:
            rows = connection.execute(sa.select(computes).where(computes.c.account_id == account_id)
                                      .order_by(computes.c.name)).all()
        return [Compute(LOCAL, "local")] + [Compute(r.name, r.kind, r.docker_host, r.created_at) for r in rows]
