"""Administration (``/api/admin/``, admin tokens only): accounts and their tokens, what a
request must say explicitly, and account names unique in an installation."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from management.store import Store
from management.store.errors import AlreadyExists

from ..helpers import Api, account_path, check_error, run_in_threads

Scope = tuple[str, str, str]


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
