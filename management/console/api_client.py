"""The console's one way to data: the management API, called in-process through its WSGI
app with the signed-in user's token. The same routes, validation and permission checks
answer as for a client over HTTP; only the socket is missing. An error answer becomes
:class:`ApiError` carrying the API's message and request id, which pages show as they are.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterator

from flask import Flask
from werkzeug.test import Client

from ..config import SUPPORTED_API_VERSIONS

API_VERSION = SUPPORTED_API_VERSIONS[0]


class ApiError(Exception):
    """An error answer of the API (or of a scoring service reached on its behalf)."""

    def __init__(self, status: int, message: str, request_id: str = "", code: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.request_id, self.code = status, message, request_id, code


@dataclass(frozen=True)
class Scope:
    """An account, as the API's paths name it."""

    subscription_id: str
    resource_group: str
    account: str

    @property
    def api_path(self) -> str:
        sub, rg, name = (urllib.parse.quote(part, safe="") for part in self.parts)
        return f"/api/subscriptions/{sub}/resourceGroups/{rg}/accounts/{name}"

    def path(self, *segments: str) -> str:
        """The API path of something in this account, each segment quoted whole."""
        return "/".join([self.api_path, *(urllib.parse.quote(segment, safe="") for segment in segments)])

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.subscription_id, self.resource_group, self.account

    @classmethod
    def of(cls, account: dict[str, str]) -> "Scope":
        """From the API's account JSON."""
        return cls(account["subscriptionId"], account["resourceGroupName"], account["accountName"])


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def operation_id(self) -> str:
        """The id at the end of an Operation-Location header."""
        return self.headers.get("Operation-Location", "").rsplit("/", 1)[-1]


class Api:
    def __init__(self, app: Flask, token: str) -> None:
        self._client = Client(app, use_cookies=False)
        self._authorization = f"Bearer {token}"

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
             headers: dict[str, str] | None = None, accept: tuple[int, ...] = ()) -> Answer:
        """One API request; ApiError for an error answer, unless its status is in ``accept``."""
        query = {"api-version": API_VERSION, **{k: v for k, v in (params or {}).items() if v not in (None, "")}}
        response = self._client.open(path, method=method, query_string=query, json=json,
                                     headers={"Authorization": self._authorization, **(headers or {})})
        try:
            answer = Answer(response.status_code, dict(response.headers), response.get_data())
        finally:
            response.close()
        if answer.status >= 400 and answer.status not in accept:
            raise _error(answer)
        return answer

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params).json()

    def created(self, where: "Scope", answer: Answer) -> str:
        """The id of what an accepted request (202 + Operation-Location) makes."""
        return self.get(where.path("operations", answer.operation_id))["resourceLocation"].rsplit("/", 1)[-1]

    def pages(self, path: str, limit: int, **params: Any) -> Iterator[dict[str, Any]]:
        """Items of a paged list, following ``$skipToken``, ``limit`` at most."""
        body = self.get(path, **params)
        items = body.get("value", [])
        while True:
            yield from items[:limit]
            limit -= len(items)
            token = next_token(body)
            if limit <= 0 or token is None:
                return
            body = self.get(path, **params, **{"$skipToken": token})
            items = body.get("value", [])


def fixable(error: ApiError) -> bool:
    """A refusal the user can put right on the same page (a bad or taken name...): shown
    beside the form; other errors (401, 404, 5xx) get the error page."""
    return 400 <= error.status < 500 and error.status not in (401, 404)


def next_token(page: dict[str, Any]) -> str | None:
    """The ``$skipToken`` of a page's ``nextLink``, if there is a next page."""
    link = page.get("nextLink")
    if not link:
        return None
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query).get("$skipToken", [None])[0]


def _error(answer: Answer) -> ApiError:
    request_id = answer.headers.get("x-ms-request-id", "")
    try:
        body = answer.json()
        message, code = str(body.get("message") or answer.status), str(body.get("code") or "")
    except (ValueError, AttributeError):
        message, code = f"the API answered {answer.status}", ""
    return ApiError(answer.status, message, request_id, code)
