"""Read-only queries behind the console's API routes: an account's counts and last
operations, and the sizes of its uploaded artifacts. Each is one indexed query, so an
account of 100,000 models is counted as fast as one of ten."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..store.database import reading
from ..store.operations import operation_from_row
from ..store.tables import artifacts, images, manifests, models, operations, services

# The states GET services shows; any other stored state (Deleting...) is shown as Running
SERVICE_STATES = ("NotStarted", "Running", "Cancelled", "Succeeded", "Failed")


def summary(engine: sa.Engine, account_id: int, account_path: str, last: int = 10) -> dict[str, Any]:
    with reading(engine) as connection:
        def count(table: sa.Table) -> int:
            return connection.execute(sa.select(sa.func.count()).select_from(table).where(
                table.c.account_id == account_id)).scalar_one()

        image_states = connection.execute(
            sa.select(images.c.creation_state, sa.func.count()).where(images.c.account_id == account_id)
            .group_by(images.c.creation_state)).all()
        service_states = connection.execute(
            sa.select(services.c.state, sa.func.count()).where(services.c.account_id == account_id,
                                                               services.c.deleted.is_(False))
            .group_by(services.c.state)).all()
        recent = connection.execute(sa.select(operations).where(operations.c.account_id == account_id)
                                    .order_by(operations.c.seq.desc()).limit(last)).all()
        counts = {"models": count(models), "manifests": count(manifests)}
    shown: dict[str, int] = {}
    for state, number in service_states:
        key = state if state in SERVICE_STATES else "Running"
        shown[key] = shown.get(key, 0) + number
    return {**counts, "images": dict(sorted(image_states)), "services": dict(sorted(shown.items())),
            "operations": [operation_from_row(row).as_json(account_path) for row in recent]}


def artifact_sizes(engine: sa.Engine, account_id: int, digests: list[str]) -> dict[str, int]:
    """Sizes of the artifacts among ``digests`` that this account uploaded."""
    if not digests:
        return {}
    with reading(engine) as connection:
        rows = connection.execute(sa.select(artifacts.c.sha256, artifacts.c.size).where(
            artifacts.c.account_id == account_id, artifacts.c.sha256.in_(digests))).all()
    return {row.sha256: row.size for row in rows}
