"""The iris example registered through the API the way the CLI does it: upload the
files, register the model, the manifest, and create the image; then wait for the
operation. For benchmarks and tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from management.client import ApiClient


def upload(client: ApiClient, path: Path) -> str:
    with path.open("rb") as body:
        response = client.call("POST", "/artifacts", params={"name": path.name}, data=body,
                               headers={"Content-Type": "application/octet-stream"})
    return response.json()["url"]


def register_iris(client: ApiClient, project: Path, name: str = "iris", model_url: str | None = None) -> dict[str, Any]:
    """The iris project's model (or the model at ``model_url``) and a manifest of it."""
    model = client.call("POST", "/models", json={
        "name": name, "tags": [], "description": "iris", "url": model_url or upload(client, project / "model.pkl"),
        "mimeType": "application/octet-stream", "unpack": False}).json()
    manifest = client.call("POST", "/manifests", json={
        "name": f"{name}app", "driverProgram": "driver", "modelType": "Registered", "modelIds": [model["id"]],
        "webserviceType": "Realtime",
        "targetRuntime": {"runtimeType": "Python",
                          "properties": {"pipRequirements": upload(client, project / "requirements.txt")}},
        "assets": [{"id": "driver", "url": upload(client, project / "score.py"), "mimeType": "application/x-python"}],
    }).json()
    return {"model": model, "manifest": manifest}


def create_image(client: ApiClient, manifest_id: str, name: str = "irisimg") -> str:
    response = client.call("POST", "/images", json={
        "name": name, "manifestId": manifest_id, "description": "", "imageType": "Docker",
        "computeResourceId": "local"})
    return operation_id(response)


def operation_id(response: requests.Response) -> str:
    """The id in a 202's ``Operation-Location`` (a 202 has no body)."""
    assert response.status_code == 202 and response.content == b""
    return response.headers["Operation-Location"].rsplit("/", 1)[-1]


def wait_operation(client: ApiClient, operation_id: str, timeout: float = 300,
                   until: tuple[str, ...] = ("Succeeded", "Failed", "Cancelled")) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        operation = client.call("GET", f"/operations/{operation_id}").json()
        if operation["state"] in until or time.monotonic() > deadline:
            return operation
        time.sleep(0.5)
