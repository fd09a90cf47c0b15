"""Every error is the spec's ErrorResponse with the right status, whatever produced it:
api-version, unknown routes, wrong methods, bodies (not JSON, bad JSON, too large),
validation, the store's refusals, and the unexpected. Request ids on every response."""

from __future__ import annotations

import io
import json
from typing import Callable

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from management.config import SUPPORTED_API_VERSIONS
from management.store import Store
from management.store.errors import AlreadyExists, MissingReferences, NotStored, StoreError

from ..helpers import Api, check_error, model_body


@pytest.mark.parametrize("version", SUPPORTED_API_VERSIONS)
def test_both_api_versions_are_accepted(api: Api, version: str) -> None:
    assert api.call("GET", "/models", version=version).status_code == 200
    assert api.call("POST", "/models", json=model_body(), version=version).status_code == 200


@pytest.mark.parametrize("version", [None, "", "2016-01-01", "2017-09-01", "2018-04-01-PREVIEW"])
@pytest.mark.parametrize("route", ["/models", "/operations/x", "/images"])
def test_missing_or_other_api_version_is_400_naming_the_supported_ones(api: Api, version: str | None,
                                                                      route: str) -> None:
    response = api.call("GET", route, version=version)

    assert response.status_code == 400
    message = check_error(response)["message"]
    assert all(supported in message for supported in SUPPORTED_API_VERSIONS)


@pytest.mark.parametrize("url", ["/nope", "/api/nope?api-version=2017-09-01-preview",
                                 "/api/subscriptions/default/resourceGroups/default/accounts/default/widgets"
                                 "?api-version=2017-09-01-preview",
                                 "/api/subscriptions/default/resourceGroups/default/accounts/default/models/a/b"
                                 "?api-version=2017-09-01-preview"])
def test_unknown_route_is_404(api: Api, url: str) -> None:
    response = api.open("GET", url)

    assert response.status_code == 404
    assert check_error(response)["code"] == "NotFound"


