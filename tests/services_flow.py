"""Services through the API for tests: create, wait, score, and a client that scores
without pause while counting every answer."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import requests

from bench.api_flow import operation_id, wait_operation
from management.client import ApiClient

ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}


def create_service(client: ApiClient, image_id: str, name: str, compute: str = "local",
                   **settings: Any) -> dict[str, Any]:
    body = {"imageId": image_id, "name": name, "computeResource": {"id": compute, "type": "Cluster"},
            "autoScaler": {}, "containerResourceReservation": {}, **settings}
    return wait_operation(client, operation_id(client.call("POST", "/services", json=body)), timeout=240)


def score(url: str, key: str | None, row: dict[str, Any] = ROW, session: Any = requests) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return session.post(url, json=row, headers=headers, timeout=15)


def wait_until_it_scores(client: ApiClient, service: dict[str, Any], key: str, row: dict[str, Any] = ROW,
                         timeout: float = 60) -> requests.Response:
    """The first 200 from the service's scoring URI (e.g. once the reconciler brought it
    back); fails with the service's state when none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = score(service["scoringUri"], key, row)
            if answer.status_code == 200:
                return answer
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            state = client.call("GET", f"/services/{service['id']}").json()
            raise AssertionError(f"service {service['name']} did not score within {timeout:.0f} s: {state['state']} "
                                 f"{state.get('error', '')}")
        time.sleep(0.5)


class ContinuousClient:
    """Scores in a background thread until stopped; counts answers by status."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ContinuousClient":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.counts.items() if status != "200")

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                self.counts[str(score(self.url, self.key, session=session).status_code)] += 1
            except requests.RequestException as exc:  # the text says which side broke the connection
                self.counts[f"{type(exc).__name__}: {str(exc)[-160:]}"] += 1
                session = requests.Session()


def service_containers(docker_client: Any, service_id: str, *, stopped: bool = False) -> list[Any]:
    """A service's containers on the local engine; the worker may remove some while they
    are listed, so those that vanish are left out rather than raising NotFound."""
    return docker_client.containers.list(ignore_removed=True, all=stopped,
                                         filters={"label": f"moma.service-id={service_id}"})
