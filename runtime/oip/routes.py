"""The ``/v2`` paths: which route a path is, and the routes' names (the metrics'
``route`` labels: a model's routes are counted by template, so label sets stay fixed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

LIVE, READY, SERVER = "/v2/health/live", "/v2/health/ready", "/v2"
MODEL, MODEL_READY, INFER = "/v2/models/{name}", "/v2/models/{name}/ready", \
    "/v2/models/{name}/infer"
ROUTES = (SERVER, LIVE, READY, MODEL, MODEL_READY, INFER)  # metric labels
OPEN_PATHS = frozenset({LIVE, READY})


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    route: str | None        # one of ROUTES; None: no such route
    name: str | None = None
    version: str | None = None


def is_oip_path(path: str) -> bool:
    return path.startswith("/v2") and (len(path) == 3 or path[3] == "/")


def match(path: str) -> Match:
    """Which route a ``/v2`` path is (names and versions are single path segments)."""
    rest = path.split("/")[2:]
    if rest in ([], [""]):
        return Match(SERVER)
    if rest == ["health", "live"]:
        return Match(LIVE)
    if rest == ["health", "ready"]:
        return Match(READY)
    if len(rest) < 2 or rest[0] != "models" or not rest[1]:
        return Match(None)
    name, rest, version = _text(rest[1]), rest[2:], None
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = _text(rest[1]), rest[2:]
    route = {(): MODEL, ("ready",): MODEL_READY, ("infer",): INFER}.get(tuple(rest))
    return Match(route, name, version)


def _text(segment: str) -> str:
    """A WSGI path segment (UTF-8 bytes as latin-1 text, PEP 3333) as the text it is."""
    try:
        return segment.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return segment


class Router:
    """``match`` for any path, None for paths outside ``/v2``; the paths of the models
    served (and the fixed routes) are looked up in a table built once."""

    def __init__(self, models: Iterable[tuple[str, str | None]]) -> None:
        paths = [SERVER, LIVE, READY]
        for name, version in models:
            bases = [f"/v2/models/{name}"]
            if version is not None:
                bases.append(f"/v2/models/{name}/versions/{version}")
            paths += [base + tail for base in bases for tail in ("", "/ready", "/infer")]
        self.known = {wsgi: match(wsgi) for wsgi in map(_wsgi, paths)}

    def match(self, path: str) -> Match | None:
        found = self.known.get(path)
        if found is None and is_oip_path(path):
            return match(path)
        return found


def _wsgi(path: str) -> str:
    """A path as WSGI gives it: its UTF-8 bytes as latin-1 text."""
    return path.encode("utf-8").decode("latin-1")
