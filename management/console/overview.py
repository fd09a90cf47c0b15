"""An account's overview: counts of models, manifests, images and services by state, and
its last operations."""

from __future__ import annotations

from flask import render_template, url_for

from .auth import account_blueprint, api, scope

blueprint = account_blueprint("overview")
PAGES = {"images": "images.image", "services": "services.service"}


@blueprint.get("/")
def show() -> str:
    summary = api().get(scope().path("console", "summary"))
    operations = [{**operation, "link": resource_link(operation.get("resourceLocation", ""))}
                  for operation in summary["operations"]]
    return render_template("overview.html", summary=summary, operations=operations)


def resource_link(location: str) -> str | None:
    """The console page of an API resource location (``.../images/<id>``)."""
    kind, _, resource_id = location.rpartition("/")
    endpoint = PAGES.get(kind.rpartition("/")[2])
    if endpoint is None or not resource_id:
        return None
    return url_for(endpoint, **{endpoint.rsplit(".", 1)[1] + "_id": resource_id})