@pytest.mark.parametrize(("method", "route", "allowed"), [
    ("DELETE", "/models", {"GET", "POST"}),
    ("PUT", "/models/0123", {"GET"}),
    ("PATCH", "/manifests", {"GET", "POST"}),
    ("DELETE", "/images/x", {"GET"}),
    ("POST", "/operations/x", {"GET"}),
])
def test_wrong_method_is_405_with_allow(api: Api, method: str, route: str, allowed: set[str]) -> None:
    response = api.call(method, route)

    assert response.status_code == 405
    assert check_error(response)["code"] == "MethodNotAllowed"
    assert allowed <= {item.strip() for item in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("route", ["/models", "/manifests", "/images"])
def test_bad_json_is_400(api: Api, route: str) -> None:
    response = api.call("POST", route, data='{"name": "x",', content_type="application/json")

    assert response.status_code == 400
    check_error(response)


@pytest.mark.parametrize("body", ["", "null", "[]", '"text"', "42"])
def test_a_body_that_is_not_an_object_is_400(api: Api, body: str) -> None:
    response = api.call("POST", "/models", data=body, content_type="application/json")

    assert response.status_code == 400
    check_error(response)


def test_a_body_nested_too_deeply_is_400(api: Api) -> None:
    response = api.call("POST", "/models", data="[" * 100_000 + "]" * 100_000, content_type="application/json")

    assert response.status_code == 400
    check_error(response)


@pytest.mark.parametrize("body", [model_body(description="a\u0000b"), model_body(tags=["\u0000"]),
                                  {**model_body(), "unknown\u0000": 1}, {"name": "m", "x": [[["\u0000"]]]}])
def test_nul_characters_in_a_body_are_400(api: Api, body: dict) -> None:
    """PostgreSQL cannot store them; refused on both backends alike."""
    response = api.post("/models", body)

    assert response.status_code == 400
    assert "NUL" in check_error(response)["message"]
    assert api.ok("GET", "/models")["value"] == []


@pytest.mark.parametrize(("route", "params"), [("/models", {"name": "a\u0000"}), ("/models", {"tag": "\u0000"}),
                                               ("/manifests", {"modelId": "\u0000"}),
                                               ("/images", {"manifestName": "x\u0000"}),
                                               ("/models/a\u0000b", {}), ("/operations/\u0000", {})])
def test_nul_characters_in_a_url_are_400(api: Api, route: str, params: dict) -> None:
    response = api.get(route, params=params)

    assert response.status_code == 400
    assert "NUL" in check_error(response)["message"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("route", ["/models", "/manifests", "/images"])
def test_non_json_is_415(api: Api, route: str, content_type: str | None) -> None:
    response = api.call("POST", route, data=json.dumps(model_body()), content_type=content_type)

    assert response.status_code == 415
    assert check_error(response)["code"] == "UnsupportedMediaType"


def test_a_json_suffix_type_is_json(api: Api) -> None:
    response = api.call("POST", "/models", data=json.dumps(model_body()),
                        content_type="application/vnd.moma+json; charset=utf-8")

    assert response.status_code == 200


def test_body_over_the_limit_is_413(make_app: Callable[..., Flask], admin_token: str) -> None:
    api = Api(make_app(max_body_bytes=300).test_client(), admin_token)
    small, large = model_body(description="d"), model_body(description="d" * 200, tags=["t" * 29] * 3)
    assert len(json.dumps(small)) < 300 < len(json.dumps(large))

    assert api.post("/models", small).status_code == 200
    response = api.post("/models", large)

    assert response.status_code == 413
    error = check_error(response)
    assert error["code"] == "RequestEntityTooLarge" and "300" in error["message"]
    assert len(api.ok("GET", "/models")["value"]) == 1


def test_streamed_body_over_the_limit_is_413(make_app: Callable[..., Flask], admin_token: str) -> None:
    """No Content-Length (chunked, as gunicorn hands it over): the limit holds while reading."""
    api = Api(make_app(max_body_bytes=300).test_client(), admin_token)

    def post_streamed(body: dict) -> TestResponse:
        return api.call("POST", "/models", input_stream=io.BytesIO(json.dumps(body).encode()),
                        content_type="application/json", headers={"Transfer-Encoding": "chunked"},
                        environ_overrides={"wsgi.input_terminated": True})

    assert post_streamed(model_body(description="d")).status_code == 200
    response = post_streamed(model_body(description="d" * 200, tags=["x"] * 20))

    assert response.status_code == 413
    check_error(response)
    assert len(api.ok("GET", "/models")["value"]) == 1


def test_request_ids_on_every_response_and_client_ids_echoed(api: Api) -> None:
    """``Api.check`` asserts a new x-ms-request-id on every response; here, the echo."""
    for method, route in (("GET", "/models"), ("GET", "/models/x"), ("DELETE", "/models"), ("POST", "/models")):
        client_id = f"client-{method}-{route}"
        response = api.call(method, route, headers={"x-ms-client-request-id": client_id})
        assert response.headers["x-ms-client-request-id"] == client_id
    unauthenticated = api.call("GET", "/models", token=None, headers={"x-ms-client-request-id": "c-401"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["x-ms-client-request-id"] == "c-401"
    assert len(api.request_ids) == 5


def test_unexpected_errors_are_500_naming_the_request_id(api: Api, store: Store, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(store.models, "get", broken)

    response = api.get("/models/0123456789abcdef0123456789abcdef")

    assert response.status_code == 500
    error = check_error(response)
    assert error["code"] == "InternalServerError"
    assert response.headers["x-ms-request-id"] in error["message"]
    assert "fire" not in error["message"]


@pytest.mark.parametrize(("error", "status", "code"), [
    (AlreadyExists("a model named m exists"), 409, "Conflict"),
    (NotStored("model m not found"), 404, "NotFound"),
    (MissingReferences("model m is not registered", [("ModelNotFound", "modelIds: m is not registered")]),
     400, "BadRequest"),
])
def test_store_errors_become_their_answer(api: Api, store: Store, monkeypatch, error: StoreError, status: int,
                                          code: str) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(store.models, "get", refuse)

    response = api.get("/models/0123456789abcdef0123456789abcdef")

    assert response.status_code == status
    body = check_error(response)
    assert (body["code"], body["message"]) == (code, error.message)
    assert [(detail["code"], detail["message"]) for detail in body.get("details", [])] == error.details
