"""The CLI follows links the server hands out (``nextLink``, a build log's URI) only to
the server it was given: scheme, host and port. A link elsewhere would carry the token
there; it ends the command with a clear error instead, and nothing reaches the other
server. Against stub servers that answer as a moma server would (real HTTP), and the
real `moma serve` (its links are on its own address, whatever the Host header)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from bench.moma_server import MomaServer

from .conftest import Cli

MODEL = {"id": "0" * 32, "name": "m", "version": 1, "tags": [], "url": "https://example.com/m.pkl",
         "mimeType": "application/octet-stream", "createdAt": "2017-09-01T00:00:00.000Z"}


class Stub:
    """An HTTP server on 127.0.0.1 that answers every GET with ``answer(path)`` as JSON and
    records each request's path and Authorization header."""

    def __init__(self, answer: Callable[[str], dict[str, Any]]) -> None:
        self.requests: list[tuple[str, str | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                stub.requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps(answer(self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Stub":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Stub]:
    with Stub(lambda path: {"value": [MODEL]}) as stub:
        yield stub


def _first_page_linking_to(link: Callable[[Stub], str], elsewhere: Stub) -> Callable[[str], dict[str, Any]]:
    def answer(path: str) -> dict[str, Any]:
        if "$skipToken" in path or "%24skipToken" in path:
            return {"value": [{**MODEL, "version": 2}]}
        return {"value": [MODEL], "nextLink": link(elsewhere)}
    return answer


@pytest.mark.parametrize("link", [
    lambda other: f"{other.url}/api/subscriptions/default/resourceGroups/default/accounts/default/models?"
                  "api-version=2017-09-01-preview&$skipToken=x",
    lambda other: f"//127.0.0.1:{other.url.rsplit(':', 1)[1]}/api/models?$skipToken=x",
    lambda other: f"http://127.0.0.1:1@127.0.0.1:{other.url.rsplit(':', 1)[1]}/models?$skipToken=x",
    lambda other: f"https://127.0.0.1:{other.url.rsplit(':', 1)[1]}/models?$skipToken=x",
], ids=["other-port", "scheme-relative", "userinfo", "other-scheme"])
def test_a_next_link_to_another_server_is_not_followed(tmp_path: Path, elsewhere: Stub, link) -> None:
    with Stub(_first_page_linking_to(link, elsewhere)) as server:
        result = Cli(tmp_path, server.url, {"MOMA_TOKEN": "moma_secret"})("model", "list", ok=False)

    assert result.returncode == 1, result
    assert result.stderr.startswith("error: the server handed out a link to another server"), result
    assert f"set its MOMA_PUBLIC_URL to {server.url}" in result.stderr
    assert elsewhere.requests == [], "the token went to another server"
    assert [auth for _, auth in server.requests] == ["Bearer moma_secret"]


@pytest.mark.parametrize("link", [
    lambda server: f"{server.url}/api/subscriptions/default/resourceGroups/default/accounts/default/models?"
                   "api-version=2017-09-01-preview&$skipToken=x",
    lambda server: "/api/subscriptions/default/resourceGroups/default/accounts/default/models?"
                   "api-version=2017-09-01-preview&$skipToken=x",
    lambda server: server.url.replace("http://", "HTTP://") + "/models?$skipToken=x",
], ids=["absolute", "host-relative", "upper-case-scheme"])
def test_a_next_link_on_the_same_server_is_followed(tmp_path: Path, link) -> None:
    holder: dict[str, Stub] = {}
    with Stub(lambda path: _first_page_linking_to(link, holder["server"])(path)) as server:
        holder["server"] = server
        listed = Cli(tmp_path, server.url, {"MOMA_TOKEN": "moma_secret"}).json("model", "list")

    assert [model["version"] for model in listed] == [1, 2]
    assert len(server.requests) == 2


def test_moma_serve_links_are_on_its_own_address(server: MomaServer) -> None:
    """`moma serve` defaults MOMA_PUBLIC_URL to its bind address: the 2017 clients that GET
    nextLink verbatim get an absolute link, and a Host header changes nothing."""
    client = server.client()
    for number in range(2):
        client.call("POST", "/models", json={"name": "linked", "url": f"https://example.com/{number}.pkl",
                                             "mimeType": "application/octet-stream"})

    page = requests.get(f"{server.url}{client.scope.path}/models", timeout=30,
                        params={"api-version": "2017-09-01-preview", "count": "1", "name": "linked"},
                        headers={"Authorization": f"Bearer {server.token}", "Host": "evil.example"}).json()

    assert page["nextLink"].startswith(f"{server.url}{client.scope.path}/models?")
    document = requests.get(f"{server.url}/swagger.json", headers={"Authorization": f"Bearer {server.token}",
                                                                   "Host": "evil.example"}, timeout=30).json()
    assert document["host"] == server.url.removeprefix("http://")
