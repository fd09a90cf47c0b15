"""Accounts scope all data: ``/subscriptions/{sub}/resourceGroups/{rg}/accounts/{name}``."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .common import now_iso
from .database import reading, writing
from .errors import AlreadyExists
from .tables import accounts

DEFAULT = ("default", "default", "default")


@dataclass(frozen=True)
class Account:
    id: int
    subscription_id: str
    resource_group: str
    name: str
    created_at: str

    @property
    def path(self) -> str:
        return (f"/api/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/accounts/{self.name}")

    def as_json(self) -> dict[str, str]:
        return {"subscriptionId": self.subscription_id, "resourceGroupName": self.resource_group,
                "accountName": self.name, "createdAt": self.created_at, "path": self.path}


class Accounts:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def find(self, subscription_id: str, resource_group: str, name: str) -> Account | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(accounts).where(
                accounts.c.subscription_id == subscription_id, accounts.c.resource_group == resource_group,
                accounts.c.name == name)).first()
        return Account(**row._mapping) if row else None

    def get(self, account_id: int) -> Account | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()
        return Account(**row._mapping) if row else None

    def create(self, subscription_id: str, resource_group: str, name: str) -> Account:
        """A new account; AlreadyExists when its name is taken, in this scope or another: names
        are unique in an installation, as they name its image repositories and containers."""
        values = {"subscription_id": subscription_id, "resource_group": resource_group, "name": name,
                  "created_at": now_iso()}
        try:
            with writing(self.engine) as connection:
                self._refuse_taken(connection, values)
                account_id = connection.execute(sa.insert(accounts).values(**values)).inserted_primary_key[0]
        except sa.exc.IntegrityError:  # another writer took the name after our check (PostgreSQL)
            with reading(self.engine) as connection:
                self._refuse_taken(connection, values)
            raise
        return Account(id=account_id, **values)

    def _refuse_taken(self, connection: sa.Connection, values: dict[str, str]) -> None:
        row = connection.execute(sa.select(accounts).where(accounts.c.name == values["name"])).first()
        if row is None:
            return
        taken = f"{row.subscription_id}/{row.resource_group}/{row.name}"
        if (row.subscription_id, row.resource_group) == (values["subscription_id"], values["resource_group"]):
            raise AlreadyExists(f"account {taken} exists")
        raise AlreadyExists(f"account name {row.name} is taken by {taken}: account names are unique in a moma "
                       "installation, whatever the subscription and resource group (they name its image "
                       "repositories and containers)")

    def ensure(self, subscription_id: str, resource_group: str, name: str) -> Account:
        found = self.find(subscription_id, resource_group, name)
        if found:
            return found
        try:
            return self.create(subscription_id, resource_group, name)
        except AlreadyExists:
            found = self.find(subscription_id, resource_group, name)
            if found is None:
                raise
            return found

    def ensure_default(self) -> Account:
        return self.ensure(*DEFAULT)

    def list(self) -> list[Account]:
        with reading(self.engine) as connection:
            rows = connection.execute(sa.select(accounts).order_by(accounts.c.id)).all()
        return [Account(**row._mapping) for row in rows]
