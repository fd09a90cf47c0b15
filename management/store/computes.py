"""Compute resources: where an account's services run. ``local`` always exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .common import now_iso
from .database import reading, writing
from .errors import AlreadyExists
from .tables import computes

LOCAL = "local"
TLS_FIELDS = ("verify", "caCertPath", "clientCertPath", "clientKeyPath")


@dataclass(frozen=True)
class Compute:
    name: str
    kind: str  # local | swarm
    docker_host: str = ""  # "" = the worker's engine
    created_at: str = ""
    # None, or exactly TLS_FIELDS: verify (bool) and PEM file paths on the worker's host
    # (caCertPath "" when verify is off and no CA was given)
    tls: dict[str, Any] | None = field(default=None, hash=False)

    def as_json(self, tls_paths: bool = False) -> dict[str, Any]:
        """The API's ComputeInfo; TLS file paths only for ``tls_paths`` (admins)."""
        body: dict[str, Any] = {"id": self.name, "type": self.kind, "dockerHost": self.docker_host,
                                "createdAt": self.created_at}
        if self.tls is not None:
            body["tls"] = dict(self.tls) if tls_paths else {"verify": self.tls["verify"]}
        return body


class Computes:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, account_id: int, name: str, kind: str, docker_host: str,
            tls: dict[str, Any] | None = None) -> Compute:
        if name == LOCAL:
            raise AlreadyExists("the compute 'local' always exists")
        created = now_iso()
        with writing(self.engine) as connection:
            if connection.execute(sa.select(computes.c.name).where(
                    computes.c.account_id == account_id, computes.c.name == name)).first():
                raise AlreadyExists(f"a compute named {name} exists")
            connection.execute(sa.insert(computes).values(account_id=account_id, name=name, kind=kind,
                                                           docker_host=docker_host, created_at=created, tls=tls))
        return Compute(name, kind, docker_host, created, tls)

    def get(self, account_id: int, name: str) -> Compute | None:
        if name == LOCAL:
            return Compute(LOCAL, "local")
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(computes).where(
                computes.c.account_id == account_id, computes.c.name == name)).first()
        return _compute(row) if row else None

    def list(self, account_id: int) -> list[Compute]:
        with reading(self.engine) as connection:
            rows = connection.execute(sa.select(computes).where(computes.c.account_id == account_id)
                                      .order_by(computes.c.name)).all()
        return [Compute(LOCAL, "local")] + [_compute(row) for row in rows]


def _compute(row: sa.Row) -> Compute:
    return Compute(row.name, row.kind, row.docker_host, row.created_at, row.tls)
