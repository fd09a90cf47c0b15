"""What a service page polls while it is open: the scoring container's metrics (JSON, for
the charts) and its log tail. Both go through the API with the user's token."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from .auth import account_blueprint, api, scope
from .scoring import Scoring

blueprint = account_blueprint("live")
MAX_TAIL = 1000


@blueprint.get("/services/<service_id>/metrics.json")
def metrics(service_id: str) -> dict[str, Any]:
    found = api().get(scope().path("services", service_id))
    return Scoring(api(), scope(), found).metrics()


@blueprint.get("/services/<service_id>/logs")
def logs(service_id: str) -> Response:
    """The container's last ``tail`` log lines, as the API gives them (text)."""
    raw = request.args.get("tail", "200")
    tail = min(int(raw), MAX_TAIL) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 6 and int(raw) else 200
    answer = api().call("GET", scope().path("services", service_id, "logs"), params={"tail": tail})
    return Response(answer.body, mimetype="text/plain")
