"""Image HEALTHCHECK: exit 0 when GET http://127.0.0.1:$PORT/readyz answers 200, else 1.

Standard library only (runs even when the app's dependencies are broken), 2 s timeout,
no proxies.
"""

from __future__ import annotations

import http.client
import os
import sys


def check(port: int, timeout: float = 2.0) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def main() -> int:
    try:
        port = int(os.environ.get("PORT") or 5001)
    except ValueError:
        return 1
    return 0 if check(port) else 1


if __name__ == "__main__":
    sys.exit(main())
