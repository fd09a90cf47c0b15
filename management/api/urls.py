"""Which asset and model URLs the API accepts: ``http(s)://`` (blob SAS URLs
included), ``file://`` only under the configured roots, and ``artifact://`` URLs of
files this account uploaded. Checked at registration, so a bad URL fails at once
rather than later in a build. Control characters are refused: ``urlsplit`` silently
drops tabs and newlines, so the URL checked would not be the URL stored."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from ..artifacts import SCHEME as ARTIFACT
from ..artifacts import parse_url
from ..errors import Detail, ValidationFailed
from .extensions import get_store
from .request_context import current_account, settings


def check_url(url: str, field: str) -> None:
    if any(ord(char) < 0x20 or ord(char) == 0x7f for char in url):
        _refuse(field, "contains a control character (a newline, a tab...); percent-encode it")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        _refuse(field, "is not a valid URL")
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            _refuse(field, "has no host")
    elif parts.scheme == "file":
        _check_file(parts, field)
    elif parts.scheme == ARTIFACT:
        _check_artifact(parts, field)
    else:
        _refuse(field, f"scheme {parts.scheme or '(none)'!r} is not supported; use https://, file:// or an "
                       f"artifact:// URL from the upload route")


def _check_file(parts: urllib.parse.SplitResult, field: str) -> None:
    roots = settings().builder_config().file_roots
    path = Path(urllib.parse.unquote(parts.path)).resolve()
    if parts.netloc not in ("", "localhost") or not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots) or "none configured (MOMA_FILE_ROOTS)"
        _refuse(field, f"file:// URLs must lie under an allowed root ({allowed})")


def _check_artifact(parts: urllib.parse.SplitResult, field: str) -> None:
    try:
        sha256 = parse_url(parts)
    except ValueError:
        _refuse(field, "is not an artifact URL of the form artifact://sha256/<hex>/<name>")
    if not get_store().artifacts.owned(current_account().id, sha256):
        _refuse(field, "names an artifact this account has not uploaded")


def _refuse(field: str, reason: str) -> None:
    raise ValidationFailed(f"{field} {reason}", [Detail("InvalidUrl", f"{field}: {reason}")])
