"""Talking to a scoring service on the user's behalf: its ``/metrics``, its Swagger
example and a try-it request. The service (its scoring URI) and its key come from the
API with the user's token, so only a user the API lets see the keys gets this far; the
key is used here, on the server, and never reaches the page."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from .api_client import Api, ApiError, Scope

TIMEOUT_SECONDS = 5.0
TRY_TIMEOUT_SECONDS = 60.0
MAX_ANSWER_BYTES = 64 * 1024
SCORING_ROUTES = ("/score", "/v2/models/{name}/infer")  # the runtime's /metrics route labels of scoring calls


@dataclass(frozen=True)
class TryResult:
    status: int
    request_id: str
    answer: str


class Scoring:
    """One service's scoring container, as the user."""

    def __init__(self, caller: Api, where: Scope, service: dict[str, Any]) -> None:
        self.caller, self.where, self.service = caller, where, service
        if not service.get("scoringUri"):
            raise ApiError(409, f"service {service['name']} has no scoring URI yet (state {service['state']})")
        self.base = service["scoringUri"].rsplit("/", 1)[0]

    def metrics(self) -> dict[str, Any]:
        """The counters the console charts, summed over the container's workers."""
        response = self._send("GET", f"{self.base}/metrics")
        return snapshot(response.text)

    def example(self) -> str:
        """The Swagger document's input example as JSON text; "" when there is none."""
        try:
            document = self._send("GET", f"{self.base}/swagger.json").json()
        except (ApiError, ValueError):
            return ""
        example = ((document.get("definitions") or {}).get("ServiceInput") or {}).get("example")
        return json.dumps(example) if example is not None else ""

    def try_it(self, body: str) -> TryResult:
        response = self._send("POST", self.service["scoringUri"], data=body.encode(),
                              headers={"Content-Type": "application/json"}, timeout=TRY_TIMEOUT_SECONDS, ok=False)
        answer = response.content[:MAX_ANSWER_BYTES].decode(errors="replace")
        return TryResult(response.status_code, response.headers.get("x-ms-request-id", ""), answer)

    def _send(self, method: str, url: str, *, timeout: float = TIMEOUT_SECONDS, ok: bool = True,
              **kwargs: Any) -> requests.Response:
        key = self.caller.get(self.where.path("services", self.service["id"], "keys"))["primaryKey"]
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        try:
            response = requests.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(502, f"service {self.service['name']} did not answer at {url}: {type(exc).__name__}") \
                from exc
        if ok and response.status_code != 200:
            raise ApiError(502, f"service {self.service['name']} answered {response.status_code} at {url}",
                           response.headers.get("x-ms-request-id", ""))
        return response


def snapshot(text: str) -> dict[str, Any]:
    """Totals from the runtime's Prometheus text: scoring requests (``/score`` and the Open
    Inference Protocol's infer), their 429s and 5xx, their latency histogram (cumulative
    counts by upper bound), in-flight calls and queue depth. Health checks, metadata and
    /metrics are not counted: a 503 from /readyz while a container starts is not an
    error of the service. Rates and percentiles come from the difference of two
    snapshots (the page does that)."""
    totals = {"requests": 0.0, "throttled": 0.0, "errors": 0.0, "inFlight": 0.0, "queueDepth": 0.0}
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            scoring = labels.get("route") in SCORING_ROUTES
            if sample.name == "moma_requests_total" and scoring:
                status = labels.get("status", "")
                totals["throttled"] += value if status == "429" else 0
                totals["errors"] += value if status.startswith("5") else 0
                totals["requests"] += value
            elif sample.name == "moma_request_duration_seconds_bucket" and scoring:
                buckets[labels["le"]] = buckets.get(labels["le"], 0.0) + value
            elif sample.name == "moma_scoring_in_flight":
                totals["inFlight"] = value
            elif sample.name == "moma_queue_depth":
                totals["queueDepth"] = value
    latency = sorted(((math.inf if le == "+Inf" else float(le), count) for le, count in buckets.items()))
    return {**totals, "latency": [[None if math.isinf(le) else le, count] for le, count in latency]}
