"""Engine calls for API requests answer within their deadline, and a hanging engine is
not asked again while an earlier call to it still hangs."""

from __future__ import annotations

import threading
import time

import pytest

from management.engines import EngineError, EngineTimeout
from management.engines.deadline import Deadline


def test_an_answer_in_time_and_an_error_in_time_come_back_as_they_are():
    deadline = Deadline(2.0)
    assert deadline.call("a", "logs", lambda: "lines") == "lines"
    refusal = EngineError("no such container")

    def refuse() -> str:
        raise refusal

    with pytest.raises(EngineError) as caught:
        deadline.call("a", "logs", refuse)
    assert caught.value is refusal


def test_a_hanging_engine_times_out_then_fails_at_once_until_it_answers():
    deadline, release, calls = Deadline(0.3), threading.Event(), []

    def hang() -> str:
        calls.append(1)
        release.wait(30)
        return "late"

    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="compute far: the engine did not answer within 0.3 s"):
        deadline.call("far", "compute far", hang)
    assert 0.3 <= time.monotonic() - started < 1.5

    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="has not answered an earlier call"):
        deadline.call("far", "compute far", hang)
    assert time.monotonic() - started < 0.1 and len(calls) == 1, "not asked again"
    assert deadline.call("near", "compute near", lambda: "fine") == "fine", "other engines are asked"

    release.set()
    deadline_passed = time.monotonic() + 5
    while True:
        try:
            assert deadline.call("far", "compute far", lambda: "back") == "back"
            break
        except EngineTimeout:
            assert time.monotonic() < deadline_passed, "the engine was not asked again once it answered"
            time.sleep(0.05)
