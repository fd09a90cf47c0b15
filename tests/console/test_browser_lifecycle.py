"""The console in a real browser against a real ``moma serve`` and Docker engine: sign in,
see a model registered through the API, build an image from the console and watch its
log stream to Succeeded, create a service, try it, reveal and regenerate a key, watch
the metrics chart move, follow the logs, delete a service.

``MOMA_CONSOLE_SCREENSHOTS=docs/console`` saves the screenshots the README shows."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services_flow import create_service, score

from .conftest import Browser, Build, browsing

pytestmark = [pytest.mark.docker, pytest.mark.slow]
WAIT_MS = 240_000


def screenshot(browser: Browser, name: str, full_page: bool = True) -> None:
    directory = os.environ.get("MOMA_CONSOLE_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        browser.page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=full_page)


def test_sign_in_shows_the_overview_and_a_model_registered_through_the_api(browser: Browser, iris: dict[str, Any]):
    page = browser.account("/")
    assert page.locator("h1").inner_text().startswith("Overview")
    assert int(page.locator("#count-models").inner_text()) >= 1
    screenshot(browser, "overview")

    page = browser.account("/models")
    row = page.locator("#models tbody tr", has_text="iris").first
    cells = row.locator("td").all_inner_texts()
    model = iris["model"]
    assert cells[0] == "iris" and cells[1] == str(model["version"])
    assert "demo" in cells[2] and "sklearn" in cells[2]
    assert re.fullmatch(r"\d+(\.\d)? (B|KiB|MiB)", cells[3]), cells[3]
    assert row.locator("td code").get_attribute("title") == model["url"].split("/")[3]  # the sha256
    page.get_by_label("Tag").fill("sklearn")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#models tbody tr").count() >= 1
    page.get_by_label("Tag").fill("no-such-tag")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#models").count() == 0 and "No models match" in page.content()


def test_a_build_started_from_the_console_streams_its_log_to_succeeded(browser: Browser, console_build: Build):
    assert console_build.state == "Succeeded", console_build.final_log[-3000:]
    # the page showed the log while the build ran: it grew in steps, each the start of the next
    assert len(console_build.streamed) >= 2, console_build.streamed
    assert all(later.startswith(earlier.rstrip("\n")) or earlier in later
               for earlier, later in zip(console_build.streamed, console_build.streamed[1:]))
    assert console_build.streamed[0].startswith("build ")
    assert "done in" in console_build.final_log
    page = browser.account(f"/images/{console_build.image_id}")
    assert page.locator("#image-state").inner_text() == "Succeeded"
    labels = dict(zip(page.locator("#labels tbody td:first-child").all_inner_texts(),
                      page.locator("#labels tbody td:last-child").all_inner_texts()))
    assert re.fullmatch(r"[0-9a-f]{64}", labels["moma.content-hash"]), labels
    screenshot(browser, "image")


def test_try_it_scores_with_the_swagger_example(browser: Browser, console_service: dict[str, Any]):
    page = browser.account(f"/services/{console_service['id']}")
    assert page.locator("#scoring-uri").inner_text() == console_service["scoringUri"]
    assert page.get_by_label(re.compile("Request body")).input_value() == '{"data": [[5.1, 3.5, 1.4, 0.2]]}'
    page.get_by_role("button", name="Score with the primary key").click()
    assert page.locator("#try-status").inner_text() == "200"
    assert page.locator("#try-answer").inner_text() == '["setosa"]'
    assert re.fullmatch(r"[0-9a-f-]{36}", page.locator("#try-request-id").inner_text())

    page.get_by_label(re.compile("Request body")).fill('{"data": "not rows"}')
    page.get_by_role("button", name="Score with the primary key").click()
    assert page.locator("#try-status").inner_text() == "400"
    assert '"code": "bad_input"' in page.locator("#try-answer").inner_text().replace('":"', '": "')


def test_keys_stay_out_of_the_page_until_revealed_and_regenerate_after_confirming(
        browser: Browser, server: Any, console_service: dict[str, Any]):
    keys = server.client().call("GET", f"/services/{console_service['id']}/keys").json()
    page = browser.account(f"/services/{console_service['id']}")
    assert keys["primaryKey"] not in page.content() and keys["secondaryKey"] not in page.content()
    page.get_by_role("button", name="Reveal keys").click()
    assert page.locator("#primary-key").inner_text() == keys["primaryKey"]
    assert page.locator("#secondary-key").inner_text() == keys["secondaryKey"]

    page.get_by_role("link", name="primary key").click()
    assert "Regenerate the primary key of iris-console?" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Regenerate the primary key").click()
    assert "A new key was made" in page.locator(".notice").inner_text()
    assert keys["primaryKey"] not in page.content()
    page.get_by_role("button", name="Reveal keys").click()
    new_primary = page.locator("#primary-key").inner_text()
    assert new_primary != keys["primaryKey"]
    assert page.locator("#secondary-key").inner_text() == keys["secondaryKey"]
    answer = wait_for_status(console_service["scoringUri"], keys["primaryKey"], 401)
    assert answer.status_code == 401
    assert wait_for_status(console_service["scoringUri"], new_primary, 200).status_code == 200


def test_metrics_chart_moves_after_a_burst_of_requests(browser: Browser, server: Any,
                                                       console_service: dict[str, Any]):
    page = browser.account(f"/services/{console_service['id']}")
    rps = page.locator('figure[data-series="rps"]')
    page.wait_for_function("() => document.querySelector('figure[data-series=rps]').dataset.points >= 1")
    key = server.client().call("GET", f"/services/{console_service['id']}/keys").json()["secondaryKey"]
    with requests.Session() as session:
        for _ in range(60):
            assert score(console_service["scoringUri"], key, session=session).status_code == 200
    page.wait_for_function("() => Number(document.querySelector('figure[data-series=rps]').dataset.peak) > 1",
                           timeout=20_000)
    assert len(rps.locator("polyline").get_attribute("points").split()) >= 2
    page.wait_for_function("() => document.querySelector('#metric-p50').textContent !== '—'", timeout=20_000)
    assert float(page.locator("#metric-p50").inner_text()) > 0
    screenshot(browser, "service")


def test_container_logs_tail_and_follow(browser: Browser, server: Any, console_service: dict[str, Any]):
    page = browser.account(f"/services/{console_service['id']}")
    logs = page.locator("#service-logs")
    logs.filter(has_text="driver").wait_for()  # the tail, as the page opens
    page.get_by_label("Follow").check()
    key = server.client().call("GET", f"/services/{console_service['id']}/keys").json()["secondaryKey"]
    request_id = score(console_service["scoringUri"], key).headers["x-ms-request-id"]
    logs.filter(has_text=request_id).wait_for(timeout=20_000)  # followed: the new line came without a reload


def test_the_keyboard_alone_signs_in_and_reaches_the_actions(chromium: Any, server: Any,
                                                             console_service: dict[str, Any]):
    with browsing(chromium, server.url, None) as console:
        page = console.account(f"/services/{console_service['id']}")  # the sign-in page, then back here
        page.wait_for_function("() => document.activeElement && document.activeElement.id === 'token'")
        page.keyboard.type(server.token)  # the token field has the focus (autofocus), no click needed
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/ui/accounts/default/default/default/services/{console_service['id']}")
        focused = []
        while "reveal-keys" not in focused and len(focused) < 40:
            page.keyboard.press("Tab")
            focused.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent"))
        assert focused[0] == "Skip to the content" and focused[-1] == "reveal-keys", focused
        page.keyboard.press("Enter")
        assert page.locator("#primary-key").inner_text()


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_pages_fit_the_window_wide_and_narrow(browser: Browser, console_build: Build,
                                              console_service: dict[str, Any], width: int, height: int):
    browser.page.set_viewport_size({"width": width, "height": height})
    for path in ("/", "/models", "/manifests", "/images", f"/images/{console_build.image_id}", "/services",
                 f"/services/{console_service['id']}"):
        page = browser.account(path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a {width} px window"


def test_update_the_image_and_the_api_refusing_to_scale_a_local_service(browser: Browser,
                                                                       console_service: dict[str, Any]):
    page = browser.account(f"/services/{console_service['id']}")
    deployments = page.locator("#deployments tbody tr").count()
    page.get_by_role("button", name="Update the image").click()
    assert "The update started" in page.locator(".notice").inner_text()
    page.locator("#service-state .state-succeeded").wait_for(timeout=WAIT_MS)  # the page refreshes until then
    assert page.locator("#deployments tbody tr").count() == deployments + 1

    page.get_by_label("Replicas").fill("3")
    page.get_by_role("button", name="Scale").click()
    error = page.locator(".error").inner_text()
    assert "numReplicas 3 needs a swarm compute" in error and re.search(r"request id [0-9a-f-]{36}", error)
    assert page.locator("#service-state").inner_text() == "Succeeded"


def test_a_collecting_service_shows_its_last_rows_and_is_deleted_after_confirming(browser: Browser, server: Any,
                                                                                  console_build: Build):
    client = server.client()
    operation = create_service(client, console_build.image_id, "iris-collect",
                               dataCollection={"storageEnabled": True})
    assert operation["state"] == "Succeeded", operation
    service_id = operation["resourceLocation"].rsplit("/", 1)[-1]
    scoring_uri = client.call("GET", f"/services/{service_id}").json()["scoringUri"]
    key = client.call("GET", f"/services/{service_id}/keys").json()["primaryKey"]
    request_ids = [score(scoring_uri, key).headers["x-ms-request-id"] for _ in range(3)]

    page = browser.account(f"/services/{service_id}")
    deadline = time.monotonic() + 60
    while not all(request_id in page.locator("#collected").inner_text() for request_id in request_ids):
        assert time.monotonic() < deadline, page.locator("#collected").inner_text()
        page.wait_for_timeout(1000)
        page.reload()
    collected = page.locator("#collected").inner_text()
    assert "$RequestId" in collected and "inputs" in collected and "prediction" in collected

    page.get_by_role("link", name="Delete the service").click()
    assert page.locator("h1").inner_text() == "Delete the service iris-collect?"
    page.get_by_role("button", name="Delete the service").click()
    assert "The service is being deleted." in page.locator(".notice").inner_text()
    assert "iris-collect" not in [s["name"] for s in client.pages("/services")]
    page = browser.account(f"/services/{service_id}")
    assert page.locator("h1").inner_text() == "404"
    wait_until_refused(scoring_uri)


def wait_for_status(url: str, key: str, status: int, timeout_ms: int = 30_000) -> requests.Response:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        answer = score(url, key)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


def wait_until_refused(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url.rsplit("/", 1)[0] + "/livez", timeout=2)
        except requests.ConnectionError:
            return
        time.sleep(0.5)
    raise AssertionError(f"{url} still answers after the delete")
