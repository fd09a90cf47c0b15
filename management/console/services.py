"""Services: the list, a service's page (state, scoring URI, compute, replicas,
reservations, autoscaler, deployments, collected data, the try-it panel), and its
actions: reveal keys, regenerate a key and delete (each after a confirmation page),
update the image, scale. Keys are in a page only in the answer to "reveal"."""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any, Callable

from flask import abort, redirect, render_template, request, url_for

from .api_client import ApiError, fixable, next_token
from .auth import account_blueprint, api, scope
from .scoring import Scoring, TryResult

blueprint = account_blueprint("services")
PAGE_SIZE = 50
DATA_ROWS = 10
KEY_TYPES = ("Primary", "Secondary")
NOTICES = {"regenerated": "A new key was made; the old one stops working within seconds.",
           "updating": "The update started: the service keeps answering until the new container is ready.",
           "scaling": "The new replica count is being applied.", "deleted": "The service is being deleted."}
TRANSITIONAL = ("NotStarted", "Running")


@blueprint.get("/services")
def services() -> str:
    page = api().get(scope().path("services"), count=PAGE_SIZE, **{"$skipToken": request.args.get("page")})
    return render_template("services.html", services=page["value"], next_page=next_token(page),
                           first=not request.args.get("page"), notice=NOTICES.get(request.args.get("done", ""), ""))


@blueprint.get("/services/<service_id>")
def service(service_id: str, *, keys: dict[str, str] | None = None, tried: TryResult | None = None,
            error: ApiError | None = None, status: int = 200) -> Any:
    found = api().get(scope().path("services", service_id))
    deployments = api().get(scope().path("deployments"), serviceId=service_id)
    ready = found["state"] == "Succeeded" and found.get("scoringUri")
    example = request.form.get("body") or (Scoring(api(), scope(), found).example() if ready else "")
    images = [image for image in api().pages(scope().path("images"), PAGE_SIZE)
              if image["creationState"] == "Succeeded"]
    body = render_template(
        "service.html", service=found, deployments=sorted(deployments, key=lambda d: d["createdAt"], reverse=True),
        images=images, example=example, data=_collected(found), keys=keys, tried=tried, error=error,
        notice=NOTICES.get(request.args.get("done", ""), ""), refresh=found["state"] in TRANSITIONAL)
    return body, error.status if error else status


@blueprint.post("/services/<service_id>/keys")
def reveal_keys(service_id: str) -> Any:
    return service(service_id, keys=api().get(scope().path("services", service_id, "keys")))


@blueprint.post("/services/<service_id>/try")
def try_it(service_id: str) -> Any:
    found = api().get(scope().path("services", service_id))
    return service(service_id, tried=Scoring(api(), scope(), found).try_it(request.form.get("body", "")))


@blueprint.route("/services/<service_id>/regenerate", methods=["GET", "POST"])
def regenerate(service_id: str) -> Any:
    key_type = request.values.get("keyType", "")
    if key_type not in KEY_TYPES:
        abort(400, "keyType must be Primary or Secondary")
    if request.method == "GET":
        found = api().get(scope().path("services", service_id))
        return _confirm(found, f"Regenerate the {key_type.lower()} key of {found['name']}?",
                        f"Clients that use the {key_type.lower()} key get 401 from then on; the other key "
                        "keeps working.", url_for("services.regenerate", service_id=service_id),
                        {"keyType": key_type}, f"Regenerate the {key_type.lower()} key")
    return _act(service_id, "regenerated", lambda: api().call(
        "POST", scope().path("services", service_id, "regenerateKeys"), json={"keyType": key_type}))


@blueprint.route("/services/<service_id>/delete", methods=["GET", "POST"])
def delete(service_id: str) -> Any:
    found = api().get(scope().path("services", service_id))
    if request.method == "GET":
        return _confirm(found, f"Delete the service {found['name']}?",
                        "Its containers stop and its scoring URI stops answering. Its keys are gone for good.",
                        url_for("services.delete", service_id=service_id), {}, "Delete the service")
    api().call("DELETE", scope().path("services", service_id))
    return redirect(url_for("services.services", done="deleted"), 303)


@blueprint.post("/services/<service_id>/update")
def update(service_id: str) -> Any:
    return _act(service_id, "updating", lambda: api().call(
        "PUT", scope().path("services", service_id), json={"imageId": request.form.get("imageId", "")}))


@blueprint.post("/services/<service_id>/scale")
def scale(service_id: str) -> Any:
    raw = request.form.get("numReplicas", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 6):
        abort(400, f"the number of replicas must be a whole number, got {raw[:20]!r}")
    return _act(service_id, "scaling", lambda: api().call(
        "PUT", scope().path("services", service_id), json={"numReplicas": int(raw)}))


def _act(service_id: str, done: str, action: Callable[[], Any]) -> Any:
    """Run an API call; then the service's page, with the API's error when it refused."""
    try:
        action()
    except ApiError as exc:
        if not fixable(exc):
            raise
        return service(service_id, error=exc)
    return redirect(url_for("services.service", service_id=service_id, done=done), 303)


def _confirm(found: dict[str, Any], question: str, consequence: str, action: str, fields: dict[str, str],
             button: str) -> str:
    return render_template("confirm.html", service=found, question=question, consequence=consequence,
                           action=action, fields=fields, button=button)


def _collected(found: dict[str, Any]) -> dict[str, Any] | None:
    """The last rows of each identifier collected over the last day, when collection is on."""
    if not (found.get("dataCollection") or {}).get("storageEnabled"):
        return None
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        files = api().get(scope().path("services", found["id"], "data"), since=since)["value"]
        rows = {}
        for identifier in sorted({item["identifier"] for item in files}):
            answer = api().call("GET", scope().path("services", found["id"], "data", "rows"),
                                params={"identifier": identifier, "since": since})
            lines = answer.body.decode(errors="replace").splitlines()
            header = lines.pop(0) if lines and answer.headers.get("Content-Type", "").startswith("text/csv") else ""
            rows[identifier] = {"header": header, "rows": list(deque(lines, maxlen=DATA_ROWS))}
    except ApiError as exc:
        return {"error": exc}
    return {"rows": rows}
