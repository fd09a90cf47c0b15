"""The per-worker queue, its drainer thread, and each sink's pending writes with retry.

The drainer knows nothing of what is collected: it files ``Collected`` rows by path and
asks the function it was given (the capture policy's ``shape``) to turn a ``Captured``
request into rows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from .items import Captured, Collected, QueueItem
from .sinks import BLOCK_BYTES, Sink, SinkError

log = logging.getLogger("moma.runtime")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
LOG_EVERY_S = 30.0
YIELD_EVERY = 64      # items shaped between two GIL releases of the drainer
BLOCK_CHARS = BLOCK_BYTES // 4  # characters; ≤ 4 bytes each in UTF-8

Shaper = Callable[[Captured], tuple[list[Collected], int]]


class Recorder(Protocol):
    """What data collection reports to (``runtime.metrics.Metrics``); every call is cheap."""

    def dc_collected(self, rows: int) -> None: ...
    def dc_written(self, sink: str, rows: int) -> None: ...
    def dc_dropped(self, reason: str, rows: int) -> None: ...
    def dc_sink_error(self, sink: str) -> None: ...
    def dc_queued(self, rows: float) -> None: ...


class NoRecorder:
    def dc_collected(self, rows: int) -> None: pass
    def dc_written(self, sink: str, rows: int) -> None: pass
    def dc_dropped(self, reason: str, rows: int) -> None: pass
    def dc_sink_error(self, sink: str) -> None: pass
    def dc_queued(self, rows: float) -> None: pass


# -- rows filed by path -------------------------------------------------------------------------
class _Block:
    __slots__ = ("parts", "size", "rows")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.rows = 0


class _File:
    """Rows for one path: the header and blocks of whole rows."""
    __slots__ = ("header", "blocks")

    def __init__(self, header: bytes | None) -> None:
        self.header = header
        self.blocks: list[_Block] = [_Block()]

    def add(self, lines: list[str], size: int) -> None:
        block = self.blocks[-1]
        if block.size + size <= BLOCK_CHARS:
            block.parts.extend(lines)
            block.size += size
            block.rows += len(lines)
            return
        for line in lines:
            length = len(line)
            if block.size + length > BLOCK_CHARS and block.rows:
                block = _Block()
                self.blocks.append(block)
            block.parts.append(line)
            block.size += length
            block.rows += 1


@dataclasses.dataclass(frozen=True, slots=True)
class _Write:
    """One block waiting for one sink."""
    path: str
    header: bytes | None
    data: bytes
    rows: int


class _SinkState:
    """One sink's pending writes and backoff."""

    def __init__(self, sink: Sink, capacity: int, recorder: Recorder) -> None:
        self.sink = sink
        self.capacity = capacity
        self.recorder = recorder
        self.pending: deque[_Write] = deque()
        self.bytes = 0
        self.rows = 0
        self.retry_at = 0.0
        self.backoff = 0.0
        self.failing_since: float | None = None
        self.logged_at = 0.0

    def add(self, files: dict[str, _File]) -> None:
        for path, entry in files.items():
            for block in entry.blocks:
                if not block.rows:
                    continue
                data = "".join(block.parts).encode("utf-8")
                if self.bytes + len(data) > self.capacity:
                    self.recorder.dc_dropped("queue_full", block.rows)
                    continue
                self.pending.append(_Write(path, entry.header, data, block.rows))
                self.bytes += len(data)
                self.rows += block.rows

    def flush(self, now: float) -> bool:
        """Write what is pending, oldest first. False when the sink failed."""
        if not self.pending or now < self.retry_at:
            return not self.pending
        sink, recorder = self.sink, self.recorder
        while self.pending:
            write = self.pending[0]
            try:
                sink.write(write.path, write.header, write.data)
            except SinkError as exc:
                self._failed(now, exc)
                return False
            except Exception as exc:  # a sink bug must not stop the drainer
                recorder.dc_sink_error(sink.name)
                log.error("data collection: the %s sink raised; %d rows dropped", sink.name,
                          write.rows, exc_info=exc)
                recorder.dc_dropped("error", write.rows)
            else:
                recorder.dc_written(sink.name, write.rows)
            self.pending.popleft()
            self.bytes -= len(write.data)
            self.rows -= write.rows
        if self.failing_since is not None:
            log.info("data collection: the %s sink is writing again after %.1f s",
                     sink.name, now - self.failing_since)
        self.backoff, self.retry_at, self.failing_since = 0.0, 0.0, None
        return True

    def _failed(self, now: float, exc: SinkError) -> None:
        self.recorder.dc_sink_error(self.sink.name)
        self.backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, self.backoff * 2))
        self.retry_at = time.monotonic() + self.backoff
        if self.failing_since is None:
            self.failing_since = now
        if now - self.logged_at >= LOG_EVERY_S:
            self.logged_at = now
            log.warning("data collection: the %s sink failed (%s); %d rows kept, retrying in "
                        "%.1f s", self.sink.name, exc, self.rows, self.backoff)

    def close(self) -> None:
        try:
            self.sink.close()
        except Exception:  # shutting down: report, never raise
            log.warning("data collection: closing the %s sink failed", self.sink.name,
                        exc_info=True)


