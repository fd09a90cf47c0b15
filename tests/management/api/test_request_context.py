"""What every request goes through (``api/request_context.py``): the bearer token, and
the account scope: an account token reaches its own account only, nothing of one account
is visible or reachable through another's path, and an unknown account and a forbidden
one answer alike."""

from __future__ import annotations

from typing import Callable

import pytest
from flask import Flask

from management.store import Store

from ..helpers import DEFAULT_SCOPE, Api, check_error, image_body, manifest_body

Scope = tuple[str, str, str]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "moma_abc",
                                    "Bearer not-a-token", "Token moma_abc"])
def test_missing_or_wrong_token_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    response = api.call("GET", "/models", token=None, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert check_error(response)["code"] == "Unauthorized"


@pytest.mark.parametrize("url", ["/swagger.json", "/api/admin/accounts"])
def test_every_route_needs_a_token(api: Api, url: str) -> None:
    assert api.open("GET", url, token=None).status_code == 401


def test_the_scheme_is_case_insensitive(api: Api, admin_token: str) -> None:
    assert api.call("GET", "/models", token=None, headers={"Authorization": f"bearer {admin_token}"}).status_code == 200


def test_a_revoked_token_is_401(api: Api, store: Store) -> None:
    secret, token = store.tokens.create("temp", None)
    assert api.call("GET", "/models", token=secret).status_code == 200

    assert store.tokens.revoke(token.id)

    response = api.call("GET", "/models", token=secret)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_auth_off_needs_no_token(make_app: Callable[..., Flask]) -> None:
    api = Api(make_app(auth=False).test_client(), None)

    assert api.ok("POST", "/models", {"name": "m", "url": "https://x/m", "mimeType": "a"})["version"] == 1
    assert api.open("GET", "/api/admin/accounts").status_code == 200


def test_an_account_token_reaches_its_account(api: Api, account_token: str) -> None:
    user = Api(api.client, account_token)

    model = user.register_model()

    assert user.ok("GET", f"/models/{model['id']}") == model


def populate(api: Api) -> dict[str, str]:
    """One object of every kind in ``api``'s account: kind → id."""
    model = api.register_model()
    manifest = api.register_manifest([model["id"]])
    operation_id = api.create_image(manifest["id"])
    image_id = api.ok("GET", f"/operations/{operation_id}")["resourceLocation"].rsplit("/", 1)[-1]
    return {"models": model["id"], "manifests": manifest["id"], "images": image_id, "operations": operation_id}


def test_nothing_of_account_a_is_reachable_through_b(api: Api, other_account: tuple[Scope, str]) -> None:
    scope_b, token_b = other_account
    objects_a = populate(api)
    as_b = api.as_account(scope_b, token_b)
    admin_on_b = api.as_account(scope_b)

    for kind, object_id in objects_a.items():
        assert api.get(f"/{kind}/{object_id}").status_code == 200
        for client in (as_b, admin_on_b):
            response = client.get(f"/{kind}/{object_id}")
            assert response.status_code == 404, (kind, response.get_json())
            check_error(response)
    for kind in ("models", "manifests", "images"):
        assert admin_on_b.ok("GET", f"/{kind}")["value"] == []
    assert admin_on_b.ok("GET", "/manifests", params={"modelId": objects_a["models"]})["value"] == []
    assert admin_on_b.ok("GET", "/images", params={"manifestId": objects_a["manifests"]})["value"] == []


def test_b_cannot_build_from_a_manifest_of_a(api: Api, other_account: tuple[Scope, str]) -> None:
    scope_b, token_b = other_account
    objects_a = populate(api)
    as_b = api.as_account(scope_b, token_b)

    manifest = as_b.post("/manifests", manifest_body([objects_a["models"]]))
    image = as_b.post("/images", image_body(objects_a["manifests"]))

    assert (manifest.status_code, image.status_code) == (400, 400)
    assert objects_a["models"] in check_error(manifest)["message"]
    assert objects_a["manifests"] in check_error(image)["message"]


def test_an_account_token_does_not_reach_another_account(api: Api, account_token: str,
                                                          other_account: tuple[Scope, str]) -> None:
    scope_b, token_b = other_account
    as_b = api.as_account(scope_b, token_b)
    model_b = as_b.register_model()

    for client, route in ((Api(api.client, account_token, scope_b), f"/models/{model_b['id']}"),
                          (Api(api.client, account_token, scope_b), "/models"),
                          (Api(api.client, token_b, DEFAULT_SCOPE), "/models")):
        response = client.get(route)
        assert response.status_code == 404
        check_error(response)
    response = Api(api.client, account_token, scope_b).post("/models", {"name": "x", "url": "https://x/y",
                                                                        "mimeType": "a"})
    assert response.status_code == 404
    assert as_b.ok("GET", "/models")["value"] == [model_b]


def test_an_unknown_account_answers_as_a_forbidden_one(api: Api, store: Store, account_token: str) -> None:
    scope = ("sub-c", "rg-c", "acct-c")
    user = Api(api.client, account_token, scope)
    unknown = user.get("/models")

    store.accounts.create(*scope)
    forbidden = user.get("/models")

    assert unknown.status_code == forbidden.status_code == 404
    assert unknown.get_json() == forbidden.get_json()
    assert dict(unknown.headers).keys() == dict(forbidden.headers).keys()
    assert api.as_account(scope).get("/models").status_code == 200


@pytest.mark.parametrize("scope", [("default", "default", "nope"), ("nope", "default", "default"),
                                   ("default", "nope", "default")])
def test_unknown_account_is_404_for_admins_too(api: Api, scope: Scope) -> None:
    response = api.as_account(scope).get("/models")

    assert response.status_code == 404
    assert check_error(response)["code"] == "NotFound"


def test_the_admin_token_reaches_every_account(api: Api, other_account: tuple[Scope, str]) -> None:
    scope_b, _ = other_account
    admin_on_b = api.as_account(scope_b)

    model = admin_on_b.register_model()

    assert admin_on_b.ok("GET", f"/models/{model['id']}") == model
    assert api.ok("GET", "/models")["value"] == []
