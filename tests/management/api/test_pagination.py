"""Pagination: ``count`` and ``$skipToken`` in, an absolute ``nextLink`` out that
clients follow verbatim; every item exactly once and in order, also while others
insert."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from typing import Any, Callable

import pytest
from flask import Flask

from management.store import Store

from ..helpers import DEFAULT_SCOPE, V2017, V2018, Api, check_error, model_body


def register(store: Store, count: int, **changes: Any) -> list[str]:
    """Model ids, registered straight into the store (the API is not under test here)."""
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    return [store.models.register(account.id, model_body(**changes))["id"] for _ in range(count)]


def follow(api: Api, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return list(api.pages(path, params))


def test_default_page_is_100(api: Api, store: Store) -> None:
    ids = register(store, 101)

    pages = follow(api, "/models", {})

    assert [len(page["value"]) for page in pages] == [100, 1]
    assert [model["id"] for page in pages for model in page["value"]] == ids


def test_count_up_to_1000(api: Api, store: Store) -> None:
    register(store, 3)

    assert len(api.ok("GET", "/models", params={"count": "1000"})["value"]) == 3
    assert len(api.ok("GET", "/models", params={"count": "1"})["value"]) == 1


@pytest.mark.parametrize("count", ["1001", "0", "abc", "-1", "1.5", "²", "1e3", " 5"])
@pytest.mark.parametrize("route", ["/models", "/manifests", "/images"])
def test_bad_count_is_400(api: Api, route: str, count: str) -> None:
    response = api.get(route, params={"count": count})

    assert response.status_code == 400
    assert "count" in check_error(response)["message"]


def _token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", ["not-a-token", "%%%", "AAAA", _token([1]), _token({"before": 1}),
                                   _token({"after": -1}), _token({"after": "1"}), _token({"after": 1.5}),
                                   _token({"after": 2**31}), _token({"after": 10**30}), _token({"after": True})])
@pytest.mark.parametrize("route", ["/models", "/manifests", "/images"])
def test_bad_skip_token_is_400(api: Api, store: Store, route: str, token: str) -> None:
    register(store, 2)

    response = api.get(route, params={"$skipToken": token})

    assert response.status_code == 400
    assert "$skipToken" in check_error(response)["message"]


@pytest.mark.parametrize("version", [V2017, V2018])
def test_next_link_is_absolute_and_carries_everything(make_app: Callable[..., Flask], admin_token: str, store: Store,
                                                      version: str) -> None:
    """Absolute on MOMA_PUBLIC_URL: 2017 clients GET it verbatim."""
    api = Api(make_app(public_url="http://moma.example:8081").test_client(), admin_token)
    register(store, 3, name="a", tags=["t"])

    page = api.ok("GET", "/models", params={"name": "a", "tag": "t", "count": "2"}, version=version)

    link = urllib.parse.urlsplit(page["nextLink"])
    assert (link.scheme, link.netloc, link.path) == ("http", "moma.example:8081", f"{api.base}/models")
    query = urllib.parse.parse_qs(link.query)
    assert {key: values for key, values in query.items() if key != "$skipToken"} == {
        "api-version": [version], "name": ["a"], "tag": ["t"], "count": ["2"]}
    assert len(query["$skipToken"]) == 1
    last = api.open("GET", page["nextLink"]).get_json()
    assert len(last["value"]) == 1 and "nextLink" not in last


def test_no_next_link_when_the_last_page_is_full(api: Api, store: Store) -> None:
    register(store, 4)

    pages = follow(api, "/models", {"count": "2"})

    assert [len(page["value"]) for page in pages] == [2, 2]
    assert "nextLink" not in pages[-1]


def test_models_by_name_page_by_page(api: Api, store: Store) -> None:
    wanted = []
    for _ in range(6):
        wanted += register(store, 2, name="a")
        register(store, 1, name="b")

    pages = follow(api, "/models", {"name": "a", "count": "5"})

    assert [len(page["value"]) for page in pages] == [5, 5, 2]
    assert [model["id"] for page in pages for model in page["value"]] == wanted
    assert [model["version"] for page in pages for model in page["value"]] == list(range(1, 13))


def test_models_by_tag_page_by_page(api: Api, store: Store) -> None:
    wanted = []
    for _ in range(5):
        wanted += register(store, 2, tags=["x", "prod"])
        register(store, 2, tags=["x"])

    pages = follow(api, "/models", {"tag": "prod", "count": "3"})

    assert [model["id"] for page in pages for model in page["value"]] == wanted
    assert len(pages) == 4


def test_manifests_by_model_page_by_page(api: Api) -> None:
    model, other = api.register_model(name="m"), api.register_model(name="o")
    wanted = []
    for i in range(7):
        wanted.append(api.register_manifest([model["id"]], name=f"app{i}")["id"])
        api.register_manifest([other["id"]], name=f"app{i}")

    pages = follow(api, "/manifests", {"modelId": model["id"], "count": "3"})

    assert [manifest["id"] for page in pages for manifest in page["value"]] == wanted
    assert [len(page["value"]) for page in pages] == [3, 3, 1]


def test_images_by_manifest_name_page_by_page(api: Api) -> None:
    model = api.register_model()
    app, other = api.register_manifest([model["id"]], name="app"), api.register_manifest([model["id"]], name="other")
    wanted = []
    for i in range(5):
        operation_id = api.create_image(app["id"], name=f"img{i}")
        wanted.append(api.ok("GET", f"/operations/{operation_id}")["resourceLocation"].rsplit("/", 1)[-1])
        api.create_image(other["id"], name=f"img{i}")

    pages = follow(api, "/images", {"manifestName": "app", "count": "2"})

    assert [image["id"] for page in pages for image in page["value"]] == wanted
    assert all(image["manifest"]["id"] == app["id"] for page in pages for image in page["value"])


def test_stable_while_items_are_inserted_between_pages(api: Api, store: Store) -> None:
    existing = register(store, 30, name="a")
    seen: list[str] = []

    for page in api.pages("/models", {"name": "a", "count": "7"}):
        seen += [model["id"] for model in page["value"]]
        register(store, 3, name="a")
        register(store, 1, name="b")

    assert seen[:30] == existing
    assert len(seen) == len(set(seen))


def test_stable_under_concurrent_inserts(api: Api, store: Store) -> None:
    existing = register(store, 60)
    stop = threading.Event()
    inserted: list[str] = []

    def insert() -> None:
        while not stop.is_set() and len(inserted) < 500:
            inserted.extend(register(store, 1))

    writer = threading.Thread(target=insert)
    writer.start()
    try:
        seen = [model["id"] for page in api.pages("/models", {"count": "4"}) for model in page["value"]]
    finally:
        stop.set()
        writer.join()

    assert seen[:60] == existing
    assert len(seen) == len(set(seen))
    assert set(seen[60:]) <= set(inserted)
