"""Services: create / update (202, carried out by the worker), list with the spec's
filters, get, delete (200, or 204 when absent), keys and regenerateKeys; deployments.
Compute resources are in ``computes.py``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..data_collection import check_sink
from ..engines import EngineError, EngineUnavailable
from ..errors import BadRequest, Detail, NotFound, ServiceUnavailable
from ..service_keys import new_service_key
from ..service_settings import desired_settings
from ..service_telemetry import check_destination
from ..store import Account, Compute, Service
from .extensions import get_cipher, get_engines, get_store
from .pagination import page_args, paginated
from .request_context import current_account, empty_response, json_body, settings
from .schemas import validate

blueprint = Blueprint("services", __name__)
SERVICE_FILTERS = ("serviceName", "modelId", "modelName", "manifestId", "manifestName", "imageId",
                   "computeResourceId")


@blueprint.post("/services")
def create() -> Response:
    account = current_account()
    body = validate(json_body(), "ServiceCreateRequest")
    compute = _compute(account, (body.get("computeResource") or {}).get("id") or "local")
    image_id = _ready_image(account, body["imageId"])
    desired = desired_settings(body, compute.kind)
    check_sink(body, compute.kind, settings())
    check_destination(desired, settings())
    _check_images_reach_every_node(compute)
    service_id = str(uuid.uuid4())
    keys = get_cipher()
    operation_id = get_store().services.create(
        account.id, service_id=service_id, name=body["name"], image_id=image_id, compute=compute.name, settings=desired,
        primary_key=keys.encrypt(new_service_key(), service_id),
        secondary_key=keys.encrypt(new_service_key(), service_id))
    return _accepted(account, operation_id)


@blueprint.get("/services")
def list_services() -> Response:
    account = current_account()
    count, after = page_args()
    filters = {key: request.args.get(key) for key in SERVICE_FILTERS}
    page = get_store().services.list(account.id, filters=filters, after=after, limit=count)
    return jsonify(paginated(page, filters, [service_json(account, item["service"]) for item in page.items]))


@blueprint.get("/services/<service_id>")
def get_service(service_id: str) -> Response:
    account = current_account()
    return jsonify(service_json(account, _service(account, service_id)))


@blueprint.put("/services/<service_id>")
def update(service_id: str) -> Response:
    account = current_account()
    body = validate(json_body(), "ServiceUpdateRequest")
    service = _service(account, service_id)
    compute = _compute(account, service.compute)
    image_id = _ready_image(account, body["imageId"]) if "imageId" in body else service.image_id
    desired = desired_settings(body, compute.kind, previous=service.settings)
    check_sink(body, compute.kind, settings())
    check_destination(desired, settings())
    operation_id = get_store().services.update(account.id, service_id, image_id=image_id, settings=desired)
    return _accepted(account, operation_id)


@blueprint.delete("/services/<service_id>")
def delete(service_id: str) -> Response:
    """200 with the removal's Operation-Location (a moma addition: clients may wait for the
    containers to be gone), or 204 when there is no such service."""
    account = current_account()
    operation_id = get_store().services.delete(account.id, service_id)
    return _accepted(account, operation_id, 200) if operation_id else empty_response(204)


@blueprint.get("/services/<service_id>/keys")
def keys(service_id: str) -> Response:
    return jsonify(_keys(_service(current_account(), service_id)))


@blueprint.post("/services/<service_id>/regenerateKeys")
def regenerate_keys(service_id: str) -> Response:
    account = current_account()
    body = validate(json_body(), "ServiceRegenerateKeyRequest")
    service = _service(account, service_id)
    new_key = get_cipher().encrypt(new_service_key(), service.id)
    which = {"Primary": "primary_key", "Secondary": "secondary_key"}[body["keyType"]]
    service = get_store().services.set_keys(account.id, service_id, **{which: new_key})
    get_store().services.queue_keys(account.id, service_id)
    return jsonify(_keys(service))


@blueprint.get("/services/<service_id>/logs")
def logs(service_id: str) -> Response:
    """The scoring container's recent log lines (a moma extension): JSON lines carrying
    request ids, as the runtime writes them."""
    account = current_account()
    service = _service(account, service_id)
    tail = request.args.get("tail", "200")
    if not tail.isascii() or not tail.isdigit() or not 1 <= int(tail) <= 10000:
        raise BadRequest(f"tail must be an integer from 1 to 10000, got {tail!r}")
    compute = _compute(account, service.compute)
    try:
        text = get_engines().call(compute, lambda engine: engine.logs(service.id, tail=int(tail)),
                                  f"compute {compute.name}")
    except EngineUnavailable as exc:  # 503, or 504 EngineTimeout when the engine did not answer in time
        raise type(exc)(f"cannot read the logs of service {service.name}: {exc.message}") from exc
    except EngineError as exc:
        raise ServiceUnavailable(f"cannot read the logs of service {service.name}: {exc.message}") from exc
    return Response(text, mimetype="text/plain")


@blueprint.get("/deployments")
def list_deployments() -> Response:
    return jsonify(get_store().services.deployments(current_account().id, request.args.get("serviceId")))


@blueprint.get("/deployments/<deployment_id>")
def get_deployment(deployment_id: str) -> Response:
    deployment = get_store().services.deployment(current_account().id, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return jsonify(deployment)


def service_json(account: Account, service: Service) -> dict[str, Any]:
    store = get_store()
    image = store.images.get(account.id, service.image_id)
    manifest = (image or {}).get("manifest") or {}
    models = store.models.get_many(account.id, manifest.get("modelIds") or [])
    body: dict[str, Any] = {
        "id": service.id, "ID": service.id, "name": service.name, "createdAt": service.created_at,
        "updatedAt": service.updated_at, "state": service.state if service.state in _STATES else "Running",
        "computeResource": {"id": service.compute, "type": "Cluster"},
        **service.settings,
    }
    if service.replicas and not service.settings.get("numReplicas"):
        body["numReplicas"] = service.replicas
    if image is not None:
        body |= {"image": image, "manifest": manifest, "models": list(models.values())}
    if service.scoring_port:
        base = f"http://{service.scoring_host}:{service.scoring_port}"
        body |= {"scoringUri": f"{base}/score", "swaggerUri": f"{base}/swagger.json"}
    if service.error:
        body["error"] = service.error
    return body


_STATES = ("NotStarted", "Running", "Cancelled", "Succeeded", "Failed")


def _keys(service: Service) -> dict[str, str]:
    cipher = get_cipher()
    return {"primaryKey": cipher.decrypt(service.primary_key, service.id),
            "secondaryKey": cipher.decrypt(service.secondary_key, service.id)}


def _service(account: Account, service_id: str) -> Service:
    service = get_store().services.get(account.id, service_id)
    if service is None:
        raise NotFound(f"service {service_id} not found")
    return service


def _compute(account: Account, name: str) -> Compute:
    compute = get_store().computes.get(account.id, name)
    if compute is None:
        raise BadRequest(f"compute {name} does not exist in this account (moma compute list)",
                         [Detail("ComputeNotFound", f"computeResource.id: {name} not found")])
    return compute


def _check_images_reach_every_node(compute: Compute) -> None:
    """A swarm of several nodes runs only images every node can pull: without a registry
    the worker's image is on one host only. An engine that does not answer now is the
    worker's to report when it deploys."""
    if compute.kind != "swarm" or settings().registry:
        return
    try:
        nodes = get_engines().call(compute, lambda engine: engine.nodes(), f"compute {compute.name}")
    except EngineError:
        return
    if nodes > 1:
        message = (f"compute {compute.name} is a swarm of {nodes} nodes and no registry is set: an image built by a "
                   "worker is on that worker's Docker host only, so the other nodes could not run it; set "
                   "MOMA_REGISTRY (e.g. 127.0.0.1:5000) on the servers and workers, build the image again, then "
                   "create the service")
        raise BadRequest(message, [Detail("RegistryRequired", f"computeResource.id: {compute.name} has {nodes} "
                                                              "nodes and MOMA_REGISTRY is not set")])


def _ready_image(account: Account, image_id: str) -> str:
    image = get_store().images.get(account.id, image_id)
    if image is None:
        raise BadRequest(f"image {image_id} is not in this account",
                         [Detail("ImageNotFound", f"imageId: {image_id} not found")])
    if image["creationState"] != "Succeeded":
        raise BadRequest(f"image {image_id} is {image['creationState']}, not Succeeded: it cannot run yet",
                         [Detail("ImageNotReady", f"imageId: creationState {image['creationState']}")])
    return image_id


def _accepted(account: Account, operation_id: str, status: int = 202) -> Response:
    return empty_response(status, **{"Operation-Location": f"{account.path}/operations/{operation_id}"})
