"""The per-worker queue and its drainer: collection never blocks or fails a request.

::

    collect()/capture()  ──put (a lock, an append)──►  queue (≤ QUEUE_BYTES)
                                                          │ every FLUSH_INTERVAL_S, or
                                                          │ at BATCH_BYTES queued
                                          drainer thread ─┤ shape + encode
                                                          ▼
                             per sink: pending blocks (≤ QUEUE_BYTES) ──► sink.write()
                                                          │ error: keep, back off
                                                          ▼ 0.5 s, 1 s, ... 30 s

- ``put`` takes a thread lock and appends; when the queue is full the item is dropped
  and counted (``queue_full``). It never waits, never raises.
- Automatic captures are queued as the raw request and response bodies (bytes the
  request already has) and shaped by the drainer; driver ``collect()`` calls are
  encoded in the caller, so a DataFrame the driver changes afterwards is not seen.
- The drainer groups rows per file into blocks of whole rows (≤ 4 MiB) and hands them
  to every sink. A sink that fails keeps its blocks (bounded by ``QUEUE_BYTES``; past
  that new blocks are dropped and counted) and is retried with exponential backoff;
  the other sinks go on.
- ``shutdown()`` (gunicorn ``worker_exit``, or ``atexit``) drains the queue and tries
  every sink until ``SHUTDOWN_TIMEOUT_S``; what is still pending then is counted as
  dropped (``shutdown``) and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Iterable
from typing import Any, Protocol

from .rows import Encoded, Encoder, InputShape, Target, UnsupportedData, shape_prediction, \
    shape_request
from .context import UNKNOWN, ModelContext, ModelRef
from .sinks import BLOCK_BYTES, Sink, SinkError

log = logging.getLogger("moma.runtime")

ITEM_OVERHEAD = 128   # bytes counted per queued item besides its payload
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
LOG_EVERY_S = 30.0
YIELD_EVERY = 64      # captured requests shaped between two GIL releases of the drainer


class Recorder(Protocol):
    """What the hub reports to (``runtime.metrics.Metrics``); every call is cheap."""

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
        if block.size + size <= BLOCK_BYTES // 4:  # characters; ≤ 4 bytes each in UTF-8
            block.parts.extend(lines)
            block.size += size
            block.rows += len(lines)
            return
        for line in lines:
            n = len(line)
            if block.size + n > BLOCK_BYTES // 4 and block.rows:
                block = _Block()
                self.blocks.append(block)
            block.parts.append(line)
            block.size += n
            block.rows += 1


class _SinkState:
    """One sink's pending blocks and backoff."""

    def __init__(self, sink: Sink, capacity: int, recorder: Recorder) -> None:
        self.sink = sink
        self.capacity = capacity
        self.recorder = recorder
        self.pending: list[tuple[str, bytes | None, bytes, int]] = []  # path, header, data, rows
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
                self.pending.append((path, entry.header, data, block.rows))
                self.bytes += len(data)
                self.rows += block.rows

    def flush(self, now: float) -> bool:
        """Write what is pending, oldest first. False when the sink failed."""
        if not self.pending or now < self.retry_at:
            return not self.pending
        sink, recorder = self.sink, self.recorder
        while self.pending:
            path, header, data, rows = self.pending[0]
            try:
                sink.write(path, header, data)
            except SinkError as exc:
                recorder.dc_sink_error(sink.name)
                self.backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, self.backoff * 2))
                self.retry_at = time.monotonic() + self.backoff
                if self.failing_since is None:
                    self.failing_since = now
                if now - self.logged_at >= LOG_EVERY_S:
                    self.logged_at = now
                    log.warning("data collection: the %s sink failed (%s); %d rows kept, "
                                "retrying in %.1f s", sink.name, exc, self.rows, self.backoff)
                return False
            except Exception as exc:  # noqa: BLE001 - a sink bug must not stop the drainer
                recorder.dc_sink_error(sink.name)
                log.error("data collection: the %s sink raised; %d rows dropped", sink.name,
                          rows, exc_info=exc)
                recorder.dc_dropped("error", rows)
            else:
                recorder.dc_written(sink.name, rows)
            self.pending.pop(0)
            self.bytes -= len(data)
            self.rows -= rows
        if self.failing_since is not None:
            log.info("data collection: the %s sink is writing again after %.1f s",
                     sink.name, now - self.failing_since)
        self.backoff, self.retry_at, self.failing_since = 0.0, 0.0, None
        return True


