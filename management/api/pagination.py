"""``count`` and ``$skipToken`` in, ``nextLink`` out (on ``MOMA_PUBLIC_URL``, or
host-relative). The token is an opaque, signed-free base64 of the last ``seq`` served
(keyset pagination: stable under concurrent inserts, and as fast at the end of a list as
at its start)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from flask import request

from ..errors import BadRequest, Detail
from ..store.common import Page
from .request_context import link

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_SEQ = 2**31 - 1  # seq columns are 32-bit integers on PostgreSQL


def page_args() -> tuple[int, int | None]:
    return _count(), _after()


def paginated(page: Page, filters: dict[str, str | None], items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"value": page.items if items is None else items}
    if page.next_after is not None:
        query = {"api-version": request.args["api-version"], **{k: v for k, v in filters.items() if v is not None},
                 "count": str(_count()), "$skipToken": _token(page.next_after)}
        body["nextLink"] = link(f"{request.path}?{urlencode(query)}")
    return body


def _count() -> int:
    raw = request.args.get("count")
    if raw is None or raw == "":
        return DEFAULT_COUNT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_COUNT:  # "²".isdigit() is True
        raise BadRequest(f"count must be an integer from 1 to {MAX_COUNT}, got {raw!r}",
                         [Detail("InvalidCount", f"count: {raw!r}")])
    return int(raw)


def _after() -> int | None:
    raw = request.args.get("$skipToken")
    if not raw:
        return None
    try:
        # validate=True: a character outside the alphabet (a newline...) fails rather than being skipped
        after = json.loads(base64.b64decode(raw.encode() + b"=" * (-len(raw) % 4), altchars=b"-_",
                                            validate=True))["after"]
        if type(after) is not int or not 0 <= after <= MAX_SEQ:  # type(): True is an int too
            raise ValueError(after)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("$skipToken is not a token this server handed out",
                         [Detail("InvalidSkipToken", "follow nextLink as it is")]) from exc
    return after


def _token(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")
