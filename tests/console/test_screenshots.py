"""The README's screenshots of the console, taken from the shared server once it holds a
build and a running service under load. Runs only when asked:

    MOMA_CONSOLE_SCREENSHOTS=docs/console .venv/bin/pytest tests/console -m docker
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench.api_flow import upload
from tests.services_flow import ContinuousClient

from .conftest import Build, browsing

DIRECTORY = os.environ.get("MOMA_CONSOLE_SCREENSHOTS", "")
pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.skipif(not DIRECTORY, reason="set MOMA_CONSOLE_SCREENSHOTS=docs/console to take them")]
LOAD_SECONDS = 40
MODELS = [("churn", ["xgboost", "prod"]), ("churn", ["xgboost"]), ("fraud", ["sklearn", "prod"]),
          ("fraud", ["sklearn"]), ("fraud", ["sklearn", "candidate"]), ("sentiment", ["onnx"])]


def test_screenshots(chromium: Any, server: Any, console_build: Build, console_service: dict[str, Any],
                     tmp_path: Path):
    directory = Path(DIRECTORY)
    directory.mkdir(parents=True, exist_ok=True)
    client = server.client()
    for number, (name, tags) in enumerate(MODELS):
        model = tmp_path / f"{name}.pkl"
        model.write_bytes(os.urandom(40_000 * (number + 1)))
        client.call("POST", "/models", json={"name": name, "tags": tags, "url": upload(client, model),
                                             "mimeType": "application/octet-stream"})
    with browsing(chromium, server.url, None) as console:
        console.open("/signin").screenshot(path=str(directory / "signin.png"))
    key = client.call("GET", f"/services/{console_service['id']}/keys").json()["primaryKey"]
    with browsing(chromium, server.url, server.token) as console, \
            ContinuousClient(console_service["scoringUri"], key):
        page = console.account("/")
        page.screenshot(path=str(directory / "overview.png"), full_page=True)
        console.account("/models").screenshot(path=str(directory / "models.png"), full_page=True)
        console.account(f"/images/{console_build.image_id}").screenshot(path=str(directory / "image.png"))
        page = console.account(f"/services/{console_service['id']}")
        page.get_by_role("button", name="Score with the primary key").click()
        started = time.monotonic()
        while time.monotonic() - started < LOAD_SECONDS:
            page.wait_for_timeout(1000)
        assert float(page.locator('figure[data-series="rps"]').get_attribute("data-peak")) > 0
        page.screenshot(path=str(directory / "service.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(directory / "narrow.png"))
