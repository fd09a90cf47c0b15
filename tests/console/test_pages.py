"""Console pages through Flask's test client over a real store: sign-in, the session
cookie, CSRF (on every state-changing route), escaping, paging and filters, what the
detail pages and the overview show, errors as the API gives them, account isolation,
the build log stream, and the API routes the console added."""

from __future__ import annotations

import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from management.client import Scope
from management.console import api_routes, overview

from .conftest import Pages, built_image, console_pages, csrf_of, deployed_service

DEFAULT = "/accounts/default/default/default"
XSS = "<script>alert(1)</script>"


def register_manifest(api: Any, name: str) -> dict[str, Any]:
    """A model and a manifest of it (nothing a build could use: no worker runs here)."""
    model = api.call("POST", "/models", json=model_body(name))
    return api.call("POST", "/manifests", json={
        "name": name, "driverProgram": "d", "modelIds": [model["id"]],
        "targetRuntime": {"runtimeType": "Python", "properties": {}},
        "assets": [{"id": "d", "url": "https://example.com/score.py"}]})


def model_body(name: str, tags: list[str] | None = None, **extra: str) -> dict[str, object]:
    return {"name": name, "tags": tags or [], "url": "https://example.com/model.pkl",
            "mimeType": "application/octet-stream", **extra}


# -- signing in and out --------------------------------------------------------------------

def test_pages_need_a_session(pages: Pages):
    response = pages.get(f"{DEFAULT}/models?tag=a")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ui/signin?next=/ui{DEFAULT}/models?tag%3Da")
    answer = pages.client.get(f"/ui{DEFAULT}/services/x/metrics.json", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["message"] == "sign in first"


@pytest.mark.parametrize("target, landing", [
    (f"/ui{DEFAULT}/models?tag=a", f"/ui{DEFAULT}/models?tag=a"),
    ("//evil.example/ui/", f"/ui{DEFAULT}/"), ("https://evil.example/ui/", f"/ui{DEFAULT}/"),
    ("/ui//evil.example", f"/ui{DEFAULT}/"), ("/ui/\\evil.example", f"/ui{DEFAULT}/"),
    ("/api/admin/tokens", f"/ui{DEFAULT}/")])
def test_sign_in_goes_back_to_the_page_asked_for_and_only_there(pages: Pages, target: str, landing: str):
    form = pages.get(f"/signin?next={urllib.parse.quote(target)}").text
    response = pages.post("/signin", {"token": pages.admin_token, "csrf": csrf_of(form), "next": target})
    assert response.status_code == 303 and response.headers["Location"] == landing


def test_sign_in_refuses_what_the_api_refuses(pages: Pages):
    csrf = csrf_of(pages.get("/signin").text)
    refused = pages.post("/signin", {"token": "moma_wrong", "csrf": csrf})
    assert refused.status_code == 401
    assert "the bearer token is not valid or was revoked" in refused.text
    assert re.search(r"request id <code>[0-9a-f-]{36}</code>", refused.text)
    assert pages.post("/signin", {"token": " ", "csrf": csrf}).status_code == 400
    assert pages.post("/signin", {"token": pages.admin_token}).status_code == 403  # no CSRF token
    assert "moma_console=" not in str(refused.headers.get("Set-Cookie"))


def test_the_session_cookie_is_secure_over_tls(pages: Pages):
    def sign_in(base_url: str) -> str:
        csrf = csrf_of(pages.client.get("/ui/signin", base_url=base_url).text)
        answer = pages.client.post("/ui/signin", data={"token": pages.admin_token, "csrf": csrf}, base_url=base_url)
        assert answer.status_code == 303
        return next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("moma_console="))

    over_http = sign_in("http://localhost")
    assert "Secure" not in over_http and "HttpOnly" in over_http and "SameSite=Strict" in over_http
    over_tls = sign_in("https://localhost")  # what gunicorn makes of X-Forwarded-Proto from a trusted proxy
    assert "; Secure" in over_tls and "HttpOnly" in over_tls and "Path=/ui/" in over_tls


def test_the_session_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path):
    with console_pages(tmp_path / "tls", public_url="https://moma.example") as pages:
        csrf = csrf_of(pages.get("/signin").text)
        answer = pages.post("/signin", {"token": pages.admin_token, "csrf": csrf})
    assert "; Secure" in next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("moma_console="))


