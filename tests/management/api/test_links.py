"""Links the API hands out (``nextLink``, ``Operation-Location``, ``imageBuildLogUri``,
the Swagger document's ``host``) come from ``MOMA_PUBLIC_URL`` or are host-relative,
never from the request's ``Host`` (or ``X-Forwarded-*``) header: a client that follows
them must not be sent, with its token, to a server someone else named."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from flask import Flask

from management.config import Settings

from ..helpers import Api

EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
        "Forwarded": "host=evil.example;proto=https"}


def links(api: Api) -> dict[str, Any]:
    """Every link of a list page, an image, an image build's answer and the Swagger document,
    asked for with the hostile headers."""
    for name in ("a", "b"):
        api.register_model(name=name)
    model = api.register_model(name="c")
    manifest = api.register_manifest([model["id"]])
    accepted = api.post("/images", {"name": "img", "manifestId": manifest["id"], "imageType": "Docker",
                                    "computeResourceId": "local"}, headers=EVIL)
    assert accepted.status_code == 202
    page = api.ok("GET", "/models", params={"count": "1"}, headers=EVIL)
    image = api.ok("GET", "/images", headers=EVIL)["value"][0]
    document = api.open("GET", "/swagger.json", headers=EVIL).get_json()
    return {"nextLink": page["nextLink"], "Operation-Location": accepted.headers["Operation-Location"],
            "imageBuildLogUri": image["imageBuildLogUri"], "image": api.ok("GET", f"/images/{image['id']}",
                                                                           headers=EVIL)["imageBuildLogUri"],
            "swagger": {key: document.get(key) for key in ("host", "schemes", "basePath")}}


def test_without_a_public_url_links_are_host_relative(api: Api) -> None:
    found = links(api)

    assert "evil" not in repr(found)
    assert found["nextLink"].startswith(f"{api.base}/models?")
    assert found["Operation-Location"].startswith(f"{api.base}/operations/")
    assert found["imageBuildLogUri"] == found["image"]
    assert found["imageBuildLogUri"].startswith(f"{api.base}/images/")
    assert found["swagger"] == {"host": None, "schemes": ["http"], "basePath": "/"}
    assert api.open("GET", found["nextLink"]).status_code == 200


def test_with_a_public_url_links_are_absolute_on_it(make_app: Callable[..., Flask], admin_token: str) -> None:
    api = Api(make_app(public_url="https://moma.example:8443/").test_client(), admin_token)

    found = links(api)

    assert "evil" not in repr(found)
    assert found["nextLink"].startswith(f"https://moma.example:8443{api.base}/models?")
    assert found["Operation-Location"].startswith(f"{api.base}/operations/"), "host-relative, as the original"
    assert found["imageBuildLogUri"].startswith(f"https://moma.example:8443{api.base}/images/")
    assert found["swagger"] == {"host": "moma.example:8443", "schemes": ["https"], "basePath": "/"}


def test_a_public_url_with_a_path_prefix(make_app: Callable[..., Flask], admin_token: str) -> None:
    """Behind a proxy that serves moma under a prefix."""
    api = Api(make_app(public_url="https://proxy.example/moma").test_client(), admin_token)

    found = links(api)

    assert found["nextLink"].startswith(f"https://proxy.example/moma{api.base}/models?")
    assert found["swagger"] == {"host": "proxy.example", "schemes": ["https"], "basePath": "/moma"}


@pytest.mark.parametrize("url", ["ftp://moma.example", "moma.example:8081", "http://", "http://moma.example/?x=1",
                                 "http://moma.example/#top", "http://user@moma.example", "http://moma.example\n",
                                 "http://moma.example:99999"])
def test_a_bad_public_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError, match="MOMA_PUBLIC_URL"):
        Settings.load({"MOMA_PUBLIC_URL": url})
