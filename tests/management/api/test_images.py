"""Images: create (202, no body, Operation-Location, an operation that is not started),
get, list and its filters, refusals, and the build log once the worker wrote it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from management.config import Settings
from management.store import Store

from ..helpers import GUID, V2018, Api, check_error, image_body, image_of


def test_create_answers_202_with_only_an_operation_location(api: Api, manifest: dict[str, Any]) -> None:
    response = api.post("/images", image_body(manifest["id"]))

    assert response.status_code == 202
    assert response.get_data() == b""
    location = response.headers["Operation-Location"]
    assert location.startswith(f"{api.base}/operations/")
    assert "?" not in location and "://" not in location
    assert GUID.match(location.rsplit("/", 1)[-1])


def test_the_new_operation_is_not_started_and_points_at_the_image(api: Api, manifest: dict[str, Any]) -> None:
    operation_id = api.create_image(manifest["id"])

    operation = api.ok("GET", f"/operations/{operation_id}")

    assert operation["id"] == operation_id
    assert operation["operationType"] == "Image"
    assert operation["state"] == "NotStarted"
    assert operation["createdTime"].endswith("Z")
    assert "endTime" not in operation and "error" not in operation
    assert operation["resourceLocation"].startswith(f"{api.base}/images/")
    image_id = operation["resourceLocation"].rsplit("/", 1)[-1]
    image = api.ok("GET", f"/images/{image_id}")
    assert image["id"] == image_id and GUID.match(image_id)


def test_the_new_image(api: Api, manifest: dict[str, Any]) -> None:
    body = image_body(manifest["id"])

    image = image_of(api, api.create_image(manifest["id"]))

    assert {key: image[key] for key in ("name", "description", "imageType", "computeResourceId")} == {
        key: body[key] for key in ("name", "description", "imageType", "computeResourceId")}
    assert image["version"] == 1
    assert image["creationState"] == "NotStarted"
    assert image["manifest"] == manifest
    assert image["imageBuildLogUri"] == f"{api.base}/images/{image['id']}/buildLog?api-version=2017-09-01-preview"
    assert "imageLocation" not in image and "error" not in image


def test_same_name_makes_a_new_image_version(api: Api, manifest: dict[str, Any]) -> None:
    first = image_of(api, api.create_image(manifest["id"], name="img"))
    second = image_of(api, api.create_image(manifest["id"], name="img"))

    assert (first["version"], second["version"]) == (1, 2)


def test_list_by_manifest_id_and_name(api: Api) -> None:
    model = api.register_model()
    a1, b, a2 = (api.register_manifest([model["id"]], name=name) for name in ("a", "b", "a"))
    images = [image_of(api, api.create_image(manifest["id"])) for manifest in (a1, b, a2)]

    assert api.ok("GET", "/images")["value"] == images
    assert api.ok("GET", "/images", params={"manifestId": b["id"]})["value"] == [images[1]]
    assert api.ok("GET", "/images", params={"manifestName": "a"})["value"] == [images[0], images[2]]
    assert api.ok("GET", "/images", params={"manifestName": "a", "manifestId": b["id"]})["value"] == []
    assert api.ok("GET", "/images", params={"manifestId": str(uuid.uuid4())})["value"] == []


@pytest.mark.parametrize("kind", ["images", "operations"])
def test_unknown_ids_are_404(api: Api, kind: str) -> None:
    response = api.get(f"/{kind}/{uuid.uuid4()}", version=V2018)

    assert response.status_code == 404
    check_error(response)


def test_unknown_manifest_is_400(api: Api) -> None:
    manifest_id = str(uuid.uuid4())

    response = api.post("/images", image_body(manifest_id))

    assert response.status_code == 400
    assert manifest_id in check_error(response)["message"]
    assert api.ok("GET", "/images")["value"] == []


def test_spark_python_images_are_accepted(api: Api) -> None:
    model = api.register_model()
    spark = api.register_manifest([model["id"]], targetRuntime={"runtimeType": "SparkPython", "properties": {}})

    response = api.post("/images", image_body(spark["id"]))

    assert response.status_code == 202
    assert api.ok("GET", "/images")["value"][0]["manifest"]["targetRuntime"]["runtimeType"] == "SparkPython"


def test_validation_names_every_failing_field(api: Api) -> None:
    response = api.post("/images", {"name": "x_y", "imageType": "Kubernetes", "description": 5})

    assert response.status_code == 400
    fields = {detail["message"].split(":")[0] for detail in check_error(response)["details"]}
    assert fields == {"name", "imageType", "description", "manifestId", "computeResourceId"}


def test_build_log_is_served_once_written(api: Api, manifest: dict[str, Any], home: Path) -> None:
    image = image_of(api, api.create_image(manifest["id"]))

    missing = api.open("GET", image["imageBuildLogUri"])
    assert missing.status_code == 404
    check_error(missing)

    log = Settings.load(home=home).builder_config().build_log_dir / f"{image['id']}.log"
    log.parent.mkdir(parents=True)
    log.write_text("Step 1/9 : FROM python:3.11-slim\n")
    with api.open("GET", image["imageBuildLogUri"]) as response:  # closing the file it streams
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == "Step 1/9 : FROM python:3.11-slim\n"


def test_build_log_from_the_store_is_served_by_range(api: Api, manifest: dict[str, Any], store: Store,
                                                     home: Path) -> None:
    """What a worker wrote to the store wins over a file an older build left in $MOMA_HOME."""
    image = image_of(api, api.create_image(manifest["id"]))
    old = Settings.load(home=home).builder_config().build_log_dir / f"{image['id']}.log"
    old.parent.mkdir(parents=True)
    old.write_text("an older attempt\n")
    store.build_logs.append(image["id"], "Step 1/9 : FROM python:3.11-slim\n")
    store.build_logs.append(image["id"], "Step 2/9 : COPY . /app\n")

    whole = api.open("GET", image["imageBuildLogUri"])
    tail = api.open("GET", image["imageBuildLogUri"], headers={"Range": "bytes=33-"})

    assert whole.get_data(as_text=True) == "Step 1/9 : FROM python:3.11-slim\nStep 2/9 : COPY . /app\n"
    assert (tail.status_code, tail.get_data(as_text=True)) == (206, "Step 2/9 : COPY . /app\n")
    assert tail.headers["Content-Range"] == "bytes 33-55/56"