class Hub:
    """The queue, the drainer thread and the sinks of one process."""

    def __init__(self, encoder: Encoder, sinks: Iterable[Sink], *, queue_bytes: int,
                 batch_bytes: int, flush_interval_s: float, shutdown_timeout_s: float,
                 sample_rate: float = 1.0, recorder: Recorder | None = None,
                 inputs_target: Target | None = None, prediction_target: Target | None = None,
                 input_shape: InputShape | None = None,
                 context: ModelContext | None = None) -> None:
        self.encoder = encoder
        self.context = context or ModelContext()
        self.recorder = recorder or NoRecorder()
        self.sinks = [_SinkState(sink, queue_bytes, self.recorder) for sink in sinks]
        self.queue_bytes = queue_bytes
        self.batch_bytes = batch_bytes
        self.flush_interval_s = flush_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.sample_rate = sample_rate
        self._threshold = int(sample_rate * 2 ** 32)
        self.inputs_target = inputs_target
        self.prediction_target = prediction_target
        self.input_shape = input_shape
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []
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

    # -- targets ---------------------------------------------------------------------------------
    def target(self, model: ModelRef, identifier: str, service: str | None = None) -> Target:
        context = self.context
        if service and context.service == UNKNOWN:
            context = dataclasses.replace(context, service=service)
        return Target(context.prefix(model, identifier), identifier, model.id, model.name,
                      model.version, context.image_id)

    def target_for(self, model_name: str, identifier: str, model_id: str | None = None,
                   model_version: str | None = None, service: str | None = None) -> Target:
        """A driver collector's target: the model by name from model_config_map.json."""
        return self.target(self.context.model(model_name, model_id, model_version), identifier,
                           service)

    def claim(self, identifier: str) -> None:
        """A driver collects ``identifier`` itself: automatic capture of it stops (the
        two would write differently shaped rows into one file)."""
        for attr in ("inputs_target", "prediction_target"):
            target = getattr(self, attr)
            if target is not None and target.identifier == identifier:
                setattr(self, attr, None)
                log.info("data collection: the driver collects %r itself; automatic capture "
                         "of it is off", identifier)

    @property
    def capturing(self) -> bool:
        return self.inputs_target is not None or self.prediction_target is not None

    # -- producer side ----------------------------------------------------------------------
    def sampled(self, request_id: str | None) -> bool:
        """Keep this request? The same answer for every collector of one request."""
        if self._threshold >= 2 ** 32:
            return True
        if not request_id:
            return random.random() < self.sample_rate
        return zlib.crc32(request_id.encode("utf-8", "replace")) < self._threshold

    def capture(self, request_id: str, correlation_id: str, raw_input: Any,
                raw_output: bytes) -> None:
        """A scored request's input and response body (automatic collection)."""
        if (self.inputs_target is None and self.prediction_target is None) \
                or not self.sampled(request_id):
            return
        size = ITEM_OVERHEAD + len(raw_output) + (
            len(raw_input) if isinstance(raw_input, (bytes, bytearray)) else 256)
        self._put((time.time(), correlation_id, request_id, raw_input, raw_output), size, 1)

    def put(self, target: Target, ts: float, encoded: Encoded) -> None:
        """Rows a driver collected, already encoded."""
        if encoded.too_large:
            self.recorder.dc_dropped("too_large", encoded.too_large)
        if encoded.lines:
            self.recorder.dc_collected(len(encoded.lines))
            self._put((target, ts, encoded), ITEM_OVERHEAD + encoded.size, len(encoded.lines))

    def _put(self, item: tuple[Any, ...], size: int, rows: int) -> None:
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

    # -- drainer ------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._items, self._bytes, self._kicked = [], 0, False  # a parent's, if forked
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name="moma-datacollection",
                                            daemon=True)
            self._thread.start()

    def start(self) -> None:
        if self._pid != os.getpid():
            self._start()

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
            except Exception:  # noqa: BLE001 - the drainer must outlive any bug
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
        except Exception:  # noqa: BLE001 - shutting down: report, never raise
            log.exception("data collection: final flush failed")
        lost = self.pending_rows()
        if lost:
            self.recorder.dc_dropped("shutdown", lost)
            log.error("data collection: %d rows could not be written before shutdown", lost)
        self.recorder.dc_queued(0)
        for state in self.sinks:
            try:
                state.sink.close()
            except Exception:  # noqa: BLE001
                pass
        with self._idle:
            self._idle.notify_all()

    def _cycle(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._bytes, self._kicked = 0, False
        if items:
            files = self._format(items)
            for state in self.sinks:
                state.add(files)
        now = time.monotonic()
        for state in self.sinks:
            state.flush(now)
        self.recorder.dc_queued(max((s.rows for s in self.sinks), default=0) + len(self._items))

    def _format(self, items: list[tuple[Any, ...]]) -> dict[str, _File]:
        files: dict[str, _File] = {}
        encoder = self.encoder
        collected = dropped = too_large = 0
        for count, item in enumerate(items, 1):
            if count % YIELD_EVERY == 0:
                # Let request threads have the GIL: a cycle of a busy worker shapes
                # thousands of rows, and they would otherwise wait up to the interpreter's
                # switch interval (5 ms) at every I/O while it runs.
                time.sleep(0)
            if len(item) == 3:  # (target, ts, encoded) from collect()
                target, ts, encoded = item
                self._add(files, target, ts, encoded)
                continue
            ts, correlation_id, request_id, raw_input, raw_output = item
            for target, shaper, raw in ((self.inputs_target, shape_request, raw_input),
                                        (self.prediction_target, shape_prediction, raw_output)):
                if target is None:
                    continue
                try:
                    if shaper is shape_request:
                        names, rows = shape_request(raw, self.input_shape)
                    else:
                        names, rows = shape_prediction(raw)
                    encoded = encoder.encode(target, names, rows, ts, correlation_id, request_id)
                except (ValueError, TypeError, UnsupportedData, RecursionError) as exc:
                    dropped += 1
                    log.debug("data collection: cannot shape %s: %s", target.identifier, exc)
                    continue
                collected += len(encoded.lines)
                too_large += encoded.too_large
                self._add(files, target, ts, encoded)
        if collected:
            self.recorder.dc_collected(collected)
        if dropped:
            self.recorder.dc_dropped("unsupported", dropped)
        if too_large:
            self.recorder.dc_dropped("too_large", too_large)
        return files

    def _add(self, files: dict[str, _File], target: Target, ts: float, encoded: Encoded) -> None:
        if not encoded.lines:
            return
        second = int(ts)
        if second != self._day[0]:
            self._day = (second, time.strftime("%Y/%m/%d", time.gmtime(second)))
        path = f"{target.prefix}/{self._day[1]}/{self.encoder.file_name}"
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
