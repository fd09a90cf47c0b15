"""The API's own Swagger 2.0 document: valid against the Swagger 2.0 meta-schema, served
at ``/swagger.json`` and at ``<account>/swagger.json``, listing every route of the spec
we implement. (Every response of these tests is checked against it by ``Api``.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from management.api import swagger

from ..helpers import DOCUMENT, Api, image_body, manifest_body, model_body

SPEC_ROUTES = {
    "/models": {"post", "get"}, "/models/{id}": {"get"},
    "/manifests": {"post", "get"}, "/manifests/{id}": {"get"},
    "/images": {"post", "get"}, "/images/{id}": {"get"},
    "/operations/{id}": {"get"},
}
FILTERS = {"/models": {"name", "tag"}, "/manifests": {"modelId", "manifestName"},
           "/images": {"manifestId", "manifestName"}}
ADMIN_ROUTES = {"/api/admin/accounts": {"get", "post"}, "/api/admin/tokens": {"get", "post"},
                "/api/admin/tokens/{tokenId}": {"delete"}}
# the API's route variables and the document's path parameters
PATH_NAMES = {"sub": "subscriptionId", "rg": "resourceGroupName", "account": "accountName", "token_id": "tokenId",
              "model_id": "id", "manifest_id": "id", "image_id": "id", "operation_id": "id", "service_id": "id",
              "deployment_id": "id"}
SPEC_DEFINITIONS = {"Asset", "AsyncOperationState", "AsyncOperationStatus", "ErrorDetail", "ErrorResponse", "Image",
                    "ImageRequest", "ImageType", "Manifest", "Model", "PaginatedImageList", "PaginatedManifestList",
                    "PaginatedModelList", "TargetRuntime"}


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.open("GET", "/swagger.json")
    assert response.status_code == 200
    return response.get_json()


def test_both_locations_serve_the_same_document(api: Api, document: dict[str, Any]) -> None:
    assert api.ok("GET", "/swagger.json") == document
    assert document == swagger.swagger_document()


def test_it_is_valid_swagger_2(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")

    assert document["swagger"] == "2.0"
    validator.validate(document, cls=validator.OpenAPIV2SpecValidator)


def test_it_lists_every_route_of_the_spec(document: dict[str, Any]) -> None:
    base = swagger.ACCOUNT_PATH
    for route, methods in SPEC_ROUTES.items():
        assert methods <= set(document["paths"][base + route]), route
    for route, filters in FILTERS.items():
        names = {parameter.get("name") for parameter in document["paths"][base + route]["get"]["parameters"]}
        assert filters <= names, route
    assert SPEC_DEFINITIONS <= set(document["definitions"])


def test_it_says_how_to_authenticate(document: dict[str, Any]) -> None:
    assert document["securityDefinitions"]["Bearer"] == {
        "type": "apiKey", "name": "Authorization", "in": "header", "description": "Bearer <token>"}
    assert document["security"] == [{"Bearer": []}]


def test_the_cli_payloads_match_the_request_definitions() -> None:
    for body, definition in ((model_body(), "Model"), (manifest_body(["0" * 32]), "Manifest"),
                             (image_body("m"), "ImageRequest")):
        DOCUMENT.validate(body, definition)


def test_the_response_check_is_strict() -> None:
    """An undocumented field or a wrong type fails the check every test relies on."""
    with pytest.raises(AssertionError):
        DOCUMENT.validate({"id": "x", "name": "m", "url": "u", "mimeType": "m", "bogus": 1}, "Model")
    with pytest.raises(AssertionError):
        DOCUMENT.validate({"id": "x", "state": "Sleeping"}, "AsyncOperationStatus")
    with pytest.raises(AssertionError):
        DOCUMENT.validate({"code": "X", "message": "m", "details": [{"code": "Y"}]}, "ErrorResponse")
    with pytest.raises(AssertionError):
        DOCUMENT.validate({"value": [], "nextLink": 5}, "PaginatedModelList")
    with pytest.raises(AssertionError):
        DOCUMENT.validate({"value": [{"version": "1"}]}, "PaginatedImageList")
    assert DOCUMENT.response("GET", f"{swagger.ACCOUNT_PATH}/images", 200) is not None
    with pytest.raises(AssertionError):
        DOCUMENT.response("GET", f"{swagger.ACCOUNT_PATH}/images", 201)


def test_it_lists_the_admin_routes_with_closed_bodies(document: dict[str, Any]) -> None:
    for route, methods in ADMIN_ROUTES.items():
        assert methods <= set(document["paths"][route]), route
    for definition in ("AccountRequest", "TokenRequest", "Compute", "ComputeTls"):
        assert document["definitions"][definition]["additionalProperties"] is False, definition


def test_every_link_names_an_operation_and_its_parameters(document: dict[str, Any]) -> None:
    """Each x-link's target exists, and each parameter it fills is one the target takes."""
    operations = {operation["operationId"]: (item, operation) for item in document["paths"].values()
                  for operation in item.values() if isinstance(operation, dict) and "operationId" in operation}
    shared = document["parameters"]
    found = 0
    for _, operation in operations.values():
        for response in operation["responses"].values():
            for name, link in response.get("x-links", {}).items():
                found += 1
                assert link["operationId"] in operations, name
                item, target = operations[link["operationId"]]
                takes = {(shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p)["name"]
                         for p in [*item.get("parameters", []), *target.get("parameters", [])]}
                for parameter in link.get("parameters", {}):
                    assert parameter.split(".", 1)[1] in takes, (name, parameter)
    assert found >= 15


def test_it_lists_every_route_the_api_serves(api: Api, document: dict[str, Any]) -> None:
    """Extensions included (the console's reads, artifacts, computes, logs): a route added
    without its document entry fails here."""
    assert len(list(api.client.application.url_map.iter_rules())) > 30
    served = {}
    for rule in api.client.application.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.endswith("/swagger.json"):  # the document itself
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + PATH_NAMES.get(m[1], m[1]) + "}", rule.rule)
        served.setdefault(path, set()).update(method.lower() for method in rule.methods - {"HEAD", "OPTIONS"})
    for path, methods in served.items():
        assert path in document["paths"], path
        assert methods <= set(document["paths"][path]), path
