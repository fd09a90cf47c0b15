"""One process's data collection: the capture policy in front of the drainer.
Collection never blocks or fails a request.

::

    collect()/capture()  ──put (a lock, an append)──►  queue (≤ QUEUE_BYTES)
      │ policy.py: what is collected,                     │ every FLUSH_INTERVAL_S, or
      │ sampling, driver-side collectors                  │ at BATCH_BYTES queued
                                          drainer thread ─┤ shape (policy) + encode
                                                          ▼
                             per sink: pending blocks (≤ QUEUE_BYTES) ──► sink.write()
                                                          │ error: keep, back off
                                                          ▼ 0.5 s, 1 s, ... 30 s

- ``put`` takes a thread lock and appends a typed item (``items.py``); when the queue is
  full the item is dropped and counted (``queue_full``). It never waits, never raises.
- Automatic captures are queued as the raw request and response bodies (bytes the
  request already has, a ``Captured``) and shaped by the drainer with the policy; driver
  ``collect()`` calls are encoded in the caller (a ``Collected``), so a DataFrame the
  driver changes afterwards is not seen.
- The drainer (``drainer.py``) groups rows per file into blocks of whole rows (≤ 4 MiB)
  and hands them to every sink. A sink that fails keeps its blocks (bounded by
  ``QUEUE_BYTES``; past that new blocks are dropped and counted) and is retried with
  exponential backoff; the other sinks go on.
- ``shutdown()`` (gunicorn ``worker_exit``, or ``atexit``) drains the queue and tries
  every sink until ``SHUTDOWN_TIMEOUT_S``; what is still pending then is counted as
  dropped (``shutdown``) and logged, and every sink is closed (a failure to close is
  logged).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .context import ModelContext
from .drainer import Drainer, NoRecorder, Recorder
from .items import Captured, Collected
from .policy import CapturePolicy
from .rows import Encoded, Encoder, InputShape, Target
from .sinks import Sink

__all__ = ["Hub", "NoRecorder", "Recorder"]

ITEM_OVERHEAD = 128   # bytes counted per queued item besides its payload
UNSIZED_INPUT = 256   # bytes counted for a GET's query arguments


class Hub:
    """What collectors and the app talk to: ``capture()``, ``put()``, the policy's
    targets and sampling, flushing and shutting down."""

    def __init__(self, encoder: Encoder, sinks: Iterable[Sink], *, queue_bytes: int,
                 batch_bytes: int, flush_interval_s: float, shutdown_timeout_s: float,
                 sample_rate: float = 1.0, recorder: Recorder | None = None,
                 input_shape: InputShape | None = None,
                 context: ModelContext | None = None) -> None:
        self.encoder = encoder
        self.recorder = recorder or NoRecorder()
        self.policy = CapturePolicy(encoder, context, sample_rate, input_shape)
        self.drainer = Drainer(encoder.file_name, sinks, self.policy.shape,
                               queue_bytes=queue_bytes, batch_bytes=batch_bytes,
                               flush_interval_s=flush_interval_s,
                               shutdown_timeout_s=shutdown_timeout_s, recorder=self.recorder)
    # -- the policy ------------------------------------------------------------------------
    @property
    def capturing(self) -> bool:
        return self.policy.capturing

    def sampled(self, request_id: str | None) -> bool:
        return self.policy.sampled(request_id)

    def target_for(self, model_name: str, identifier: str, model_id: str | None = None,
                   model_version: str | None = None, service: str | None = None) -> Target:
        return self.policy.target_for(model_name, identifier, model_id, model_version, service)

    def driver_collects(self, identifier: str) -> None:
        self.policy.driver_collects(identifier)

    # -- the queue --------------------------------------------------------------------------

    def capture(self, request_id: str, correlation_id: str, raw_input: Any,
                raw_output: bytes) -> None:
        """A scored request's input and response body (automatic collection)."""
        if not self.policy.wants(request_id):
            return
        size = ITEM_OVERHEAD + len(raw_output) + (
            len(raw_input) if isinstance(raw_input, (bytes, bytearray)) else UNSIZED_INPUT)
        self.drainer.put(Captured(time.time(), correlation_id, request_id, raw_input,
                                  raw_output), size, 1)

    def put(self, target: Target, timestamp: float, encoded: Encoded) -> None:
        """Rows a driver collected, already encoded."""
        if encoded.too_large:
            self.recorder.dc_dropped("too_large", encoded.too_large)
        if encoded.lines:
            self.recorder.dc_collected(len(encoded.lines))
            self.drainer.put(Collected(target, timestamp, encoded),
                             ITEM_OVERHEAD + encoded.size, len(encoded.lines))

    # -- the drainer ------------------------------------------------------------------------
    def start(self) -> None:
        self.drainer.start()

    def flush(self, timeout: float = 10.0) -> bool:
        return self.drainer.flush(timeout)

    def pending_rows(self) -> int:
        return self.drainer.pending_rows()

    def shutdown(self, timeout: float | None = None) -> None:
        self.drainer.shutdown(timeout)
