"""``python -m runtime.healthcheck``: exit 0 when this container's own runtime answers
``GET http://127.0.0.1:$PORT/readyz`` with 200, else 1.

Other containers may listen on the same port (SO_REUSEPORT: a local update, swarm's
host mode), so when ``MOMA_INSTANCE_ID`` is set it asks on new connections until its
own instance answers (``MOMA_INSTANCE``, the name, is accepted too: images older than
the opaque id answered with it). The answer's body is printed, so that an engine
reading the health log sees why a starting instance failed. Standard library only (it
runs even when the app's dependencies are broken), no proxies, at most
``HEALTHCHECK_SECONDS`` in all.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Mapping

from .contract import ENV_INSTANCE, ENV_INSTANCE_ID, ENV_PORT, HEALTHCHECK_SECONDS, PORT

RETRY_S = 0.1  # after a refused connection
SHOWN_BYTES = 2000


def check(port: int, me: tuple[str, ...] = (), seconds: float = HEALTHCHECK_SECONDS) -> tuple[bool, bytes]:
    """Whether /readyz answered 200, and its body: the first answer when ``me`` is empty,
    else the first from an instance named in ``me``; (False, b"") when none came in time."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        answer = _ask(port, left)
        if answer is None:
            time.sleep(min(RETRY_S, max(0.0, end - time.monotonic())))
            continue
        status, body = answer
        if not me or _instance(body) in me:
            return status == 200, body
    return False, b""


def main(environ: Mapping[str, str] = os.environ) -> int:
    try:
        port = int(environ.get(ENV_PORT) or PORT)
    except ValueError:
        return 1
    instance_id = environ.get(ENV_INSTANCE_ID)  # without one, whichever instance answers decides
    me = tuple(filter(None, (instance_id, environ.get(ENV_INSTANCE)))) if instance_id else ()
    ready, body = check(port, me)
    if body:
        print(body[:SHOWN_BYTES].decode(errors="replace"))
    return 0 if ready else 1


def _ask(port: int, timeout: float) -> tuple[int, bytes] | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _instance(body: bytes) -> object:
    try:
        state = json.loads(body)
    except ValueError:
        return None
    return state.get("instance") if isinstance(state, dict) else None


if __name__ == "__main__":
    sys.exit(main())
