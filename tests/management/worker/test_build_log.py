"""The worker's build-log sink (``worker/build_log.py``): lines reach the store in
chunks, by time and by size, and nothing is left behind when the build ends."""

from __future__ import annotations

from management.worker import build_log
from management.worker.build_log import StoredBuildLog


class Logs:
    def __init__(self) -> None:
        self.chunks: list[str] = []

    def append(self, image_id: str, text: str) -> None:
        assert image_id == "img"
        self.chunks.append(text)


def test_lines_wait_for_the_flush_interval_then_go_together() -> None:
    logs, now = Logs(), [100.0]
    with StoredBuildLog(logs, "img", clock=lambda: now[0]) as sink:  # type: ignore[arg-type]
        sink("a")
        sink("b")
        assert logs.chunks == []
        now[0] += build_log.FLUSH_SECONDS
        sink("c")
        assert logs.chunks == ["a\nb\nc\n"]
        sink("d")
    assert logs.chunks == ["a\nb\nc\n", "d\n"]


def test_a_large_burst_is_written_before_the_interval() -> None:
    logs = Logs()
    line = "x" * 1023
    sink = StoredBuildLog(logs, "img", clock=lambda: 0.0)  # type: ignore[arg-type]
    for _ in range(build_log.FLUSH_BYTES // 1024):
        sink(line)
    assert logs.chunks == [(line + "\n") * (build_log.FLUSH_BYTES // 1024)]
