"""A build's log lines, appended to the store while the build runs, so that any API
replica serves the log of a build that ran on any worker."""

from __future__ import annotations

import time
from typing import Callable

from ..store.build_logs import BuildLogs

FLUSH_SECONDS = 1.0
FLUSH_BYTES = 64 * 1024


class StoredBuildLog:
    """Line sink for ``Builder.build``: lines are written in chunks, at the first line
    after ``FLUSH_SECONDS`` or once ``FLUSH_BYTES`` are waiting, and whatever is left
    when the build ends (used as a context manager)."""

    def __init__(self, logs: BuildLogs, image_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.logs = logs
        self.image_id = image_id
        self.clock = clock
        self._lines: list[str] = []
        self._waiting = 0
        self._flushed_at = clock()

    def __enter__(self) -> "StoredBuildLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def __call__(self, line: str) -> None:
        self._lines.append(line + "\n")
        self._waiting += len(line) + 1
        if self._waiting >= FLUSH_BYTES or self.clock() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self.logs.append(self.image_id, "".join(self._lines))
            self._lines, self._waiting = [], 0
        self._flushed_at = self.clock()
