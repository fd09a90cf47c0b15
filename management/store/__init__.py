"""The store: SQLAlchemy Core over SQLite (WAL, default) or PostgreSQL.

One repository per resource, reached through a :class:`Store`; the Flask app holds
its store in ``app.extensions`` and views reach it with :func:`get_store`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from .accounts import Account, Accounts
from .artifacts import Artifacts
from .computes import Compute, Computes
from .database import create_engine
from .images import Images
from .leases import Leases
from .meta import Meta
from .manifests import Manifests
from .migrations import upgrade
from .models import Models
from .operations import Operation, Operations
from .services import Service, Services
from .tokens import Token, Tokens

__all__ = ["Account", "Compute", "Operation", "Service", "Store", "Token", "get_store"]


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: sa.Engine = create_engine(url)
        self.accounts = Accounts(self.engine)
        self.tokens = Tokens(self.engine)
        self.models = Models(self.engine)
        self.manifests = Manifests(self.engine)
        self.operations = Operations(self.engine)
        self.images = Images(self.engine, self.operations)
        self.artifacts = Artifacts(self.engine)
        self.services = Services(self.engine, self.operations)
        self.computes = Computes(self.engine)
        self.leases = Leases(self.engine)
        self.meta = Meta(self.engine)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic)."""
        upgrade(self.engine)

    def init_app(self, app: Flask) -> None:
        app.extensions["moma.store"] = self

    def close(self) -> None:
        self.engine.dispose()


def get_store() -> Store:
    return current_app.extensions["moma.store"]


def default_url(home: Path) -> str:
    return f"sqlite:///{home / 'moma.db'}"