# -- the queue and its thread -------------------------------------------------------------------
class Drainer:
    """The queue, the drainer thread and the sinks of one process."""

    def __init__(self, file_name: str, sinks: Iterable[Sink], shape: Shaper, *,
                 queue_bytes: int, batch_bytes: int, flush_interval_s: float,
                 shutdown_timeout_s: float, recorder: Recorder) -> None:
        self.file_name = file_name
        self.shape = shape
        self.recorder = recorder
        self.sinks = [_SinkState(sink, queue_bytes, recorder) for sink in sinks]
        self.queue_bytes = queue_bytes
        self.batch_bytes = batch_bytes
        self.flush_interval_s = flush_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self._lock = threading.Lock()
        self._items: deque[QueueItem] = deque()
        self._bytes = 0
        self._kicked = False
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._idle = threading.Condition()
        self._cycles = 0
        self._deadline = 0.0
        self._day = (-1, "")  # (second, "yyyy/mm/dd") of the last row filed

    # -- producer side ----------------------------------------------------------------------
    def put(self, item: QueueItem, size: int, rows: int) -> None:
        """Queue ``item`` (``size`` bytes, ``rows`` rows), or drop and count it. Never
        waits, never raises."""
        if self._pid != os.getpid():
            self._start()
        kick = False
        with self._lock:
            if self._bytes + size > self.queue_bytes or self._closed:
                full = True
                reason = "shutdown" if self._closed else \
                    "too_large" if size > self.queue_bytes else "queue_full"
            else:
                full = False
                self._items.append(item)
                self._bytes += size
                if self._bytes >= self.batch_bytes and not self._kicked:
                    self._kicked = kick = True
        if full:
            self.recorder.dc_dropped(reason, rows)
        elif kick:
            self._wake.set()

    # -- the thread -------------------------------------------------------------------------
    def start(self) -> None:
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._items, self._bytes, self._kicked = deque(), 0, False  # a parent's, if forked
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name="moma-datacollection",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            waits = [s.retry_at - now for s in self.sinks if s.pending and s.retry_at > now]
            self._wake.wait(max(min([self.flush_interval_s, *waits]), 0.0))
            self._wake.clear()
            if self._stopping:
                break
            try:
                self._cycle()
            except Exception:  # the drainer must outlive any bug
                log.exception("data collection: drainer cycle failed")
            with self._idle:
                self._cycles += 1
                self._idle.notify_all()
        self._final()

    def _final(self) -> None:
        """The last cycles, on the drainer thread: until everything is written or the
        shutdown deadline passes."""
        try:
            self._cycle()
            while any(s.pending for s in self.sinks) and time.monotonic() < self._deadline:
                time.sleep(min(0.2, max(0.0, self._deadline - time.monotonic())))
                for state in self.sinks:
                    state.retry_at = 0.0
                    state.flush(time.monotonic())
        except Exception:  # shutting down: report, never raise
            log.exception("data collection: final flush failed")
        lost = self.pending_rows()
        if lost:
            self.recorder.dc_dropped("shutdown", lost)
            log.error("data collection: %d rows could not be written before shutdown", lost)
        self.recorder.dc_queued(0)
        for state in self.sinks:
            state.close()
        with self._idle:
            self._idle.notify_all()

    def _cycle(self) -> None:
        with self._lock:
            items, self._items = self._items, deque()
            self._bytes, self._kicked = 0, False
        if items:
            files = self._file(items)
            for state in self.sinks:
                state.add(files)
        now = time.monotonic()
        for state in self.sinks:
            state.flush(now)
        self.recorder.dc_queued(max((s.rows for s in self.sinks), default=0) + len(self._items))

    def _file(self, items: deque[QueueItem]) -> dict[str, _File]:
        """The queued items' rows, grouped by the file they go to."""
        files: dict[str, _File] = {}
        shaped_rows = unshaped = too_large = 0
        for count, item in enumerate(items, 1):
            if count % YIELD_EVERY == 0:
                # Let request threads have the GIL: a cycle of a busy worker shapes
                # thousands of rows, and they would otherwise wait up to the interpreter's
                # switch interval (5 ms) at every I/O while it runs.
                time.sleep(0)
            if isinstance(item, Collected):  # counted when the driver collected it
                self._add(files, item)
                continue
            collected, failed = self.shape(item)
            unshaped += failed
            for entry in collected:
                shaped_rows += len(entry.encoded.lines)
                too_large += entry.encoded.too_large
                self._add(files, entry)
        if shaped_rows:
            self.recorder.dc_collected(shaped_rows)
        if unshaped:
            self.recorder.dc_dropped("unsupported", unshaped)
        if too_large:
            self.recorder.dc_dropped("too_large", too_large)
        return files

    def _add(self, files: dict[str, _File], item: Collected) -> None:
        encoded = item.encoded
        if not encoded.lines:
            return
        second = int(item.timestamp)
        if second != self._day[0]:
            self._day = (second, time.strftime("%Y/%m/%d", time.gmtime(second)))
        path = f"{item.target.prefix}/{self._day[1]}/{self.file_name}"
        entry = files.get(path)
        if entry is None:
            entry = files[path] = _File(encoded.header)
        entry.add(encoded.lines, encoded.size)

    # -- flushing and shutting down ------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what was queued before this call went through one drainer cycle
        (written, or pending in a failing sink). True unless the wait timed out."""
        if self._thread is None or self._pid != os.getpid():
            return True
        with self._idle:
            target = self._cycles + 2  # the cycle running now may have missed our items
            self._wake.set()
            return self._idle.wait_for(lambda: self._cycles >= target or self._stopping,
                                       timeout)

    def pending_rows(self) -> int:
        return sum(s.rows for s in self.sinks)

    def shutdown(self, timeout: float | None = None) -> None:
        """Write everything still queued or pending; give up after ``timeout`` seconds
        (``SHUTDOWN_TIMEOUT_S``) and count the rest as dropped. Idempotent."""
        timeout = self.shutdown_timeout_s if timeout is None else timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        thread.join(timeout + 1.0)
        if thread.is_alive():  # a sink call is still blocked: what it holds is lost
            self.recorder.dc_dropped("shutdown", self.pending_rows())
            log.error("data collection: the drainer did not finish within %.1f s; %d rows lost",
                      timeout, self.pending_rows())
