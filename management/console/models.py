"""Models and manifests: lists (filtered by the API, paged by its ``$skipToken``), details,
and the "build image" action on a manifest."""

from __future__ import annotations

import re
from typing import Any

from flask import redirect, render_template, request, url_for

from .api_client import ApiError, fixable, next_token
from .auth import account_blueprint, api, scope

blueprint = account_blueprint("models")
PAGE_SIZE = 50
_ARTIFACT = re.compile(r"artifact://sha256/([0-9a-f]{64})/.*")


@blueprint.get("/models")
def models() -> str:
    name, tag = request.args.get("name", "").strip(), request.args.get("tag", "").strip()
    page = api().get(scope().path("models"), name=name, tag=tag, count=PAGE_SIZE,
                     **{"$skipToken": request.args.get("page")})
    items = [with_digest(model) for model in page["value"]]
    sizes = artifact_sizes([model["sha256"] for model in items if model["sha256"]])
    return render_template("models.html", models=items, sizes=sizes, name=name, tag=tag,
                           next_page=next_token(page), first=not request.args.get("page"))


@blueprint.get("/models/<model_id>")
def model(model_id: str) -> str:
    found = with_digest(api().get(scope().path("models", model_id)))
    manifests = api().get(scope().path("manifests"), modelId=model_id, count=PAGE_SIZE)["value"]
    sizes = artifact_sizes([found["sha256"]] if found["sha256"] else [])
    return render_template("model.html", model=found, size=sizes.get(found["sha256"]), manifests=manifests)


@blueprint.get("/manifests")
def manifests() -> str:
    name = request.args.get("name", "").strip()
    page = api().get(scope().path("manifests"), manifestName=name, count=PAGE_SIZE,
                     **{"$skipToken": request.args.get("page")})
    return render_template("manifests.html", manifests=page["value"], name=name, next_page=next_token(page),
                           first=not request.args.get("page"))


@blueprint.get("/manifests/<manifest_id>")
def manifest(manifest_id: str, error: ApiError | None = None) -> Any:
    found = api().get(scope().path("manifests", manifest_id))
    images = api().get(scope().path("images"), manifestId=manifest_id, count=PAGE_SIZE)["value"]
    body = render_template("manifest.html", manifest=found, images=images, error=error,
                           image_name=request.form.get("name", found["name"]))
    return (body, error.status) if error else body


@blueprint.post("/manifests/<manifest_id>/build")
def build(manifest_id: str) -> Any:
    """Start an image build; its page shows the log as it is written."""
    body = {"name": request.form.get("name", "").strip(), "manifestId": manifest_id, "imageType": "Docker",
            "computeResourceId": "local", "description": request.form.get("description", "")}
    try:
        answer = api().call("POST", scope().path("images"), json=body)
    except ApiError as exc:
        if not fixable(exc):
            raise
        return manifest(manifest_id, error=exc)
    return redirect(url_for("images.image", image_id=api().created(scope(), answer)), 303)


def with_digest(model: dict[str, Any]) -> dict[str, Any]:
    """The model, with ``sha256`` (None unless it was uploaded: only then are its bytes known)."""
    match = _ARTIFACT.fullmatch(model.get("url", ""))
    return {**model, "sha256": match.group(1) if match else None}


def artifact_sizes(digests: list[str]) -> dict[str, int]:
    if not digests:
        return {}
    return api().call("GET", scope().path("console", "artifactSizes"), params={"sha256": digests}).json()
