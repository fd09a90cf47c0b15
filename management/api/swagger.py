"""The API's own Swagger 2.0 document, built from the same definitions that validate
requests, served at ``/swagger.json`` and at ``<account>/swagger.json``."""

from __future__ import annotations

import urllib.parse
from typing import Any

from flask import Blueprint, Response, jsonify

from ..config import SUPPORTED_API_VERSIONS
from .request_context import ACCOUNT_PREFIX, settings
from .schemas import DEFINITIONS, ref, whole
from .swagger_links import with_links

blueprint = Blueprint("swagger", __name__)
account_blueprint = Blueprint("account_swagger", __name__)

ACCOUNT_PATH = ACCOUNT_PREFIX.replace("<sub>", "{subscriptionId}").replace("<rg>", "{resourceGroupName}") \
    .replace("<account>", "{accountName}")
ERROR = {"description": "Error response that describes why the operation failed.", "schema": ref("ErrorResponse")}


@blueprint.get("/swagger.json")
def document() -> Response:
    return jsonify(swagger_document(settings().public_url))


@account_blueprint.get("/swagger.json")
def account_document() -> Response:
    return jsonify(swagger_document(settings().public_url))


def swagger_document(public_url: str = "") -> dict[str, Any]:
    """The document; its ``host`` from ``public_url`` (MOMA_PUBLIC_URL), or absent, which
    tells clients to use the host they fetched it from (never our request's Host header)."""
    public = urllib.parse.urlsplit(public_url)
    return {
        "swagger": "2.0",
        "info": {
            "title": "moma: Model Management Account API",
            "version": SUPPORTED_API_VERSIONS[0],
            "description": "The Model Management Account API (models, manifests, images, operations). "
                           "Routes tagged 'moma extension' are additions for local use.",
        },
        **({"host": public.netloc} if public.netloc else {}),
        "basePath": public.path.rstrip("/") or "/",
        "schemes": [public.scheme or "http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header",
                                           "description": "Bearer <token>"}},
        "security": [{"Bearer": []}],
        "parameters": _shared_parameters(),
        "paths": with_links({**_paths(), **_console_paths(), **_admin_paths()}),
        "definitions": DEFINITIONS,
    }


def _shared_parameters() -> dict[str, Any]:
    path = {"in": "path", "required": True, "type": "string", "pattern": whole(r"[A-Za-z0-9._-]{1,64}")}
    return {
        "subscriptionId": {"name": "subscriptionId", **path},
        "resourceGroupName": {"name": "resourceGroupName", **path},
        "accountName": {"name": "accountName", **path},
        "apiVersion": {"name": "api-version", "in": "query", "required": True, "type": "string",
                       "enum": list(SUPPORTED_API_VERSIONS)},
        "count": {"name": "count", "in": "query", "required": False, "type": "integer", "minimum": 1,
                  "maximum": 1000, "description": "Items per page (default 100)."},
        "skipToken": {"name": "$skipToken", "in": "query", "required": False, "type": "string",
                      "description": "Continuation token; follow nextLink rather than building it."},
    }


