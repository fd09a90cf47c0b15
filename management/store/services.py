"""Services and their deployments. The row holds the desired state (``settings``, in
the column ``spec``; image, ``generation``); the worker makes the engine match it and
records the outcome. Keys are stored encrypted (the caller encrypts; see ``management/service_keys.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .common import Page, guid, keyset_page, now_iso
from .database import reading, writing
from .errors import AlreadyExists, NotStored
from .operations import FAILED, NOT_STARTED, RUNNING, SUCCEEDED, Operations, insert_operation
from .tables import deployments, images, manifest_models, manifests, models, services

DELETING = "Deleting"


@dataclass(frozen=True)
class Service:
    id: str
    account_id: int
    name: str
    image_id: str
    compute: str
    settings: dict[str, Any]  # the desired settings, in the API's shape (numReplicas, autoScaler ...)
    state: str
    error: dict[str, Any] | None
    scoring_host: str | None
    scoring_port: int | None
    replicas: int | None
    primary_key: str
    secondary_key: str
    keys_version: int
    generation: int
    deleted: bool
    created_at: str
    updated_at: str


_COLUMNS = {"settings": "spec"}  # fields whose column is named otherwise


def service_from_row(row: Any) -> Service:
    return Service(**{name: getattr(row, _COLUMNS.get(name, name)) for name in Service.__dataclass_fields__})


def deployment_json(row: Any) -> dict[str, Any]:
    body = {"id": row.id, "imageId": row.image_id, "serviceName": row.service_name, "status": row.status,
            "createdAt": row.created_at}
    if row.expired_at:
        body["expiredAt"] = row.expired_at
    return body


class Services:
    def __init__(self, engine: sa.Engine, operations_repo: Operations) -> None:
        self.engine = engine
        self.operations = operations_repo
        operations_repo.failers["services"] = self._mark_failed

    def create(self, account_id: int, *, service_id: str, name: str, image_id: str, compute: str,
               settings: dict[str, Any], primary_key: str, secondary_key: str) -> str:
        """Store a new service with its first deployment and operation; returns the operation id."""
        now = now_iso()
        with writing(self.engine) as connection:
            taken = connection.execute(sa.select(services.c.id).where(
                services.c.account_id == account_id, services.c.name == name, services.c.deleted.is_(False))).first()
            if taken:
                raise AlreadyExists(f"a service named {name} exists in this account")
            connection.execute(sa.insert(services).values(
                id=service_id, account_id=account_id, name=name, image_id=image_id, compute=compute, spec=settings,
                state=NOT_STARTED, primary_key=primary_key, secondary_key=secondary_key, keys_version=1,
                generation=1, deleted=False, created_at=now, updated_at=now))
            return _deploy(connection, account_id, service_id, name, image_id, generation=1)

    def update(self, account_id: int, service_id: str, *, image_id: str, settings: dict[str, Any]) -> str:
        with writing(self.engine) as connection:
            row = _live(connection, account_id, service_id)
            generation = row.generation + 1
            connection.execute(sa.update(services).where(services.c.id == service_id).values(
                image_id=image_id, spec=settings, generation=generation, state=NOT_STARTED, error=None,
                updated_at=now_iso()))
            return _deploy(connection, account_id, service_id, row.name, image_id, generation)

    def delete(self, account_id: int, service_id: str) -> str | None:
        """Mark deleted and queue the removal from the engine: the removal's operation id, or
        None when there is no such service."""
        with writing(self.engine) as connection:
            row = connection.execute(sa.select(services).where(
                services.c.account_id == account_id, services.c.id == service_id,
                services.c.deleted.is_(False))).first()
            if row is None:
                return None
            connection.execute(sa.update(services).where(services.c.id == service_id).values(
                deleted=True, state=DELETING, updated_at=now_iso()))
            connection.execute(sa.update(deployments).where(
                deployments.c.service_id == service_id, deployments.c.expired_at.is_(None)).values(
                expired_at=now_iso(), status="Deleted"))
            operation_id = guid()
            insert_operation(connection, operation_id=operation_id, account_id=account_id, operation_type="Service",
                             resource_kind="services", resource_id=service_id, payload={"action": "delete"})
        return operation_id

    def get(self, account_id: int, service_id: str) -> Service | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(services).where(
                services.c.account_id == account_id, services.c.id == service_id,
                services.c.deleted.is_(False))).first()
        return service_from_row(row) if row else None

    def by_id(self, service_id: str) -> Service | None:
        """Deleted ones included: the worker needs them to clean up."""
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(services).where(services.c.id == service_id)).first()
        return service_from_row(row) if row else None

    def list(self, account_id: int, *, filters: dict[str, str | None], after: int | None = None,
             limit: int = 100) -> Page:
        """``filters``: serviceName, imageId, computeResourceId, manifestId, manifestName, modelId, modelName."""
        conditions = [services.c.account_id == account_id, services.c.deleted.is_(False),
                      *_filter_conditions(account_id, filters)]
        with reading(self.engine) as connection:
            return keyset_page(connection, services, conditions, after, limit,
                               lambda row: {"service": service_from_row(row)})

    def all_live(self) -> list[Service]:
        with reading(self.engine) as connection:
            rows = connection.execute(sa.select(services).where(services.c.deleted.is_(False))).all()
        return [service_from_row(row) for row in rows]

    def set_keys(self, account_id: int, service_id: str, *, primary_key: str | None = None,
                 secondary_key: str | None = None) -> Service:
        values: dict[str, Any] = {"keys_version": services.c.keys_version + 1, "updated_at": now_iso()}
        if primary_key is not None:
            values["primary_key"] = primary_key
        if secondary_key is not None:
            values["secondary_key"] = secondary_key
        with writing(self.engine) as connection:
            _live(connection, account_id, service_id)
            connection.execute(sa.update(services).where(services.c.id == service_id).values(**values))
            return service_from_row(connection.execute(sa.select(services).where(services.c.id == service_id)).one())

    def start(self, service_id: str, generation: int) -> None:
        with writing(self.engine) as connection:
            connection.execute(sa.update(services).where(
                services.c.id == service_id, services.c.generation == generation,
                services.c.state == NOT_STARTED).values(state=RUNNING))

    def complete(self, operation_id: str, worker: str, service_id: str, generation: int, state: str, *,
                 scoring_host: str | None = None, scoring_port: int | None = None, replicas: int | None = None,
                 error: dict[str, Any] | None = None) -> bool:
        """Record a deployment's outcome with its operation; a newer generation wins: an
        outdated operation only ends itself."""
        now = now_iso()
        with writing(self.engine) as connection:
            if not self.operations.finish(connection, operation_id, worker, state, error):
                return False
            current = connection.execute(sa.select(services.c.generation, services.c.deleted).where(
                services.c.id == service_id)).one()
            if current.generation != generation or current.deleted:
                return True
            values: dict[str, Any] = {"state": state, "error": error, "updated_at": now}
            if state == SUCCEEDED:
                values |= {"scoring_host": scoring_host, "scoring_port": scoring_port, "replicas": replicas}
            connection.execute(sa.update(services).where(services.c.id == service_id).values(**values))
            _settle_deployments(connection, service_id, operation_id, state, now)
        return True

    def mark(self, service_id: str, state: str, error: dict[str, Any] | None, replicas: int | None = None,
             scoring_port: int | None = None) -> None:
        """What the reconciler found (a service gone from its engine, or back)."""
        values: dict[str, Any] = {"state": state, "error": error, "updated_at": now_iso()}
        if replicas is not None:
            values["replicas"] = replicas
        if scoring_port is not None:
            values["scoring_port"] = scoring_port
        with writing(self.engine) as connection:
            connection.execute(sa.update(services).where(services.c.id == service_id,
                                                         services.c.deleted.is_(False)).values(**values))

    def set_replicas(self, service_id: str, replicas: int) -> None:
        with writing(self.engine) as connection:
            connection.execute(sa.update(services).where(services.c.id == service_id).values(replicas=replicas))

    def queue_keys(self, account_id: int, service_id: str) -> None:
        """Ask the worker to push the current keys to the engine now."""
        with writing(self.engine) as connection:
            insert_operation(connection, operation_id=guid(), account_id=account_id, operation_type="Service",
                             resource_kind="services", resource_id=service_id, payload={"action": "keys"})

    def deployments(self, account_id: int, service_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(deployments).where(deployments.c.account_id == account_id).order_by(deployments.c.seq)
        if service_id is not None:
            query = query.where(deployments.c.service_id == service_id)
        with reading(self.engine) as connection:
            return [deployment_json(row) for row in connection.execute(query)]

    def deployment(self, account_id: int, deployment_id: str) -> dict[str, Any] | None:
        with reading(self.engine) as connection:
            row = connection.execute(sa.select(deployments).where(
                deployments.c.account_id == account_id, deployments.c.id == deployment_id)).first()
        return deployment_json(row) if row else None

    @staticmethod
    def _mark_failed(connection: sa.Connection, service_id: str, error: dict[str, Any]) -> None:
        connection.execute(sa.update(services).where(services.c.id == service_id,
                                                     services.c.deleted.is_(False)).values(state=FAILED, error=error))


def _filter_conditions(account_id: int, filters: dict[str, str | None]) -> list[Any]:
    conditions: list[Any] = []
    if filters.get("serviceName") is not None:
        conditions.append(services.c.name == filters["serviceName"])
    if filters.get("imageId") is not None:
        conditions.append(services.c.image_id == filters["imageId"])
    if filters.get("computeResourceId") is not None:
        conditions.append(services.c.compute == filters["computeResourceId"])
    image_conditions: list[Any] = []
    if filters.get("manifestId") is not None:
        image_conditions.append(images.c.manifest_id == filters["manifestId"])
    if filters.get("manifestName") is not None:
        image_conditions.append(images.c.manifest_name == filters["manifestName"])
    model_conditions: list[Any] = []
    if filters.get("modelId") is not None:
        model_conditions.append(manifest_models.c.model_id == filters["modelId"])
    if filters.get("modelName") is not None:
        model_conditions.append(manifest_models.c.model_id.in_(
            sa.select(models.c.id).where(models.c.account_id == account_id, models.c.name == filters["modelName"])))
    if model_conditions:
        manifests_with_models = (sa.select(manifests.c.id)
                                 .join(manifest_models, manifest_models.c.manifest_seq == manifests.c.seq)
                                 .where(manifests.c.account_id == account_id, *model_conditions))
        image_conditions.append(images.c.manifest_id.in_(manifests_with_models))
    if image_conditions:
        conditions.append(services.c.image_id.in_(
            sa.select(images.c.id).where(images.c.account_id == account_id, *image_conditions)))
    return conditions


def _live(connection: sa.Connection, account_id: int, service_id: str) -> Any:
    row = connection.execute(sa.select(services).where(
        services.c.account_id == account_id, services.c.id == service_id, services.c.deleted.is_(False))).first()
    if row is None:
        raise NotStored(f"service {service_id} not found")
    return row


def _deploy(connection: sa.Connection, account_id: int, service_id: str, name: str, image_id: str,
            generation: int) -> str:
    """A new deployment and the operation that carries it out (same id); returns that id."""
    operation_id = guid()
    connection.execute(sa.insert(deployments).values(
        id=operation_id, account_id=account_id, service_id=service_id, service_name=name, image_id=image_id,
        status=NOT_STARTED, created_at=now_iso()))
    insert_operation(connection, operation_id=operation_id, account_id=account_id, operation_type="Service",
                     resource_kind="services", resource_id=service_id,
                     payload={"action": "deploy", "generation": generation})
    return operation_id


def _settle_deployments(connection: sa.Connection, service_id: str, deployment_id: str, state: str, now: str) -> None:
    """The deployment of this operation takes the outcome; on success the ones before it expire."""
    connection.execute(sa.update(deployments).where(deployments.c.id == deployment_id).values(status=state))
    if state == SUCCEEDED:
        connection.execute(sa.update(deployments).where(
            deployments.c.service_id == service_id, deployments.c.id != deployment_id,
            deployments.c.expired_at.is_(None)).values(expired_at=now))
