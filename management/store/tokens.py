"""API tokens: random, shown once, stored as sha256 hashes. An admin token (no
account) reaches every account; an account token reaches its own account only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from .common import hex_id, now_iso
from .database import reading, writing
from .tables import tokens


@dataclass(frozen=True)
class Token:
    id: str
    account_id: int | None
    name: str
    created_at: str
    revoked_at: str | None

    @property
    def admin(self) -> bool:
        return self.account_id is None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "accountId": self.account_id, "admin": self.admin,
                "createdAt": self.created_at, "revokedAt": self.revoked_at}


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, name: str, account_id: int | None) -> tuple[str, Token]:
        secret = "moma_" + secrets.token_urlsafe(32)
        record = Token(id=hex_id(), account_id=account_id, name=name, created_at=now_iso(), revoked_at=None)
        with writing(self.engine) as connection:
            connection.execute(sa.insert(tokens).values(
                id=record.id, account_id=account_id, name=name, token_hash=token_hash(secret),
                created_at=record.created_at))
        return secret, record

    def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret. The lookup is by hash: a timing difference
        can only reveal bits of a hash, which does not help to forge a secret."""
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(tokens).where(
                tokens.c.token_hash == token_hash(secret), tokens.c.revoked_at.is_(None))).first()
        return _token(row) if row else None

    def revoke(self, token_id: str) -> bool:
        with writing(self.engine) as connection:
            result = connection.execute(sa.update(tokens).where(
                tokens.c.id == token_id, tokens.c.revoked_at.is_(None)).values(revoked_at=now_iso()))
        return result.rowcount == 1

    def list(self, account_id: int | None = None, include_admin: bool = True) -> list[Token]:
        query = sa.select(tokens).order_by(tokens.c.created_at)
        if account_id is not None:
            query = query.where(sa.or_(tokens.c.account_id == account_id,
                                       tokens.c.account_id.is_(None) if include_admin else sa.false()))
        with reading(self.engine) as connection:
            return [_token(row) for row in connection.execute(query)]


def _token(row: sa.Row) -> Token:
    return Token(id=row.id, account_id=row.account_id, name=row.name, created_at=row.created_at,
                 revoked_at=row.revoked_at)
