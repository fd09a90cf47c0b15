"""The boundary between the Docker SDK and the engine layer: every engine method runs
its Docker calls inside :func:`docker_errors`, and nothing else here catches the SDK's
errors to report them (code may still catch ``NotFound`` to decide what to do).

What leaves, always with the SDK's exception as ``__cause__``:

- EngineTimeout: the engine did not answer within the client's timeout;
- EngineUnavailable: no engine answers at that address (refused, reset, unreachable);
- EngineError: the engine answered, and said no (an API error), or the SDK refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import docker.errors
import requests
import urllib3.exceptions

from . import EngineError, EngineTimeout, EngineUnavailable

# urllib3's NewConnectionError (refused, no route) is a kind of its TimeoutError: it is looked for first.
_REFUSED = (urllib3.exceptions.NewConnectionError, ConnectionError)
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
_UNREACHABLE = (requests.ConnectionError, urllib3.exceptions.HTTPError)


@contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Map what the Docker SDK raises in the block to an EngineError about ``what``
    (e.g. ``"local engine: cannot remove service X"``)."""
    try:
        yield
    except EngineError:
        raise
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {explain(exc)}") from exc
    except (docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if not _caused_by(exc, _REFUSED) and _caused_by(exc, _TIMEOUTS):
            raise EngineTimeout(f"{what}: the Docker engine did not answer in time") from exc
        if _caused_by(exc, _REFUSED + _UNREACHABLE):
            raise EngineUnavailable(f"{what}: no Docker engine answers: {exc}") from exc
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            raise  # a file of ours, not the engine: a bug to see with its traceback
        raise EngineError(f"{what}: {explain(exc)}") from exc


def explain(exc: BaseException) -> str:
    """The engine's own words when it gave some."""
    return str(getattr(exc, "explanation", None) or exc)


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or an exception it wraps (the SDK wraps requests, which wraps
    urllib3, which wraps the socket's) is one of ``kinds``."""
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None),
                    *(arg for arg in current.args if isinstance(arg, BaseException))]
    return False
