"""Console pages through Flask's test client over a real store: sign-in, the session
cookie, CSRF, escaping, paging and filters, errors as the API gives them, account
isolation, the build log stream, and the API routes the console added."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from management.client import Scope
from management.console import overview

from .conftest import Pages, console_pages, csrf_of

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