def test_sign_out_needs_the_csrf_token_and_ends_the_session(pages: Pages):
    csrf = pages.sign_in()
    assert pages.post("/signout").status_code == 403
    assert pages.post("/signout", {"csrf": csrf}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert pages.get(f"{DEFAULT}/").status_code == 200  # still signed in
    assert pages.post("/signout", {"csrf": csrf}).status_code == 303
    assert pages.get(f"{DEFAULT}/").status_code == 302


def test_a_revoked_token_ends_the_session(pages: Pages):
    admin = pages.api()
    created = admin.call("POST", "/api/admin/tokens", account=False, json={"name": "temp", "admin": True})
    pages.sign_in(created["token"])
    admin.call("DELETE", f"/api/admin/tokens/{created['id']}", account=False)
    response = pages.get(f"{DEFAULT}/models")
    assert response.status_code == 303 and response.headers["Location"].endswith("/ui/signin?notice=expired")
    assert pages.get(f"{DEFAULT}/models").status_code == 302

    created = admin.call("POST", "/api/admin/tokens", account=False, json={"name": "temp2", "admin": True})
    pages.sign_in(created["token"])
    admin.call("DELETE", f"/api/admin/tokens/{created['id']}", account=False)
    polled = pages.client.get(f"/ui{DEFAULT}/services/x/logs", headers={"Accept": "text/plain"})
    assert polled.status_code == 401 and polled.get_json()["message"] == "the bearer token is not valid or was revoked"
    assert pages.get(f"{DEFAULT}/models").status_code == 302


# -- what pages show -----------------------------------------------------------------------

def test_text_from_the_api_and_the_url_is_escaped(pages: Pages):
    pages.api().call("POST", "/models", json=model_body("xss", [XSS], description="<img src=x onerror=alert(1)>"))
    pages.sign_in()
    for path in (f"{DEFAULT}/models", f"{DEFAULT}/models?tag={XSS}", f"{DEFAULT}/models?name={XSS}"):
        html = pages.get(path).text
        assert XSS not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    model_id = re.search(r'models/([0-9a-f]{32})"', pages.get(f"{DEFAULT}/models").text).group(1)
    html = pages.get(f"{DEFAULT}/models/{model_id}").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html


def test_models_page_through_the_api_and_filter_by_name_and_tag(pages: Pages):
    api = pages.api()
    for number in range(120):
        api.call("POST", "/models", json=model_body(f"m{number % 3}", ["even"] if number % 2 == 0 else []))
    pages.sign_in()
    seen, path = [], f"{DEFAULT}/models"
    while path:
        html = pages.get(path).text
        rows = re.findall(r'<a href="/ui/accounts/default/default/default/models/([0-9a-f]{32})">', html)
        seen += rows
        following = re.search(r'<a rel="next" href="([^"]+)"', html)
        path = following.group(1).replace("&amp;", "&").removeprefix("/ui") if following else None
        assert len(rows) == (50 if path else 20)
    assert len(set(seen)) == 120
    assert html.count('<td><a href="/ui/accounts/default/default/default/models/') == 20
    named = pages.get(f"{DEFAULT}/models?name=m1").text
    assert named.count(">m1</a>") == 40 and ">m0</a>" not in named
    tagged = pages.get(f"{DEFAULT}/models?tag=even&name=m0").text
    assert tagged.count(">m0</a>") == 20
    assert "No models match" in pages.get(f"{DEFAULT}/models?tag=none").text
    links = re.findall(r'href="([^"]+)">(?:First|Next) page', pages.get(f"{DEFAULT}/models?tag=even&account=x").text)
    assert links and all("account=x" not in link and "models?" in link for link in links), links


def test_uploaded_models_show_their_size_and_sha256(pages: Pages, tmp_path: Path):
    api = pages.api()
    uploaded = pages.client.post(f"{Scope().path}/artifacts", data=b"x" * 3000,
                                 query_string={"api-version": "2017-09-01-preview", "name": "model.pkl"},
                                 headers={"Authorization": f"Bearer {pages.admin_token}",
                                          "Content-Type": "application/octet-stream"}).get_json()
    api.call("POST", "/models", json={**model_body("sized"), "url": uploaded["url"]})
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/models").text
    assert "2.9 KiB" in html and f'title="{uploaded["sha256"]}"' in html


def test_overview_counts_and_last_operations(pages: Pages):
    api = pages.api()
    manifest = register_manifest(api, "counted")
    csrf = pages.sign_in()
    built = pages.post(f"{DEFAULT}/manifests/{manifest['id']}/build", {"name": "counted", "csrf": csrf})
    assert built.status_code == 303 and re.search(r"/images/[0-9a-f-]{36}$", built.headers["Location"])
    html = pages.get(f"{DEFAULT}/").text
    assert re.search(r'id="count-models">1<', html) and re.search(r'id="count-images">1<', html)
    assert "NotStarted" in html and re.search(r'<a href="/ui/accounts/default/default/default/images/', html)


def test_the_manifest_page_shows_its_driver_runtime_and_assets(pages: Pages):
    manifest = built_image(pages, "shown")["manifest"]
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/manifests/{manifest['id']}").text
    assert "<dt>Driver</dt><dd><code>driver</code></dd>" in html
    runtime = re.search(r"<dt>Runtime</dt><dd>(.*?)</dd>", html, re.S).group(1)
    properties = manifest["targetRuntime"]["properties"]
    assert runtime.split()[0] == "Python" and len(properties) == 2
    for key, value in properties.items():
        assert f'{key}: <code class="wrap">{value}</code>' in runtime, (key, runtime)
    assert len(manifest["assets"]) == 2
    for asset in manifest["assets"]:
        assert (f'<tr><td><code>{asset["id"]}</code></td><td><code class="wrap">{asset["url"]}</code></td>'
                f'<td>{asset["mimeType"]}</td></tr>') in html, asset


def test_the_overview_counts_services_by_state(pages: Pages):
    image_id = built_image(pages, "counted")["id"]
    for name, state in [("up-1", "Succeeded"), ("up-2", "Succeeded"), ("broken", "Failed"), ("deploying", "Running"),
                        ("waiting", "NotStarted")]:
        deployed_service(pages, image_id, name, state)
    gone = deployed_service(pages, image_id, "gone", "NotStarted")
    pages.api().call("DELETE", f"/services/{gone}")  # deleted services are not counted
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/").text
    assert re.search(r'id="count-services">5<', html)
    card = re.search(r'id="count-services".*?<ul class="states">(.*?)</ul>', html, re.S).group(1)
    shown = dict(re.findall(r'<li><span class="state state-[a-z]+">(\w+)</span> (\d+)</li>', card))
    assert shown == {"Failed": "1", "NotStarted": "1", "Running": "1", "Succeeded": "2"}, card


def test_the_image_page_shows_the_labels_the_engine_has_for_it(pages: Pages, monkeypatch):
    """The labels come from the Docker engine (``console/images/<id>/labels``), not the store:
    the engine's answer is replaced here (no Docker under the test client)."""
    image = built_image(pages, "labelled")
    asked: list[str] = []
    labels = {"moma.python-packages": "numpy==2.1.3,scikit-learn==1.9.1", "moma.content-hash": "c" * 64}
    monkeypatch.setattr(api_routes, "_labels", lambda reference: asked.append(reference) or labels)
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/images/{image['id']}").text
    assert asked == ["default/labelled:1"]  # the image's location
    table = re.search(r'<table id="labels">.*?</table>', html, re.S).group(0)
    rows = re.findall(r'<tr><td><code>([^<]+)</code></td><td><code class="wrap">([^<]+)</code></td></tr>', table)
    assert rows == sorted(labels.items())
    assert ("moma.python-packages", "numpy==2.1.3,scikit-learn==1.9.1") in rows


def test_the_image_page_says_why_labels_are_missing_when_no_engine_answers(pages: Pages, monkeypatch):
    image = built_image(pages, "unlabelled")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens there
    pages.sign_in()
    page = pages.get(f"{DEFAULT}/images/{image['id']}")
    assert page.status_code == 200 and 'id="labels"' not in page.text
    assert f"Labels unavailable: cannot read the labels of image {image['id']}" in page.text
    assert 'id="create-service"' in page.text  # the rest of the page is there


def test_the_models_page_shows_when_each_model_was_created(pages: Pages):
    api = pages.api()
    created = [api.call("POST", "/models", json=model_body(name)) for name in ("older", "newer")]
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/models").text
    for model in created:
        row = re.search(rf'models/{model["id"]}">{model["name"]}</a></td>(.*?)</tr>', html, re.S).group(1)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", model["createdAt"]), model["createdAt"]
        assert row.strip().endswith(f"<td><time>{model['createdAt']}</time></td>"), row


def test_api_errors_show_their_message_and_request_id(pages: Pages):
    api = pages.api()
    manifest = register_manifest(api, "errs")
    csrf = pages.sign_in()
    refused = pages.post(f"{DEFAULT}/manifests/{manifest['id']}/build", {"name": "not a name!", "csrf": csrf})
    assert refused.status_code == 400 and "request id <code>" in refused.text
    assert "name" in re.search(r'<div class="error" role="alert">\s*<p>([^<]+)</p>', refused.text).group(1)
    missing = pages.get(f"{DEFAULT}/images/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "image 00000000-0000-0000-0000-000000000000 not found" in missing.text


def test_an_unexpected_error_is_a_page_with_a_request_id_not_a_trace(pages: Pages, monkeypatch, caplog):
    def broken() -> None:
        raise RuntimeError("secret internals")

    pages.sign_in()
    monkeypatch.setattr(overview, "scope", broken)
    response = pages.get(f"{DEFAULT}/")
    assert response.status_code == 500
    request_id = re.search(r"quote request id ([0-9a-f-]{36}) to the operator", response.text).group(1)
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert request_id in caplog.text and "secret internals" in caplog.text  # for the operator, in the log


def test_an_account_token_sees_only_its_account(pages: Pages):
    admin = pages.api()
    admin.call("POST", "/api/admin/accounts", account=False, json={"accountName": "mine"})
    token = admin.call("POST", "/api/admin/tokens", account=False, json={"name": "t", "accountName": "mine"})["token"]
    secret = admin.call("POST", "/models", json=model_body("secret"))
    csrf = pages.sign_in(token)
    home = pages.get("/")
    assert home.headers["Location"].endswith("/ui/accounts/default/default/mine/")
    mine = pages.get("/accounts/default/default/mine/").text
    assert "account-switcher" not in mine and "<strong>mine</strong>" in mine
    for path in (f"{DEFAULT}/", f"{DEFAULT}/models", f"{DEFAULT}/models/{secret['id']}", f"{DEFAULT}/services"):
        refused = pages.get(path)
        assert refused.status_code == 404 and "account default/default/default not found" in refused.text, path
    assert pages.get(f"/accounts/default/default/mine/models/{secret['id']}").status_code == 404
    build = pages.post(f"{DEFAULT}/manifests/x/build", {"name": "x", "csrf": csrf})
    assert build.status_code == 404
    assert pages.client.get("/api/console/whoami", query_string={"api-version": "2017-09-01-preview"},
                            headers={"Authorization": f"Bearer {token}"}).get_json()["account"]["accountName"] == "mine"


def test_the_admin_switches_between_accounts(pages: Pages):
    pages.api().call("POST", "/api/admin/accounts", account=False, json={"accountName": "second"})
    pages.sign_in()
    html = pages.get(f"{DEFAULT}/").text
    assert '<option value="default/default/second">second</option>' in html
    switched = pages.get("/switch?account=default/default/second")
    assert switched.headers["Location"].endswith("/ui/accounts/default/default/second/")
    assert pages.get("/switch?account=nonsense").status_code == 400


# -- CSRF on every state-changing route ----------------------------------------------------

def console_of(pages: Pages) -> Flask:
    """The console's own Flask app, mounted at /ui beside the API."""
    return pages.app.wsgi_app.mounts["/ui"]


def console_post_routes() -> list[str]:
    """The endpoints of every console route that takes POST, read from the url_map of a
    throwaway installation: a route added later is in this list without a test's change."""
    with tempfile.TemporaryDirectory() as home, console_pages(Path(home)) as pages:
        return sorted(rule.endpoint for rule in console_of(pages).url_map.iter_rules() if "POST" in rule.methods)


POST_ROUTES = console_post_routes()
# every field any of these forms takes, each with a value the action would accept
FORM = {"name": "made-by-csrf", "keyType": "Primary", "numReplicas": "1", "body": '{"data": [[1, 2]]}',
        "compute": "local"}


def test_the_console_has_state_changing_routes_to_guard():
    assert {"auth.sign_in", "auth.sign_out", "models.build", "images.deploy", "services.reveal_keys",
            "services.try_it", "services.regenerate", "services.delete", "services.update",
            "services.scale"} <= set(POST_ROUTES), POST_ROUTES


def everything(pages: Pages) -> dict[str, Any]:
    """What any console action could change: images, services and their keys, operations,
    counts, the sessions on disk, and whether this client is still signed in."""
    api = pages.api()
    services = api.call("GET", "/services")["value"]
    return {"summary": api.call("GET", "/console/summary"), "images": api.call("GET", "/images")["value"],
            "services": services,
            "keys": {service["id"]: api.call("GET", f"/services/{service['id']}/keys") for service in services},
            "sessions": sorted(path.name for path in (pages.home / "console" / "sessions").iterdir()),
            "signed in": pages.get(f"{DEFAULT}/").status_code}


@pytest.mark.parametrize("endpoint", POST_ROUTES)
def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(
        pages: Pages, endpoint: str):
    built = built_image(pages, "guarded")
    other = built_image(pages, "another")  # an image to update the service to
    service_id = deployed_service(pages, built["id"], "guarded")
    values = {"sub": "default", "rg": "default", "account": "default", "manifest_id": built["manifest"]["id"],
              "image_id": built["id"], "service_id": service_id}
    rule = next(rule for rule in console_of(pages).url_map.iter_rules() if rule.endpoint == endpoint)
    assert rule.arguments <= values.keys(), f"give this test a value for {rule.arguments - values.keys()}"
    path = console_of(pages).url_map.bind("localhost").build(endpoint, values, method="POST")
    form = {**FORM, "imageId": other["id"], "token": pages.admin_token}
    another_session = Pages(pages.app, pages.home, pages.app.test_client()).sign_in()  # a real token, not ours
    csrf = pages.sign_in()
    assert another_session != csrf
    before = everything(pages)

    for refused in (pages.post(path, form), pages.post(path, {**form, "csrf": another_session}),
                    pages.post(path, form, headers={"X-CSRF-Token": another_session}),
                    pages.post(path, {**form, "csrf": ""}, headers={"X-CSRF-Token": ""})):
        assert refused.status_code == 403, (path, refused.status_code)
        assert "CSRF token missing or wrong" in refused.text
        assert everything(pages) == before, path

    # the same request with this session's token gets past the check: the refusals were CSRF's
    assert pages.post(path, {**form, "csrf": csrf}).status_code != 403


# -- the build log stream ----------------------------------------------------------------

def test_the_build_log_streams_whole_lines_then_the_end(pages: Pages):
    api = pages.api()
    manifest = register_manifest(api, "logged")
    api.call("POST", "/images", json={"name": "logged", "manifestId": manifest["id"], "imageType": "Docker",
                                      "computeResourceId": "local"})
    image_id = api.call("GET", "/images")["value"][0]["id"]
    log = pages.app.config["MOMA_SETTINGS"].builder_config().build_log_dir / f"{image_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("step one\nstep two\r\nhalf a li")
    store = pages.app.extensions["moma.store"]
    operation = store.operations.claim("test-worker", 60_000, 3)
    pages.sign_in()

    page = pages.get(f"{DEFAULT}/images/{image_id}").text
    assert "step one\nstep two\r\n</pre>" in page and "half a li" not in page  # whole lines only
    offset = re.search(r'data-stream="[^"]*offset=(\d+)"', page).group(1)
    assert offset == str(len("step one\nstep two\r\n"))

    store.images.complete(operation.id, "test-worker", image_id, "Failed", error={"message": "broken"})
    log.write_text("step one\nstep two\r\nhalf a line, then the rest")
    events = pages.client.get(f"/ui{DEFAULT}/images/{image_id}/log", headers={"Last-Event-ID": offset}).text
    assert events.endswith("event: log\nid: 45\ndata: half a line, then the rest\n\n"
                           "event: end\nid: 45\ndata: Failed\n\n"), events
    replayed = pages.client.get(f"/ui{DEFAULT}/images/{image_id}/log?offset=0").text
    assert "id: 19\ndata: step one\ndata: step two\n\nevent: log\nid: 45\ndata: half a line" in replayed
    final = pages.get(f"{DEFAULT}/images/{image_id}").text
    assert "data-stream" not in final and "The build ended: Failed." in final


# -- the API routes the console added ---------------------------------------------------------

def test_console_api_routes_check_their_input(pages: Pages):
    admin = pages.api()
    assert admin.call("GET", "/api/console/whoami", account=False) == {"admin": True, "tokenName": "admin",
                                                                      "account": None}
    answer = pages.client.get(f"{Scope().path}/console/artifactSizes",
                              query_string={"api-version": "2017-09-01-preview", "sha256": "../etc"},
                              headers={"Authorization": f"Bearer {pages.admin_token}"})
    assert answer.status_code == 400 and "sha256" in answer.get_json()["message"]
    unknown = pages.client.get(f"{Scope().path}/console/images/nope/labels",
                               query_string={"api-version": "2017-09-01-preview"},
                               headers={"Authorization": f"Bearer {pages.admin_token}"})
    assert unknown.status_code == 404
    anonymous = pages.client.get(f"{Scope().path}/console/summary", query_string={"api-version": "2017-09-01-preview"})
    assert anonymous.status_code == 401


@pytest.mark.parametrize("path", ["/signin", f"{DEFAULT}/", "/static/console.js"])
def test_every_answer_forbids_framing_and_inline_scripts(pages: Pages, path: str):
    pages.sign_in()
    with pages.get(path) as response:
        assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
