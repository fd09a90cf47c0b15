"""Manifests: register (the CLI's exact payload: the driver is an asset id), get, list
and its filters; models must be registered in the same account; URL rules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ..helpers import GUID, HTTPS, V2018, Api, check_error, manifest_body


@pytest.fixture
def model(api: Api) -> dict[str, Any]:
    return api.register_model()


def test_register_the_cli_payload(api: Api, model: dict[str, Any]) -> None:
    body = manifest_body([model["id"]])

    response = api.post("/manifests", body)

    assert response.status_code == 200
    manifest = response.get_json()
    assert GUID.match(manifest["id"])
    assert manifest["version"] == 1
    assert manifest["createdTime"].endswith("Z")
    assert {key: manifest[key] for key in body} == body


def test_same_name_makes_a_new_version(api: Api, model: dict[str, Any]) -> None:
    first = api.register_manifest([model["id"]])
    second = api.register_manifest([model["id"]])

    assert (first["version"], second["version"]) == (1, 2)
    assert first["id"] != second["id"]


def test_get_returns_the_registered_manifest(api: Api, model: dict[str, Any]) -> None:
    manifest = api.register_manifest([model["id"]])

    assert api.ok("GET", f"/manifests/{manifest['id']}") == manifest
    assert api.ok("GET", f"/manifests/{manifest['id']}", version=V2018) == manifest


def test_unknown_manifest_is_404(api: Api) -> None:
    manifest_id = str(uuid.uuid4())

    response = api.get(f"/manifests/{manifest_id}")

    assert response.status_code == 404
    assert manifest_id in check_error(response)["message"]


def test_list_by_model_id_and_by_name(api: Api) -> None:
    iris, wine = api.register_model(name="iris"), api.register_model(name="wine")
    a = api.register_manifest([iris["id"]], name="a")
    b = api.register_manifest([wine["id"]], name="b")
    both = api.register_manifest([iris["id"], wine["id"]], name="a")

    assert api.ok("GET", "/manifests")["value"] == [a, b, both]
    assert api.ok("GET", "/manifests", params={"modelId": iris["id"]})["value"] == [a, both]
    assert api.ok("GET", "/manifests", params={"modelId": wine["id"]})["value"] == [b, both]
    assert api.ok("GET", "/manifests", params={"manifestName": "a"})["value"] == [a, both]
    assert api.ok("GET", "/manifests", params={"manifestName": "b", "modelId": iris["id"]})["value"] == []
    assert api.ok("GET", "/manifests", params={"modelId": "0" * 32})["value"] == []


def test_read_only_fields_are_ignored(api: Api, model: dict[str, Any]) -> None:
    body = manifest_body([model["id"]], id="not-mine", version=7, createdTime="2001-01-01T00:00:00Z")

    manifest = api.ok("POST", "/manifests", body)

    assert manifest["id"] != "not-mine" and GUID.match(manifest["id"])
    assert manifest["version"] == 1
    assert not manifest["createdTime"].startswith("2001")


def test_an_unregistered_model_is_named(api: Api, model: dict[str, Any]) -> None:
    missing = "0123456789abcdef0123456789abcdef"

    response = api.post("/manifests", manifest_body([model["id"], missing]))

    assert response.status_code == 400
    error = check_error(response)
    assert missing in error["message"]
    assert [detail["message"] for detail in error["details"]] == [f"modelIds: {missing} is not a registered model"]
    assert api.ok("GET", "/manifests")["value"] == []


def test_a_model_of_another_account_is_not_registered_here(api: Api, other_account) -> None:
    scope, token = other_account
    foreign = api.as_account(scope, token).register_model()

    response = api.post("/manifests", manifest_body([foreign["id"]]))

    assert response.status_code == 400
    assert foreign["id"] in check_error(response)["message"]


def test_driver_program_must_be_an_asset_id(api: Api, model: dict[str, Any]) -> None:
    response = api.post("/manifests", manifest_body([model["id"]], driverProgram="score.py"))

    assert response.status_code == 400
    error = check_error(response)
    assert error["details"][0]["message"].startswith("driverProgram: ")
    assert "driver, 0c8c9995" in error["details"][0]["message"]


def test_asset_ids_must_be_unique(api: Api, model: dict[str, Any]) -> None:
    body = manifest_body([model["id"]])
    body["assets"][1]["id"] = "driver"

    response = api.post("/manifests", body)

    assert response.status_code == 400
    assert "driver" in check_error(response)["message"]


def test_validation_names_every_failing_field(api: Api) -> None:
    body = {"name": "-bad-", "driverProgram": "", "modelType": "Unregistered", "modelIds": ["NOT-HEX"],
            "webserviceType": "Batch", "targetRuntime": {"runtimeType": "R", "properties": {"pythonVersion": "3"}},
            "assets": [{"url": HTTPS}]}

    response = api.post("/manifests", body)

    assert response.status_code == 400
    fields = {detail["message"].split(":")[0] for detail in check_error(response)["details"]}
    assert fields == {"name", "driverProgram", "modelType", "modelIds[0]", "webserviceType",
                      "targetRuntime.runtimeType", "targetRuntime.properties.pythonVersion", "assets[0].id"}


def test_missing_required_fields_are_each_named(api: Api) -> None:
    response = api.post("/manifests", {"description": "nothing else"})

    assert response.status_code == 400
    fields = {detail["message"].split(":")[0] for detail in check_error(response)["details"]}
    assert fields == {"assets", "driverProgram", "name", "targetRuntime"}


@pytest.mark.parametrize("where", ["asset", "pipRequirements", "condaEnvFile"])
def test_ftp_urls_are_refused_wherever_they_appear(api: Api, model: dict[str, Any], where: str) -> None:
    body = manifest_body([model["id"]])
    if where == "asset":
        body["assets"][1]["url"] = "ftp://example.com/deps.tar.gz"
        field = "assets[1].url"
    else:
        body["targetRuntime"]["properties"][where] = "ftp://example.com/file"
        field = f"targetRuntime.properties.{where}"

    response = api.post("/manifests", body)

    assert response.status_code == 400
    assert check_error(response)["details"][0]["message"].startswith(f"{field}: ")


def test_file_urls_outside_the_roots_are_refused(api: Api, model: dict[str, Any], tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOMA_FILE_ROOTS", str(tmp_path / "project"))
    inside = manifest_body([model["id"]])
    inside["assets"][0]["url"] = (tmp_path / "project" / "score.py").as_uri()
    outside = manifest_body([model["id"]])
    outside["assets"][0]["url"] = "file:///etc/passwd"

    assert api.post("/manifests", inside).status_code == 200
    response = api.post("/manifests", outside)
    assert response.status_code == 400
    assert check_error(response)["details"][0]["message"].startswith("assets[0].url: ")


def test_properties_may_be_omitted_or_partial(api: Api, model: dict[str, Any]) -> None:
    body = manifest_body([model["id"]])
    body["targetRuntime"]["properties"] = {"pipRequirements": f"{HTTPS}/requirements.txt"}
    assert api.post("/manifests", body).status_code == 200
    body["targetRuntime"]["properties"] = {}
    assert api.post("/manifests", body).status_code == 200


def test_unknown_fields_are_not_stored(api: Api, model: dict[str, Any]) -> None:
    body = manifest_body([model["id"]], surprise={"x": 1})
    body["assets"][0]["extra"] = "y" * 1000

    manifest = api.ok("POST", "/manifests", body)

    assert "surprise" not in manifest and "extra" not in manifest["assets"][0]
    assert api.ok("GET", f"/manifests/{manifest['id']}") == manifest
