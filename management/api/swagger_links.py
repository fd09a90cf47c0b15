"""How the API's operations lead to one another, as Swagger 2.0 ``x-links`` (OpenAPI
links): a response's values fill the next request, so that clients and stateful fuzzers
walk from a new account to its models, manifests, images, operations and tokens with
real ids instead of guessing them.

Values are runtime expressions: ``$response.body#/id``, ``$request.path.accountName``, and
``#regex:`` (a capture group) to take an id from the end of a path."""

from __future__ import annotations

import copy
from typing import Any

ACCOUNT = ("subscriptionId", "resourceGroupName", "accountName")
FROM_NEW_ACCOUNT = {f"path.{name}": f"$response.body#/{name}" for name in ACCOUNT}
SAME_ACCOUNT = {f"path.{name}": f"$request.path.{name}" for name in ACCOUNT}
EXAMPLE = "https://example.com"


def _to(operation_id: str, parameters: dict[str, str] | None = None, body: Any = None) -> dict[str, Any]:
    link: dict[str, Any] = {"operationId": operation_id}
    if parameters:
        link["parameters"] = parameters
    if body is not None:
        link["requestBody"] = body
    return link


def _in_account(operation_id: str, body: Any = None, **parameters: str) -> dict[str, Any]:
    """A link to an operation in the same account as the request that answered."""
    return _to(operation_id, {**SAME_ACCOUNT, **parameters}, body)


LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "Accounts_Create": {"200": {
        "RegisterModel": _to("Models_Register", FROM_NEW_ACCOUNT, {
            "name": "linked", "url": f"{EXAMPLE}/model.pkl", "mimeType": "application/octet-stream"}),
        "ListModels": _to("Models_List", FROM_NEW_ACCOUNT),
        "AddCompute": _to("Computes_Add", FROM_NEW_ACCOUNT, {"name": "cluster", "type": "swarm"}),
        "CreateToken": _to("Tokens_Create", body={"name": "linked", **{name: f"$response.body#/{name}"
                                                                        for name in ACCOUNT}}),
    }},
    "Tokens_Create": {"200": {"Revoke": _to("Tokens_Revoke", {"path.tokenId": "$response.body#/id"})}},
    "Models_Register": {"200": {
        "GetModel": _in_account("Models_Get", **{"path.id": "$response.body#/id"}),
        "ListByName": _in_account("Models_List", **{"query.name": "$response.body#/name"}),
        "ManifestsOfModel": _in_account("Manifests_List", **{"query.modelId": "$response.body#/id"}),
        "RegisterManifest": _in_account("Manifests_Register", {
            "name": "linked", "driverProgram": "driver", "modelIds": ["$response.body#/id"],
            "targetRuntime": {"runtimeType": "Python", "properties": {}},
            "assets": [{"id": "driver", "url": f"{EXAMPLE}/score.py"}]}),
    }},
    "Manifests_Register": {"200": {
        "GetManifest": _in_account("Manifests_Get", **{"path.id": "$response.body#/id"}),
        "ImagesOfManifest": _in_account("Images_List", **{"query.manifestId": "$response.body#/id"}),
        "CreateImage": _in_account("Images_Create", {"name": "linked", "manifestId": "$response.body#/id",
                                                     "imageType": "Docker", "computeResourceId": "local"}),
    }},
    "Images_Create": {"202": {
        "GetOperation": _in_account("Operations_Get", **{
            "path.id": "$response.header.Operation-Location#regex:/operations/([^/?]+)$"}),
    }},
    "Operations_Get": {"200": {
        "GetImage": _in_account("Images_Get", **{"path.id": "$response.body#/resourceLocation#regex:/images/([^/]+)$"}),
        "GetService": _in_account("Services_Get", **{
            "path.id": "$response.body#/resourceLocation#regex:/services/([^/]+)$"}),
    }},
    "Images_Get": {"200": {"BuildLog": _in_account("Images_BuildLog", **{"path.id": "$response.body#/id"})}},
    "Computes_Add": {"200": {
        "ServicesOnIt": _in_account("Services_List", **{"query.computeResourceId": "$response.body#/id"}),
    }},
}


def with_links(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with each operation's links added to its responses."""
    paths = copy.deepcopy(paths)
    for item in paths.values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            for status, links in LINKS.get(operation["operationId"], {}).items():
                operation["responses"][status]["x-links"] = links
    return paths
