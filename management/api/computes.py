"""Compute resources (a moma extension): where an account's services run; ``local``
always exists. A compute on another Docker engine (``dockerHost``, ``tls``) points the
server at that engine, so only an admin token may name one (checked before anything
else, so that an account cannot probe the server's files through the TLS paths); an
account token may add a swarm compute on the server's own engine."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import Forbidden
from .docker_hosts import check_engine
from .extensions import get_store
from .request_context import current_account, is_admin, json_body
from .schemas import validate

blueprint = Blueprint("computes", __name__)


@blueprint.get("/computes")
def list_computes() -> Response:
    admin = is_admin()
    return jsonify({"value": [c.as_json(tls_paths=admin) for c in get_store().computes.list(current_account().id)]})


@blueprint.post("/computes")
def add_compute() -> Response:
    body = validate(json_body(), "Compute")
    docker_host, tls = body.get("dockerHost", ""), body.get("tls")
    if (docker_host or tls is not None) and not is_admin():
        raise Forbidden("dockerHost and tls need an admin token: a compute on another Docker engine points the "
                        "server at that engine")
    stored_tls = check_engine(docker_host, tls)
    compute = get_store().computes.add(current_account().id, body["name"], body["type"], docker_host, stored_tls)
    return jsonify(compute.as_json(tls_paths=True))