def _paths() -> dict[str, Any]:
    account = [{"$ref": f"#/parameters/{name}"} for name in ("subscriptionId", "resourceGroupName", "accountName",
                                                              "apiVersion")]
    paging = [{"$ref": "#/parameters/count"}, {"$ref": "#/parameters/skipToken"}]

    def query(name: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "type": "string"}

    def id_param(name: str = "id") -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "type": "string"}

    def body(definition: str) -> dict[str, Any]:
        return {"name": "body", "in": "body", "required": True, "schema": ref(definition)}

    def ok(definition: str, description: str = "Success.") -> dict[str, Any]:
        return {"200": {"description": description, "schema": ref(definition)}, "default": ERROR}

    base = ACCOUNT_PATH
    return {
        f"{base}/models": {
            "parameters": account,
            "post": {"operationId": "Models_Register", "parameters": [body("Model")],
                     "responses": ok("Model", "The registered model.")},
            "get": {"operationId": "Models_List", "parameters": [query("name"), query("tag"), query("sha256"), *paging],
                    "responses": ok("PaginatedModelList")},
        },
        f"{base}/models/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Models_Get", "responses": ok("Model")},
        },
        f"{base}/manifests": {
            "parameters": account,
            "post": {"operationId": "Manifests_Register", "parameters": [body("Manifest")],
                     "responses": ok("Manifest", "The registered manifest.")},
            "get": {"operationId": "Manifests_List", "parameters": [query("modelId"), query("manifestName"), *paging],
                    "responses": ok("PaginatedManifestList")},
        },
        f"{base}/manifests/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Manifests_Get", "responses": ok("Manifest")},
        },
        f"{base}/images": {
            "parameters": account,
            "post": {"operationId": "Images_Create", "parameters": [body("ImageRequest")],
                     "responses": {"202": {"description": "Accepted; poll the operation.",
                                           "headers": {"Operation-Location": {"type": "string"}}},
                                   "default": ERROR}},
            "get": {"operationId": "Images_List", "parameters": [query("manifestId"), query("manifestName"), *paging],
                    "responses": ok("PaginatedImageList")},
        },
        f"{base}/images/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Images_Get", "responses": ok("Image")},
        },
        f"{base}/images/{{id}}/buildLog": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Images_BuildLog", "tags": ["moma extension"],
                    "produces": ["text/plain", "application/json"],
                    "responses": {"200": {"description": "The build log.", "schema": {"type": "string"}},
                                  "default": ERROR}},
        },
        f"{base}/operations/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Operations_Get", "responses": ok("AsyncOperationStatus")},
        },
        f"{base}/services": {
            "parameters": account,
            "post": {"operationId": "Services_Create", "parameters": [body("ServiceCreateRequest")],
                     "responses": {"202": {"description": "Accepted; poll the operation.",
                                           "headers": {"Operation-Location": {"type": "string"}}},
                                   "409": {"description": "A service with this name exists.",
                                           "schema": ref("ErrorResponse")},
                                   "default": ERROR}},
            "get": {"operationId": "Services_List",
                    "parameters": [query(name) for name in ("serviceName", "modelId", "modelName", "manifestId",
                                                            "manifestName", "imageId", "computeResourceId")] + paging,
                    "responses": ok("PaginatedServiceList")},
        },
        f"{base}/services/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Services_Get", "responses": ok("ServiceResponse")},
            "put": {"operationId": "Services_Update", "parameters": [body("ServiceUpdateRequest")],
                    "responses": {"202": {"description": "Accepted; poll the operation.",
                                          "headers": {"Operation-Location": {"type": "string"}}},
                                  "default": ERROR}},
            "delete": {"operationId": "Services_Delete",
                       "responses": {"200": {"description": "Deleted; the containers' removal is an operation.",
                                             "headers": {"Operation-Location": {"type": "string"}}},
                                     "204": {"description": "No such service."}, "default": ERROR}},
        },
        f"{base}/services/{{id}}/keys": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Services_ListKeys", "responses": ok("AuthKeys")},
        },
        f"{base}/services/{{id}}/regenerateKeys": {
            "parameters": [*account, id_param()],
            "post": {"operationId": "Services_RegenerateKeys", "parameters": [body("ServiceRegenerateKeyRequest")],
                     "responses": ok("AuthKeys")},
        },
        f"{base}/services/{{id}}/logs": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Services_Logs", "tags": ["moma extension"],
                    "produces": ["text/plain", "application/json"],
                    "parameters": [{"name": "tail", "in": "query", "required": False, "type": "integer",
                                    "minimum": 1, "maximum": 10000}],
                    "responses": {"200": {"description": "Recent log lines.", "schema": {"type": "string"}},
                                  "default": ERROR}},
        },
        f"{base}/services/{{id}}/data": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Services_ListCollectedData", "tags": ["moma extension"],
                    "description": "The files of the service's collected model data (local sink).",
                    "parameters": [query("identifier"), _since()], "responses": ok("CollectedDataList")},
        },
        f"{base}/services/{{id}}/data/rows": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Services_CollectedDataRows", "tags": ["moma extension"],
                    "produces": ["text/csv", "application/x-ndjson", "application/json"],
                    "parameters": [{**query("identifier"), "required": True}, _since()],
                    "responses": {"200": {"description": "The rows: CSV with its header row, or JSON Lines.",
                                          "schema": {"type": "string"}}, "default": ERROR}},
        },
        f"{base}/deployments": {
            "parameters": account,
            "get": {"operationId": "Deployments_List", "parameters": [query("serviceId")],
                    "responses": ok("DeploymentList")},
        },
        f"{base}/deployments/{{id}}": {
            "parameters": [*account, id_param()],
            "get": {"operationId": "Deployments_Get", "responses": ok("Deployment")},
        },
        f"{base}/computes": {
            "parameters": account,
            "get": {"operationId": "Computes_List", "tags": ["moma extension"],
                    "responses": ok("ComputeList")},
            "post": {"operationId": "Computes_Add", "tags": ["moma extension"], "parameters": [body("Compute")],
                     "responses": ok("ComputeInfo")},
        },
        f"{base}/artifacts": {
            "parameters": account,
            "post": {"operationId": "Artifacts_Upload", "tags": ["moma extension"],
                     "consumes": ["application/octet-stream"],
                     "parameters": [{"name": "name", "in": "query", "required": True, "type": "string"},
                                    {"name": "body", "in": "body", "required": True,
                                     "schema": {"type": "string", "format": "binary"}}],
                     "responses": ok("Artifact", "Stored; use the url in models and manifests.")},
        },
    }


