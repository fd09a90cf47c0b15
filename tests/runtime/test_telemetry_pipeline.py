"""The telemetry pipeline's batching, with an exporter of the test's: full batches as
they fill, the rest when the delay is up or at shutdown, never a stream of small posts
while a request's spans keep arriving."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from runtime.telemetry.pipeline import ExportError, Pipeline
from runtime.telemetry.settings import TelemetrySettings
from tests.waiting import wait_for

BATCH = 8


class Exporter:
    name = "test"

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.during_send: list[Any] = []  # put while the first batch is sent
        self.pipeline: Pipeline | None = None
        self.lock = threading.Lock()

    def spans(self, batch: Sequence[Any]) -> None:
        if not self.batches and self.pipeline is not None:
            for item in self.during_send:
                self.pipeline.put_span(item)
        with self.lock:
            self.batches.append(list(batch))

    def sizes(self) -> list[int]:
        with self.lock:
            return [len(batch) for batch in self.batches]

    def logs(self, batch: Sequence[Any]) -> None:
        pass

    def metrics(self, data: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Recorder:
    def telemetry_exported(self, signal: str, items: int) -> None:
        pass

    def telemetry_dropped(self, signal: str, reason: str, items: int) -> None:
        raise AssertionError(f"{items} {signal} dropped ({reason})")


def pipeline_with(exporter: Exporter, delay_s: float = 600.0) -> Pipeline:
    settings = TelemetrySettings(enabled=True, span_batch=BATCH, span_delay_s=delay_s,
                                 log_delay_s=delay_s, metric_interval_s=600.0)
    pipeline = Pipeline(settings, [exporter], Recorder())
    exporter.pipeline = pipeline
    return pipeline


def test_spans_that_arrive_during_a_send_wait_for_a_full_batch() -> None:
    exporter = Exporter()
    exporter.during_send = [f"late-{n}" for n in range(3)]
    pipeline = pipeline_with(exporter)
    pipeline.start()
    try:
        for n in range(BATCH):
            pipeline.put_span(n)
        wait_for(exporter.sizes, what="the first full batch")
        for n in range(BATCH - 3):
            pipeline.put_span(BATCH + n)
        wait_for(lambda: len(exporter.sizes()) >= 2, what="a second batch")
        assert exporter.sizes() == [BATCH, BATCH]
        assert exporter.batches[1][:3] == exporter.during_send
    finally:
        pipeline.shutdown(5.0)


def test_what_is_left_goes_when_the_delay_is_up_and_at_shutdown() -> None:
    exporter = Exporter()
    pipeline = pipeline_with(exporter, delay_s=0.2)
    pipeline.start()
    try:
        for n in range(BATCH + 3):
            pipeline.put_span(n)
        wait_for(lambda: sum(exporter.sizes()) == BATCH + 3, what="every span, the last 3 after the delay")
        assert exporter.sizes() == [BATCH, 3]
    finally:
        pipeline.shutdown(5.0)
    stopped = Exporter()
    pipeline = pipeline_with(stopped)
    pipeline.start()
    for n in range(2):
        pipeline.put_span(n)
    pipeline.shutdown(5.0)
    assert stopped.sizes() == [2]


class DeadExporter(Exporter):
    def spans(self, batch: Sequence[Any]) -> None:
        with self.lock:
            self.batches.append(list(batch))
        raise ExportError("connection refused")


class CountingPipeline(Pipeline):
    flushes = 0

    def _flush(self, whole: bool) -> None:
        self.flushes += 1
        super()._flush(whole)


def test_a_backing_off_exporter_is_not_woken_by_every_request() -> None:
    """With the collector down, the queue is full and every request's span is dropped;
    the thread must sleep out the backoff, not wake (and take the GIL) for each one."""
    exporter = DeadExporter()
    settings = TelemetrySettings(enabled=True, span_batch=BATCH, span_queue=4 * BATCH,
                                 span_delay_s=600.0, log_delay_s=600.0, metric_interval_s=600.0)
    dropped: list[int] = []

    class Counting(Recorder):
        def telemetry_dropped(self, signal: str, reason: str, items: int) -> None:
            dropped.append(items)

    pipeline = CountingPipeline(settings, [exporter], Counting())
    pipeline.start()
    try:
        for n in range(BATCH):
            pipeline.put_span(n)
        wait_for(exporter.sizes, what="the first, failed, export")
        for n in range(200):  # requests arriving, one every 2 ms, during the first backoff (0.5 s)
            pipeline.put_span(n)
            time.sleep(0.002)
        assert sum(dropped) >= 200 - 4 * BATCH
        assert pipeline.flushes < 8, f"{pipeline.flushes} wake-ups while the exporter backs off"
    finally:
        pipeline.shutdown(5.0)


class LogExporter(Exporter):
    def __init__(self) -> None:
        super().__init__()
        self.log_batches: list[list[Any]] = []

    def logs(self, batch: Sequence[Any]) -> None:
        with self.lock:
            self.log_batches.append(list(batch))


def test_a_lone_log_record_goes_within_the_delay_while_full_span_batches_keep_coming() -> None:
    """Full span batches wake the thread more often than the delay: the partial queues
    must still go once the delay is up, not wait for a quiet moment."""
    exporter = LogExporter()
    pipeline = pipeline_with(exporter, delay_s=0.3)
    pipeline.start()
    try:
        pipeline.put_log("a print")
        deadline = time.monotonic() + 10
        while not exporter.log_batches and time.monotonic() < deadline:
            for n in range(BATCH):  # a full batch every 20 ms
                pipeline.put_span(n)
            time.sleep(0.02)
        assert exporter.log_batches == [["a print"]]
        assert len(exporter.sizes()) >= 3  # full span batches did wake the thread meanwhile
    finally:
        pipeline.shutdown(5.0)
