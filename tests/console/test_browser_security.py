"""The console's security in a real browser against a real ``moma serve``: the session
cookie and headers, sign-out, account isolation, escaping, and CSRF (a form posted from
another origin, and requests without the token)."""

from __future__ import annotations

import http.server
import re
import threading
from typing import Any, Iterator

import pytest

from bench.moma_server import free_port
from management.client import ServerError

from .conftest import Browser, browsing

pytestmark = [pytest.mark.docker, pytest.mark.slow]
DEFAULT = "/accounts/default/default/default"
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def other_account(server: Any) -> dict[str, str]:
    """A second account with a token of its own, and a model in each account."""
    admin = server.client()
    admin.call("POST", "/api/admin/accounts", json={"accountName": "other"}, account=False)
    token = admin.call("POST", "/api/admin/tokens", json={"name": "other-user", "accountName": "other"},
                       account=False).json()["token"]
    secret = admin.call("POST", "/models", json={"name": "secret-model", "url": "https://example.com/m.pkl",
                                                 "mimeType": "application/octet-stream"}).json()
    return {"token": token, "secret_model": secret["id"]}


def test_the_session_cookie_is_httponly_strict_and_the_pages_forbid_framing_and_inline_scripts(browser: Browser,
                                                                                                 server: Any):
    cookie = next(c for c in browser.context.cookies() if c["name"] == "moma_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui/"
    assert cookie["secure"] is False  # plain HTTP here; Secure over TLS (tests/console/test_pages.py)
    assert server.token not in cookie["value"]
    response = browser.page.goto(f"{server.url}/ui{DEFAULT}/models")
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert browser.page.evaluate("() => document.cookie") == ""  # HttpOnly: out of scripts' reach


def test_sign_out_ends_the_session_even_for_a_copy_of_the_cookie(chromium: Any, server: Any):
    with browsing(chromium, server.url, server.token) as console:
        copy = [c for c in console.context.cookies() if c["name"] == "moma_console"]
        console.page.get_by_role("button", name="Sign out").click()
        assert "You signed out." in console.page.locator(".notice").inner_text()
        assert not [c for c in console.context.cookies() if c["name"] == "moma_console"]
    with browsing(chromium, server.url, None) as replay:
        replay.context.add_cookies(copy)
        replay.account("/")
        assert replay.page.url.endswith("/ui/signin?next=/ui/accounts/default/default/default/")


def test_a_wrong_token_is_refused_with_the_api_message_and_request_id(chromium: Any, server: Any):
    with browsing(chromium, server.url, None) as console:
        page = console.open("/signin")
        page.get_by_label("API token").fill("moma_not-a-token")
        page.get_by_role("button", name="Sign in").click()
        assert page.locator(".error p").first.inner_text() == "the bearer token is not valid or was revoked"
        assert re.fullmatch(r"request id [0-9a-f-]{36}", page.locator(".error .request-id").inner_text())
        assert "Traceback" not in page.content()


def test_an_account_token_sees_only_its_account(chromium: Any, server: Any, other_account: dict[str, str],
                                                console_service: dict[str, Any]):
    with browsing(chromium, server.url, other_account["token"]) as console:
        page = console.page
        assert page.url.endswith("/ui/accounts/default/default/other/")
        assert page.locator("select#account-switcher").count() == 0
        assert page.locator("#count-models").inner_text() == "0"
        for path in (f"{DEFAULT}/", f"{DEFAULT}/models", f"{DEFAULT}/models/{other_account['secret_model']}",
                     f"{DEFAULT}/services/{console_service['id']}"):
            console.open(path)
            assert page.locator("h1").inner_text() == "404", path
            assert page.locator(".error p").first.inner_text() == "account default/default/default not found"
        console.open(f"/accounts/default/default/other/services/{console_service['id']}")
        assert page.locator(".error p").first.inner_text() == f"service {console_service['id']} not found"
        answer = page.request.get(f"{server.url}/ui{DEFAULT}/services/{console_service['id']}/metrics.json",
                                  headers={"Accept": "application/json"})
        assert answer.status == 404 and answer.json()["message"] == "account default/default/default not found"
        assert "secret-model" not in console.open("/accounts/default/default/other/models").content()


def test_model_text_is_escaped(browser: Browser, server: Any):
    admin = server.client()
    with pytest.raises(ServerError) as refused:  # names are [A-Za-z0-9-]: markup cannot be one
        admin.call("POST", "/models", json={"name": XSS, "url": "https://example.com/m.pkl", "mimeType": "text/plain"})
    assert refused.value.status == 400
    admin.call("POST", "/models", json={"name": "xss", "tags": [XSS], "description": "<img src=x onerror=alert(2)>",
                                        "url": "https://example.com/m.pkl", "mimeType": "application/octet-stream"})
    for path in (f"{DEFAULT}/models?name=xss", f"{DEFAULT}/models?name={XSS}", f"{DEFAULT}/models?tag={XSS}"):
        page = browser.open(path)
        html = page.content()
        assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    page = browser.open(f"{DEFAULT}/models?tag={XSS}")
    assert page.get_by_label("Tag").input_value() == XSS
    assert page.locator(".tag").first.inner_text() == XSS
    page.locator("#models a", has_text="xss").click()
    assert page.locator(".tag").first.inner_text() == XSS
    assert "<img src=x onerror=alert(2)>" in page.locator("dl.facts").inner_text()
    assert page.locator("img").count() == 0
    assert browser.dialogs == []


@pytest.fixture
def attacker_site() -> Iterator[dict[str, Any]]:
    """Another origin (same host, another port) serving whatever page a test sets."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            body = pages.get(self.path, "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "pages": pages}
    httpd.shutdown()
    httpd.server_close()


def test_csrf_a_form_from_another_origin_or_without_the_token_changes_nothing(
        browser: Browser, server: Any, console_service: dict[str, Any], attacker_site: dict[str, Any]):
    target = f"{server.url}/ui{DEFAULT}/services/{console_service['id']}"
    keys = server.client().call("GET", f"/services/{console_service['id']}/keys").json()
    attacker_site["pages"]["/"] = (
        f'<form id="f" method="post" action="{target}/regenerate"><input name="keyType" value="Secondary"></form>'
        '<script>document.getElementById("f").submit()</script>')
    browser.page.goto(attacker_site["url"] + "/")
    browser.page.wait_for_url(f"{target}/regenerate")
    assert browser.page.locator("h1").inner_text() == "403"
    assert "CSRF" in browser.page.locator(".error p").first.inner_text()

    request = browser.context.request  # the signed-in browser's cookies, no CSRF token
    for action, form in (("regenerate", {"keyType": "Secondary"}), ("delete", {}), ("scale", {"numReplicas": "2"})):
        answer = request.post(f"{target}/{action}", form=form, headers={"Accept": "text/html"})
        assert answer.status == 403, (action, answer.status)
        answer = request.post(f"{target}/{action}", form={**form, "csrf": "forged"}, headers={"Accept": "text/html"})
        assert answer.status == 403, (action, answer.status)
    assert server.client().call("GET", f"/services/{console_service['id']}/keys").json() == keys
    assert server.client().call("GET", f"/services/{console_service['id']}").json()["state"] == "Succeeded"


def test_the_token_never_appears_in_urls_or_the_server_log(browser: Browser, server: Any,
                                                           console_service: dict[str, Any]):
    browser.account(f"/services/{console_service['id']}")
    browser.page.get_by_role("button", name="Reveal keys").click()
    browser.account("/models")
    assert browser.requests and not [url for url in browser.requests if server.token in url]
    assert server.token not in server.log.read_text()
