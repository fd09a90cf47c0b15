"""A small HTTP client of the management API, used by the CLI. Server errors come back
as the same error classes the server raised, with the server's message and request id."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import requests

from .config import SUPPORTED_API_VERSIONS
from .errors import (
    BadRequest,
    Conflict,
    Detail,
    Forbidden,
    MethodNotAllowed,
    MomaError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)

_BY_STATUS: dict[int, type[MomaError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
    413: PayloadTooLarge, 415: UnsupportedMediaType,
}


class ServerUnreachable(MomaError):
    code = "ServerUnreachable"


class ForeignLink(MomaError):
    """A link from the server to another origin than the one this client was given."""

    code = "ForeignLink"


class ServerError(MomaError):
    """The server's answer, with its request id for the operator."""

    def __init__(self, message: str, status: int, request_id: str, details: list[Detail] | None = None) -> None:
        super().__init__(message, details)
        self.status = status
        self.request_id = request_id


@dataclass(frozen=True)
class Scope:
    subscription_id: str = "default"
    resource_group: str = "default"
    account: str = "default"

    @property
    def path(self) -> str:
        return (f"/api/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/accounts/{self.account}")


class ApiClient:
    def __init__(self, url: str, token: str | None, scope: Scope = Scope(), timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.scope = scope
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             data: BinaryIO | None = None, headers: dict[str, str] | None = None,
             account: bool = True) -> requests.Response:
        """One request to ``path`` (under the account unless ``account`` is False);
        raises ServerError for any error answer."""
        url = f"{self.url}{self.scope.path if account else ''}{path}"
        query = {"api-version": SUPPORTED_API_VERSIONS[0], **(params or {})}
        return self._send(method, url, json=json, params=query, data=data, headers=headers)

    def get_url(self, url: str) -> requests.Response:
        """GET a link the server handed out (nextLink, imageBuildLogUri), verbatim, when it
        is on this client's server (a host-relative one is): the request carries the token."""
        target = urllib.parse.urljoin(self.url + "/", url)
        if _origin(target) != _origin(self.url):
            raise ForeignLink(f"the server handed out a link to another server, {_origin_text(target)} "
                              f"(in {url[:200]!r}); not followed, as it would carry the token there. If the server "
                              f"is {self.url} under another name, set its MOMA_PUBLIC_URL to {self.url}")
        return self._send("GET", target)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise ServerUnreachable(f"cannot reach the moma server at {self.url} (is `moma serve` running? "
                                    "set --url or MOMA_URL)") from exc
        except requests.Timeout as exc:
            raise ServerUnreachable(f"the moma server at {self.url} did not answer "
                                    f"within {self.timeout:.0f} s") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        body = self.call("GET", path, params=params).json()
        while True:
            yield from body.get("value", [])
            if not body.get("nextLink"):
                return
            body = self.get_url(body["nextLink"]).json()


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; a malformed port is
    no port, which matches no configured server."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}" if host else repr(url[:200])


def _error(response: requests.Response) -> ServerError:
    request_id = response.headers.get("x-ms-request-id", "")
    try:
        body = response.json()
        message = body.get("message") or response.reason
        details = [Detail(d.get("code", ""), d.get("message", "")) for d in body.get("details") or []]
    except ValueError:
        message, details = f"{response.status_code} {response.reason}", []
    error = ServerError(message, response.status_code, request_id, details)
    error.code = _BY_STATUS.get(response.status_code, MomaError).code
    return error
