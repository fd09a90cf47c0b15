"""The store: SQLAlchemy Core over SQLite (WAL, default) or PostgreSQL.

One repository per resource, reached through a :class:`Store`. The store knows nothing
of HTTP: it raises its own errors (``errors.py``), which the API maps to answers.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from .accounts import Account, Accounts
from .artifacts import Artifacts
from .computes import Compute, Computes
from .database import create_engine
from .images import Images
from .leases import Leases
from .manifests import Manifests
from .meta import Meta
from .migrations import upgrade
from .models import Models
from .operations import Operation, Operations
from .services import Service, Services
from .tokens import Token, Tokens

__all__ = ["Account", "Compute", "Operation", "Service", "Store", "Token"]


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

    def close(self) -> None:
        self.engine.dispose()


def default_url(home: Path) -> str:
    return f"sqlite:///{home / 'moma.db'}"
