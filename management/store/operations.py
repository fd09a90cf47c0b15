"""Asynchronous operations as rows, executed by workers that claim them.

A claim is a lease: the worker owning an operation must renew it (heartbeat) before
it expires. An operation whose lease expired — its worker died — is claimed again by
any worker, up to ``max_attempts`` claims; after that it ends ``Failed`` with a reason,
so no operation stays ``Running`` for ever. Every change is conditional on the
current owner, so a worker that lost its lease cannot overwrite its successor's work.

The operations of one resource run one after the other, in the order they were made.
A claim may ask for some operation types only and cap how many of them one account
runs at once: the cap is counted on live leases of every worker, under a lock on the
account's row, so two workers claiming at the same moment cannot both take the last
place (PostgreSQL; SQLite runs one write transaction at a time anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from .. import tracing
from .common import now_iso, now_ms
from .database import reading, writing
from .tables import accounts, operations

NOT_STARTED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "NotStarted", "Running", "Succeeded", "Failed", "Cancelled"
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
# Hooks that mark a resource failed when its operation is given up: kind → function.
ResourceFailer = Callable[[sa.Connection, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Operation:
    id: str
    account_id: int
    operation_type: str
    resource_kind: str
    resource_id: str
    state: str
    created_time: str
    end_time: str | None
    error: dict[str, Any] | None
    attempts: int
    lease_owner: str | None
    payload: dict[str, Any] | None = None

    def as_json(self, account_path: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "operationType": self.operation_type, "state": self.state,
            "createdTime": self.created_time,
            "resourceLocation": f"{account_path}/{self.resource_kind}/{self.resource_id}",
        }
        if self.end_time:
            body["endTime"] = self.end_time
        if self.error:
            body["error"] = self.error
        return body


def operation_from_row(row: Any) -> Operation:
    return Operation(id=row.id, account_id=row.account_id, operation_type=row.operation_type,
                     resource_kind=row.resource_kind, resource_id=row.resource_id, state=row.state,
                     created_time=row.created_time, end_time=row.end_time, error=row.error,
                     attempts=row.attempts, lease_owner=row.lease_owner, payload=row.payload)


def insert_operation(connection: sa.Connection, *, operation_id: str, account_id: int, operation_type: str,
                     resource_kind: str, resource_id: str, payload: dict[str, Any] | None = None) -> None:
    traceparent = tracing.current_traceparent()  # the worker's span continues the request's trace
    if traceparent is not None:
        payload = {**(payload or {}), tracing.TRACEPARENT: traceparent}
    connection.execute(sa.insert(operations).values(
        id=operation_id, account_id=account_id, operation_type=operation_type, resource_kind=resource_kind,
        resource_id=resource_id, state=NOT_STARTED, created_time=now_iso(), attempts=0, payload=payload))


class Operations:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.failers: dict[str, ResourceFailer] = {}

    def get(self, account_id: int, operation_id: str) -> Operation | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(operations).where(
                operations.c.account_id == account_id, operations.c.id == operation_id)).first()
        return operation_from_row(row) if row else None

    def claim(self, worker: str, lease_ms: int, max_attempts: int, types: tuple[str, ...] | None = None,
              account_limit: int | None = None) -> Operation | None:
        """Take the oldest claimable operation (of ``types``, when given), or None.
        Operations whose worker died ``max_attempts`` times are failed on the way. With
        ``account_limit``, an account already running that many operations of ``types``
        gets none more until one ends."""
        while True:
            with writing(self.engine) as connection:
                now = now_ms()
                candidates = sa.and_(_claimable(now), _first_of_its_resource())
                if types is not None:
                    candidates = sa.and_(candidates, operations.c.operation_type.in_(types))
                if account_limit is not None:
                    candidates = sa.and_(candidates, _running_of(operations.c.account_id, types, now)
                                         .scalar_subquery() < account_limit)
                row = connection.execute(
                    sa.select(operations).where(candidates).order_by(operations.c.seq).limit(1)).first()
                if row is None:
                    return None
                if row.attempts >= max_attempts:
                    self._give_up(connection, row, max_attempts)
                    continue
                if account_limit is not None and not _below_limit(connection, row.account_id, types, now,
                                                                 account_limit):
                    continue  # another worker took the account's last place meanwhile
                taken = connection.execute(
                    sa.update(operations).where(operations.c.id == row.id, _claimable(now)).values(
                        state=RUNNING, lease_owner=worker, lease_expires_ms=now + lease_ms,
                        attempts=operations.c.attempts + 1))
                if taken.rowcount == 1:
                    claimed = connection.execute(sa.select(operations).where(operations.c.id == row.id)).one()
                    return operation_from_row(claimed)

    def heartbeat(self, operation_id: str, worker: str, lease_ms: int) -> bool:
        with writing(self.engine) as connection:
            result = connection.execute(sa.update(operations).where(
                operations.c.id == operation_id, operations.c.lease_owner == worker,
                operations.c.state == RUNNING).values(lease_expires_ms=now_ms() + lease_ms))
        return result.rowcount == 1

    def finish(self, connection: sa.Connection, operation_id: str, worker: str, state: str,
               error: dict[str, Any] | None = None) -> bool:
        """End an operation in the caller's transaction, only if ``worker`` still owns it."""
        result = connection.execute(sa.update(operations).where(
            operations.c.id == operation_id, operations.c.lease_owner == worker,
            operations.c.state == RUNNING).values(state=state, error=error, end_time=now_iso(),
                                                  lease_expires_ms=None))
        return result.rowcount == 1

    def _give_up(self, connection: sa.Connection, row: Any, max_attempts: int) -> None:
        error = {
            "code": "WorkerLost", "statusCode": 500,
            "message": f"the worker running this operation stopped {max_attempts} times "
                       f"(last owner {row.lease_owner}); giving up",
        }
        connection.execute(sa.update(operations).where(operations.c.id == row.id).values(
            state=FAILED, error=error, end_time=now_iso(), lease_expires_ms=None))
        failer = self.failers.get(row.resource_kind)
        if failer:
            failer(connection, row.resource_id, error)


def _claimable(now: int) -> sa.ColumnElement[bool]:
    return sa.or_(operations.c.state == NOT_STARTED,
                  sa.and_(operations.c.state == RUNNING, operations.c.lease_expires_ms < now))


def _first_of_its_resource() -> sa.ColumnElement[bool]:
    """No earlier operation on the same resource is still to finish."""
    earlier = operations.alias("earlier")
    return ~sa.exists().where(earlier.c.resource_kind == operations.c.resource_kind,
                              earlier.c.resource_id == operations.c.resource_id,
                              earlier.c.seq < operations.c.seq,
                              earlier.c.state.in_((NOT_STARTED, RUNNING)))


def _running_of(account_id: Any, types: tuple[str, ...] | None, now: int) -> sa.Select:
    """How many operations (of ``types``) of the account run under a live lease."""
    running = operations.alias("running")
    query = sa.select(sa.func.count()).select_from(running).where(
        running.c.account_id == account_id, running.c.state == RUNNING, running.c.lease_expires_ms >= now)
    return query.where(running.c.operation_type.in_(types)) if types is not None else query


def _below_limit(connection: sa.Connection, account_id: int, types: tuple[str, ...] | None, now: int,
                 limit: int) -> bool:
    """Counted again under a lock on the account's row, which every claim for that
    account takes: the count sees the claims committed before ours."""
    connection.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())
    return connection.execute(_running_of(account_id, types, now)).scalar_one() < limit
