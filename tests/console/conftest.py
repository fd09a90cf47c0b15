"""Fixtures of the console tests.

Page tests use Flask's test client over ``create_app`` with a real store in a temporary
``MOMA_HOME``. Browser tests drive Debian's Chromium headless through Playwright (never a
downloaded browser) against one real ``moma serve`` and the real Docker engine, shared
by the whole session: one build started from the console and one service made from it
serve every test that needs them."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.api_flow import upload
from bench.moma_server import MomaServer
from management.api import create_app
from management.client import Scope
from management.config import Settings
from management.server import prepare
from tests.conftest import TEST_RUN_LABEL
from tests.management.helpers import Api, create_service, service_id_of, succeeded_image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
PROJECT = Path(__file__).parent / "project"
EXAMPLE = Path(__file__).parents[2] / "examples" / "iris"
SHOTS = Path(__file__).parents[2] / "docs" / "console"
WAIT_MS = 240_000


# -- pages through Flask's test client ------------------------------------------------------

@dataclass
class Pages:
    """The console of an app, through Flask's test client, as a browser would call it."""

    app: Flask
    home: Path
    client: FlaskClient

    @property
    def admin_token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(f"/ui{path}", headers={"Accept": "text/html", **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(f"/ui{path}", data=data or {},
                                headers={"Accept": "text/html", **kwargs.pop("headers", {})}, **kwargs)

    def sign_in(self, token: str | None = None) -> str:
        """Sign in; the session's CSRF token."""
        form = self.get("/signin").text
        response = self.post("/signin", {"token": token or self.admin_token, "csrf": csrf_of(form)})
        assert response.status_code == 303, response.text
        return csrf_of(self.get(response.headers["Location"]).text)

    def api(self, token: str | None = None, scope: Scope = Scope()) -> "TestApi":
        return TestApi(self.client, token or self.admin_token, scope)


class TestApi:
    """The REST API through the same test client, for setting things up."""

    def __init__(self, client: FlaskClient, token: str, scope: Scope) -> None:
        self.client, self.token, self.scope = client, token, scope

    def call(self, method: str, path: str, account: bool = True, **kwargs: Any) -> Any:
        response = self.client.open(f"{self.scope.path if account else ''}{path}", method=method,
                                    query_string={"api-version": "2017-09-01-preview", **kwargs.pop("params", {})},
                                    headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert response.status_code < 300, response.text
        return response.get_json(silent=True)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@contextlib.contextmanager
def console_pages(home: Path, **config: Any) -> Iterator[Pages]:
    """The console of a fresh installation in ``home``, with these settings."""
    settings = Settings.load(home=home, **config)
    store = prepare(settings)
    app = create_app({"home": settings.home, **config}, store=store)
    try:
        yield Pages(app, settings.home, app.test_client())
    finally:
        store.close()


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    with console_pages(tmp_path / "home") as console:
        yield console


# -- what the worker would leave in the store (no worker runs under the test client) ---------

def built_image(pages: Pages, name: str) -> dict[str, Any]:
    """A model, a manifest of it and an image of that manifest, built as the worker would
    leave it (``Succeeded``, at ``default/<name>:1``): ``{"id", "manifest", "model"}``.
    Claims the oldest operation: make images before services."""
    return succeeded_image(Api(pages.client, pages.admin_token), pages.app.extensions["moma.store"], name)


def deployed_service(pages: Pages, image_id: str, name: str, state: str = "Succeeded", port: int = 1) -> str:
    """A service of the image, created through the API and left by the worker in ``state``:
    ``Succeeded`` (scoring at 127.0.0.1:``port``), ``Failed``, ``Running`` (deploying) or
    ``NotStarted`` (its operation never claimed: make that one last). Its id."""
    api = Api(pages.client, pages.admin_token)
    service_id = service_id_of(api, create_service(api, image_id, name))
    if state == "NotStarted":
        return service_id
    store = pages.app.extensions["moma.store"]
    operation = store.operations.claim("test-worker", 60_000, 3)
    assert operation is not None and operation.resource_id == service_id, "an older operation is unclaimed"
    if state == "Running":
        store.services.start(service_id, 1)
    else:
        error = None if state == "Succeeded" else {"code": "DeploymentFailed", "message": "the container exited"}
        assert store.services.complete(operation.id, "test-worker", service_id, 1, state, scoring_host="127.0.0.1",
                                       scoring_port=port, replicas=1, error=error)
    return service_id


# -- a real server and a real browser -------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (``launch`` gives it a fresh
    temporary user-data-dir of its own)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, test_run_id: str, docker_client: Any) -> Iterator[MomaServer]:
    env = {"MOMA_IMAGE_LABELS": f"{TEST_RUN_LABEL}={test_run_id}", "MOMA_WORKER_POLL_SECONDS": "0.2",
           "MOMA_RECONCILE_SECONDS": "1", "MOMA_SERVICE_READY_SECONDS": "90"}
    server = MomaServer(tmp_path_factory.mktemp("console-home"), env).start(timeout=120)
    yield server
    server.delete_services_and_stop()


@dataclass
class Browser:
    """A signed-in browser context on the server's console."""

    context: Any
    page: Any
    url: str
    requests: list[str]  # every URL the page asked for
    dialogs: list[str]  # messages of alert() and the like (the XSS test wants none)

    def open(self, path: str) -> Any:
        self.page.goto(f"{self.url}/ui{path}")
        return self.page

    def account(self, path: str = "/", scope: tuple[str, str, str] = ("default", "default", "default")) -> Any:
        return self.open(f"/accounts/{'/'.join(scope)}{path}")


@pytest.fixture
def browser(chromium: Any, server: Any) -> Iterator[Browser]:
    with browsing(chromium, server.url, server.token) as console:
        yield console


@contextlib.contextmanager
def browsing(chromium: Any, url: str, token: str | None) -> Iterator[Browser]:
    """A new browser context (no cookies), signed in with ``token`` unless it is None."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    console = Browser(context, page, url, seen, [])
    page.on("dialog", lambda dialog: (console.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        if token is not None:
            sign_in(console, token)
        yield console
    finally:
        context.close()


def sign_in(console: Browser, token: str) -> None:
    page = console.open("/signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/accounts/.*"))


@pytest.fixture(scope="session")
def iris(server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The iris model and a manifest of it with a service schema, registered through the API."""
    from tests.integration.conftest import train

    project = tmp_path_factory.mktemp("console-iris")
    for name in ("score.py", "service_schema.json"):
        shutil.copy(PROJECT / name, project / name)
    shutil.copy(EXAMPLE / "requirements.txt", project / "requirements.txt")
    train(project)
    client = server.client()
    model = client.call("POST", "/models", json={
        "name": "iris", "tags": ["demo", "sklearn"], "description": "iris species from sepal and petal sizes",
        "url": upload(client, project / "model.pkl"), "mimeType": "application/octet-stream"}).json()
    manifest = client.call("POST", "/manifests", json={
        "name": "iris", "driverProgram": "driver", "modelType": "Registered", "modelIds": [model["id"]],
        "webserviceType": "Realtime",
        "targetRuntime": {"runtimeType": "Python",
                          "properties": {"pipRequirements": upload(client, project / "requirements.txt")}},
        "assets": [{"id": "driver", "url": upload(client, project / "score.py"), "mimeType": "application/x-python"},
                   {"id": "schema", "url": upload(client, project / "service_schema.json"),
                    "mimeType": "application/json"}]}).json()
    return {"model": model, "manifest": manifest}


@dataclass(frozen=True)
class Build:
    image_id: str
    state: str
    streamed: list[str]  # the build log's text as seen in the page while the build ran
    final_log: str


@pytest.fixture(scope="session")
def console_build(chromium: Any, server: Any, iris: dict[str, Any]) -> Build:
    """An image built by pressing "Build image" on the manifest's page, with the log as the
    page showed it while the build ran (read every 200 ms until the stream's end)."""
    with browsing(chromium, server.url, server.token) as console:
        page = console.account(f"/manifests/{iris['manifest']['id']}")
        page.get_by_role("button", name="Build image").click()
        page.wait_for_url(re.compile(r".*/images/[0-9a-f-]{36}$"))
        image_id = page.url.rsplit("/", 1)[-1]
        streamed, deadline = [], time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            seen = page.evaluate("() => { const pre = document.getElementById('build-log');"
                                 " return pre ? [pre.textContent, pre.dataset.state || ''] : null; }")
            if seen is None:  # the page reloads once the build ended
                break
            text, state = seen
            if state:
                break
            if text and (not streamed or streamed[-1] != text):
                streamed.append(text)
            page.wait_for_timeout(200)
        page.locator("#build-log:not([data-stream])").wait_for(timeout=WAIT_MS)  # the page once the build ended
        state = page.locator("#image-state").inner_text().strip()
        return Build(image_id, state, streamed, page.locator("#build-log").inner_text())


@pytest.fixture(scope="session")
def console_service(chromium: Any, server: Any, console_build: Build) -> dict[str, Any]:
    """A service made with "Create service" on the built image's page, once it is Succeeded."""
    assert console_build.state == "Succeeded", console_build.final_log[-3000:]
    with browsing(chromium, server.url, server.token) as console:
        page = console.account(f"/images/{console_build.image_id}")
        page.get_by_label("Service name").fill("iris-console")
        page.get_by_role("button", name="Create service").click()
        page.wait_for_url(re.compile(r".*/services/[0-9a-f-]{36}$"))
        page.locator("#service-state .state-succeeded, #service-state .state-failed").wait_for(timeout=WAIT_MS)
        service_id = page.url.rsplit("/", 1)[-1]
    service = server.client().call("GET", f"/services/{service_id}").json()
    assert service["state"] == "Succeeded", service
    return service