def _console_paths() -> dict[str, Any]:
    """What the web console reads besides the spec's routes (management/console/api_routes.py)."""
    account = [{"$ref": f"#/parameters/{name}"} for name in ("subscriptionId", "resourceGroupName", "accountName",
                                                              "apiVersion")]
    tags = ["moma extension", "console"]

    def ok(definition: str) -> dict[str, Any]:
        return {"200": {"description": "Success.", "schema": ref(definition)}, "default": ERROR}

    base = f"{ACCOUNT_PATH}/console"
    return {
        "/api/console/whoami": {
            "get": {"operationId": "Console_Whoami", "tags": tags, "responses": ok("ConsoleWhoami")},
        },
        f"{base}/summary": {
            "parameters": account,
            "get": {"operationId": "Console_Summary", "tags": tags, "responses": ok("ConsoleSummary")},
        },
        f"{base}/artifactSizes": {
            "parameters": account,
            "get": {"operationId": "Console_ArtifactSizes", "tags": tags,
                    "parameters": [{"name": "sha256", "in": "query", "required": False, "type": "array",
                                    "items": {"type": "string", "pattern": whole("[0-9a-f]{64}")},
                                    "collectionFormat": "multi", "maxItems": 1000}],
                    "responses": ok("ArtifactSizes")},
        },
        f"{base}/images/{{id}}/labels": {
            "parameters": [*account, {"name": "id", "in": "path", "required": True, "type": "string"}],
            "get": {"operationId": "Console_ImageLabels", "tags": tags, "responses": ok("ImageLabels")},
        },
    }


def _admin_paths() -> dict[str, Any]:
    """Accounts and tokens: admin tokens only (403 for others), no api-version."""
    tags = ["moma extension", "administration"]

    def ok(definition: str, description: str = "Success.") -> dict[str, Any]:
        return {"200": {"description": description, "schema": ref(definition)}, "default": ERROR}

    def body(definition: str) -> dict[str, Any]:
        return {"name": "body", "in": "body", "required": True, "schema": ref(definition)}

    return {
        "/api/admin/accounts": {
            "get": {"operationId": "Accounts_List", "tags": tags, "responses": ok("AccountList")},
            "post": {"operationId": "Accounts_Create", "tags": tags, "parameters": [body("AccountRequest")],
                     "responses": {**ok("AccountInfo", "The new account."),
                                   "409": {"description": "The account name is taken, in this scope or another.",
                                           "schema": ref("ErrorResponse")}}},
        },
        "/api/admin/tokens": {
            "get": {"operationId": "Tokens_List", "tags": tags, "responses": ok("TokenList")},
            "post": {"operationId": "Tokens_Create", "tags": tags, "parameters": [body("TokenRequest")],
                     "responses": ok("NewToken", "The new token, with its secret shown this once.")},
        },
        "/api/admin/tokens/{tokenId}": {
            "parameters": [{"name": "tokenId", "in": "path", "required": True, "type": "string"}],
            "delete": {"operationId": "Tokens_Revoke", "tags": tags,
                       "responses": ok("TokenRevoked", "Revoked; requests with it fail from now on.")},
        },
    }


def _since() -> dict[str, Any]:
    return {"name": "since", "in": "query", "required": False, "type": "string",
            "description": "Only rows from then on: an ISO 8601 date or date and time (UTC unless it says)."}
