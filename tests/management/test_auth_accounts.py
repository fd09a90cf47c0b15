"""Bearer tokens and accounts: who may reach what. An account token reaches its own
account only, and nothing of one account is visible or reachable through another's
path; an unknown account and a forbidden one answer alike."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
from flask import Flask

from management.store import Store
from management.store.errors import AlreadyExists

from .helpers import DEFAULT_SCOPE, Api, account_path, check_error, image_body, manifest_body, run_in_threads

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


def test_tokens_are_stored_hashed(store: Store) -> None:
    secret, _ = store.tokens.create("hashed", None)

    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT token_hash FROM tokens").scalars().all()
    assert secret not in rows and all(secret not in row for row in rows)


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


@pytest.mark.parametrize(("method", "url"), [("GET", "/api/admin/accounts"), ("POST", "/api/admin/accounts"),
                                             ("GET", "/api/admin/tokens"), ("POST", "/api/admin/tokens"),
                                             ("DELETE", "/api/admin/tokens/abc")])
def test_admin_routes_refuse_account_tokens(api: Api, account_token: str, method: str, url: str) -> None:
    response = api.open(method, url, token=account_token, json={"name": "x", "accountName": "evil"})

    assert response.status_code == 403
    assert check_error(response)["code"] == "Forbidden"


def test_admins_create_accounts_and_their_tokens(api: Api, store: Store) -> None:
    scope = {"subscriptionId": "sub-n", "resourceGroupName": "rg-n", "accountName": "acct-n"}

    account = api.open("POST", "/api/admin/accounts", json=scope)
    assert account.status_code == 200
    assert account.get_json()["path"] == account_path(("sub-n", "rg-n", "acct-n"))
    assert api.open("POST", "/api/admin/accounts", json=scope).status_code == 409
    listed = api.open("GET", "/api/admin/accounts").get_json()["value"]
    assert {item["accountName"] for item in listed} == {"default", "acct-n"}

    created = api.open("POST", "/api/admin/tokens", json={"name": "n-user", **scope})
    assert created.status_code == 200
    secret = created.get_json()["token"]
    as_n = api.as_account(("sub-n", "rg-n", "acct-n"), secret)
    assert as_n.get("/models").status_code == 200
    assert Api(api.client, secret).get("/models").status_code == 404

    revoked = api.open("DELETE", f"/api/admin/tokens/{created.get_json()['id']}")
    assert revoked.status_code == 200
    assert as_n.get("/models").status_code == 401
    assert api.open("DELETE", f"/api/admin/tokens/{created.get_json()['id']}").status_code == 404


@pytest.mark.parametrize("body", [{"accountName": "Bad_Name"}, {"accountName": "a" * 33},
                                  {"subscriptionId": "../x", "accountName": "ok"}, [1]])
def test_bad_account_scopes_are_400(api: Api, body: Any) -> None:
    response = api.open("POST", "/api/admin/accounts", json=body)

    assert response.status_code == 400
    check_error(response)


SCOPE = {"subscriptionId": "default", "resourceGroupName": "default", "accountName": "default"}


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "ci"}, "accountName is required"),
    ({"name": "ci", "accountName": ""}, "accountName"),
    ({"name": "ci", "accountName": None}, "accountName"),
    ({"name": "ci", "subscriptionId": "default", "resourceGroupName": "default"}, "accountName is required"),
    ({"name": "ci", "acountName": "default"}, "acountName"),
    ({"name": "ci", "accountname": "default"}, "accountname"),
    ({"name": "ci", "admin": False}, "accountName is required"),
    ({"name": "ci", "admin": "true"}, "admin"),
    ({"name": "ci", "admin": 1}, "admin"),
    ({"name": "ci", "admin": True, **SCOPE}, "admin token belongs to no account"),
    ({"name": "ci", "admin": True, "accountName": "default"}, "admin token belongs to no account"),
    ({"name": "ci", **SCOPE, "extra": 1}, "extra"),
    ({"admin": True}, "name"),
])
def test_token_requests_that_are_not_explicit_are_400(api: Api, store: Store, body: dict[str, Any],
                                                       message: str) -> None:
    """An admin token only when asked for with ``"admin": true``: a missing, empty, null or
    misspelled accountName is an error, not a request for an admin token."""
    before = store.tokens.list()

    response = api.open("POST", "/api/admin/tokens", json=body)

    assert response.status_code == 400, response.get_data(as_text=True)
    error = check_error(response)
    assert message in error["message"] + " ".join(detail["message"] for detail in error.get("details", [])), error
    assert store.tokens.list() == before


def test_an_admin_token_when_asked_for_explicitly(api: Api) -> None:
    created = api.open("POST", "/api/admin/tokens", json={"name": "boss", "admin": True})

    assert created.status_code == 200
    assert created.get_json()["admin"] is True
    assert api.as_account(("sub-z", "rg-z", "acct-z"), created.get_json()["token"]).get("/models").status_code == 404
    assert Api(api.client, created.get_json()["token"]).open("GET", "/api/admin/tokens").status_code == 200


@pytest.mark.parametrize("body", [{"name": "ci", **SCOPE}, {"name": "ci", "admin": False, **SCOPE},
                                  {"name": "ci", "accountName": "default"}])
def test_an_account_token_for_a_named_account(api: Api, body: dict[str, Any]) -> None:
    created = api.open("POST", "/api/admin/tokens", json=body)

    assert created.status_code == 200, created.get_data(as_text=True)
    assert created.get_json()["admin"] is False
    user = Api(api.client, created.get_json()["token"])
    assert user.get("/models").status_code == 200
    assert user.open("GET", "/api/admin/tokens").status_code == 403


@pytest.mark.parametrize("body", [{**SCOPE, "accountName": "acct-x", "name": "x"},
                                  {**SCOPE, "accountName": "acct-x", "admin": True},
                                  {"subscriptionId": "s", "resourceGroupName": "r"}])
def test_account_requests_with_unknown_or_missing_fields_are_400(api: Api, store: Store, body: dict[str, Any]) -> None:
    response = api.open("POST", "/api/admin/accounts", json=body)

    assert response.status_code == 400
    check_error(response)
    assert [account.name for account in store.accounts.list()] == ["default"]


def test_an_account_name_taken_in_another_scope_is_409(api: Api, store: Store) -> None:
    """Account names are unique in an installation (they name image repositories and
    containers), whatever the subscription and resource group."""
    first = {"subscriptionId": "sub-a", "resourceGroupName": "rg-a", "accountName": "shared"}
    assert api.open("POST", "/api/admin/accounts", json=first).status_code == 200

    response = api.open("POST", "/api/admin/accounts", json={**first, "subscriptionId": "sub-b"})

    assert response.status_code == 409
    error = check_error(response)
    assert error["code"] == "Conflict"
    assert "account name shared is taken by sub-a/rg-a/shared" in error["message"]
    assert "unique" in error["message"]
    assert sorted((a.subscription_id, a.name) for a in store.accounts.list()) == [("default", "default"),
                                                                                   ("sub-a", "shared")]


def test_concurrent_accounts_of_one_name_make_one_and_409s(store: Store) -> None:
    """Whichever request wins, the others get AlreadyExists (the API's 409), never the
    database's IntegrityError."""
    outcomes = run_in_threads(8, lambda: [_create_or_conflict(store, f"sub-{threading.get_ident()}")])

    assert sorted(outcomes) == ["AlreadyExists"] * 7 + ["created"]
    assert [a.name for a in store.accounts.list()].count("race") == 1


def _create_or_conflict(store: Store, subscription: str) -> str:
    try:
        store.accounts.create(subscription, "rg", "race")
    except AlreadyExists:
        return "AlreadyExists"
    return "created"
