"""The files a wheel set is made of, read from uv's lock of it (PEP 751 ``pylock.toml``).

Per package: the wheel that fits the image best (the first of the target's tags, in
order of preference, that one of the locked wheels carries), else its source archive
(to be built into a wheel on the host); a direct reference by its URL; a wheel asset of
the manifest by its path. Every file comes with the sha256 the index gave for it.
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .errors import RequirementsError

_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+!-]{0,254}")  # wheel names may carry '+' and '!'


@dataclass(frozen=True)
class LockedFile:
    package: str  # name==version, for messages
    filename: str
    sha256: str | None
    url: str | None = None  # where to fetch it
    path: Path | None = None  # a file on this host: a wheel asset

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def locked_files(lock_text: str, tags: Sequence[Tag]) -> list[LockedFile]:
    """The file to fetch for each package of the lock, best fitting wheel first."""
    try:
        lock = tomllib.loads(lock_text)
    except tomllib.TOMLDecodeError as exc:
        raise RequirementsError(f"uv wrote a lock that cannot be read: {exc}") from exc
    rank = {tag: index for index, tag in enumerate(tags)}
    return [_package_file(package, rank) for package in lock.get("packages", [])]


def _package_file(package: dict[str, Any], rank: dict[Tag, int]) -> LockedFile:
    label = f"{package.get('name')}=={package.get('version')}"
    ranked = [(found, wheel) for wheel in package.get("wheels", []) if (found := _best_rank(wheel, rank)) is not None]
    if ranked:
        return _entry(label, min(ranked, key=lambda item: item[0])[1])
    if "archive" in package:
        return _entry(label, package["archive"])
    if "sdist" in package:
        return _entry(label, package["sdist"])
    raise RequirementsError(f"{label}: no file of it fits the image (the lock offers "
                            f"{', '.join(sorted(set(package) - {'name', 'version', 'marker'})) or 'nothing'})")


def _best_rank(wheel: dict[str, Any], rank: dict[Tag, int]) -> int | None:
    try:
        _, _, _, wheel_tags = parse_wheel_filename(_filename(wheel))
    except InvalidWheelFilename:
        return None
    ranks = [rank[tag] for tag in wheel_tags if tag in rank]
    return min(ranks) if ranks else None


def _entry(label: str, item: dict[str, Any]) -> LockedFile:
    sha256 = (item.get("hashes") or {}).get("sha256")
    if "path" in item:
        return LockedFile(label, _checked(Path(item["path"]).name), sha256, path=Path(item["path"]))
    return LockedFile(label, _filename(item), sha256, url=item["url"])


def _filename(item: dict[str, Any]) -> str:
    url = item.get("url") or item.get("path") or ""
    return _checked(item.get("name") or Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name)


def _checked(name: str) -> str:
    if not _FILE_NAME.fullmatch(name):
        raise RequirementsError(f"the lock names a file {name!r}, which is not a usable file name")
    return name
