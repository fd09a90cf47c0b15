"""Models: register (the CLI's exact payload), versions per name, get, list and its
filters, read-only fields ignored, URL rules."""

from __future__ import annotations

import datetime as dt

import pytest

from ..helpers import HEX32, HTTPS, V2017, V2018, Api, check_error, model_body


def test_register_the_cli_payload(api: Api) -> None:
    body = model_body()
    response = api.post("/models", body)

    assert response.status_code == 200
    model = response.get_json()
    assert HEX32.match(model["id"])
    assert model["version"] == 1
    assert {key: model[key] for key in body} == body
    created = dt.datetime.fromisoformat(model["createdAt"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.timezone.utc) - created) < dt.timedelta(minutes=1)


def test_same_name_makes_a_new_version_and_id(api: Api) -> None:
    first = api.register_model(name="m")
    second = api.register_model(name="m")
    other = api.register_model(name="n")

    assert (first["version"], second["version"], other["version"]) == (1, 2, 1)
    assert len({first["id"], second["id"], other["id"]}) == 3


@pytest.mark.parametrize("version", [V2017, V2018])
def test_get_returns_the_registered_model(api: Api, version: str) -> None:
    model = api.register_model(tags=["prod", "iris"])

    assert api.ok("GET", f"/models/{model['id']}", version=version) == model


def test_unknown_model_is_404(api: Api) -> None:
    response = api.get("/models/0123456789abcdef0123456789abcdef")

    assert response.status_code == 404
    assert "0123456789abcdef0123456789abcdef" in check_error(response)["message"]


def test_list_without_filters_returns_all_in_registration_order(api: Api) -> None:
    ids = [api.register_model(name=name)["id"] for name in ("a", "b", "a")]

    page = api.ok("GET", "/models")

    assert [model["id"] for model in page["value"]] == ids
    assert "nextLink" not in page


def test_list_by_name(api: Api) -> None:
    a1, _, a2 = (api.register_model(name=name) for name in ("a", "b", "a"))

    page = api.ok("GET", "/models", params={"name": "a"})

    assert page["value"] == [a1, a2]
    assert api.ok("GET", "/models", params={"name": "zzz"})["value"] == []


def test_list_by_tag(api: Api) -> None:
    tagged = api.register_model(name="a", tags=["prod", "iris"])
    api.register_model(name="b", tags=["dev"])
    both = api.register_model(name="c", tags=["iris"])

    assert api.ok("GET", "/models", params={"tag": "iris"})["value"] == [tagged, both]
    assert api.ok("GET", "/models", params={"tag": "dev", "name": "a"})["value"] == []
    assert [m["name"] for m in api.ok("GET", "/models", params={"tag": "dev", "name": "b"})["value"]] == ["b"]


def test_read_only_fields_in_the_body_are_ignored(api: Api) -> None:
    body = model_body(id="ffffffffffffffffffffffffffffffff", version=42, createdAt="1999-01-01T00:00:00Z")

    model = api.ok("POST", "/models", body)

    assert model["id"] != body["id"]
    assert model["version"] == 1
    assert not model["createdAt"].startswith("1999")


def test_validation_names_every_failing_field(api: Api) -> None:
    body = {"name": "bad name!", "tags": ["x" * 30], "description": "d" * 201, "mimeType": 7, "unpack": "yes"}

    response = api.post("/models", body)

    assert response.status_code == 400
    error = check_error(response)
    assert error["code"] == "ValidationError"
    fields = sorted(detail["message"].split(":")[0] for detail in error["details"])
    assert fields == ["description", "mimeType", "name", "tags[0]", "unpack", "url"]


@pytest.mark.parametrize("url", ["ftp://example.com/model.pkl", "gopher://x/y", "model.pkl", "https:///no-host",
                                 "file:///etc/passwd"])
def test_urls_that_are_refused(api: Api, url: str) -> None:
    response = api.post("/models", model_body(url=url))

    assert response.status_code == 400
    assert check_error(response)["details"][0]["message"].startswith("url: ")


def test_https_and_http_urls_are_accepted_without_fetching(api: Api) -> None:
    for url in (f"{HTTPS}/never-fetched.pkl?sig=x", "http://10.255.255.1/model.pkl"):
        assert api.ok("POST", "/models", model_body(url=url))["url"] == url


def test_file_urls_only_under_the_configured_roots(api: Api, tmp_path, monkeypatch) -> None:
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("MOMA_FILE_ROOTS", str(root))

    inside = api.post("/models", model_body(url=(root / "model.pkl").as_uri()))
    escaping = api.post("/models", model_body(url=f"{root.as_uri()}/../outside.pkl"))
    outside = api.post("/models", model_body(url=(tmp_path / "outside.pkl").as_uri()))
    other_host = api.post("/models", model_body(url=f"file://otherhost{root}/model.pkl"))

    assert inside.status_code == 200
    assert [r.status_code for r in (escaping, outside, other_host)] == [400, 400, 400]
    assert "allowed root" in check_error(outside)["message"]


def test_list_by_content_digest_finds_uploads_of_those_bytes(api: Api) -> None:
    """What the one-shot CLI asks before uploading a model again: a model of this name
    whose artifact has this sha256 (any file name; the CLI compares names itself)."""
    def upload(content: bytes, name: str) -> dict:
        return api.ok("POST", "/artifacts", params={"name": name}, data=content,
                      content_type="application/octet-stream")

    first, other = upload(b"weights", "model.pkl"), upload(b"other weights", "model.pkl")
    same = api.register_model(name="m", url=first["url"], unpack=False)
    renamed = api.register_model(name="m", url=upload(b"weights", "other.pkl")["url"], unpack=False)
    api.register_model(name="m", url=other["url"], unpack=False)
    api.register_model(name="n", url=first["url"], unpack=False)
    api.register_model(name="m", url=f"{HTTPS}/{first['sha256']}/model.pkl")

    assert api.ok("GET", "/models", params={"name": "m", "sha256": first["sha256"]})["value"] == [same, renamed]
    assert api.ok("GET", "/models", params={"sha256": first["sha256"]})["value"][-1]["name"] == "n"
    assert api.ok("GET", "/models", params={"name": "m", "sha256": "ef" * 32})["value"] == []


@pytest.mark.parametrize("digest", ["AB" * 32, "ab" * 31, "ab" * 32 + "\n", "ab" * 31 + "%%", "x"])
def test_list_by_a_malformed_digest_is_400(api: Api, digest: str) -> None:
    response = api.get("/models", params={"sha256": digest})

    assert response.status_code == 400
    assert "sha256" in check_error(response)["message"]
