"""Engine calls made for an API request are answered within a deadline, whatever the
engine does.

The call runs in a thread of its own and the request waits for it at most ``seconds``;
past that it gets EngineTimeout and the call is left to end on its own (the Docker
client's timeout ends it). While a call given up on still runs, further calls to the
same engine fail at once: a host that hangs costs an API thread one deadline, not one
per request, until it answers again.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable, Generic, Hashable, TypeVar, cast

from . import EngineTimeout

T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._hanging: Counter[Hashable] = Counter()  # calls given up on and still running, per engine
        self._lock = threading.Lock()

    def call(self, engine: Hashable, what: str, action: Callable[[], T]) -> T:
        """``action()`` for the engine keyed ``engine``; EngineTimeout about ``what`` when it is late."""
        with self._lock:
            if self._hanging[engine]:
                raise EngineTimeout(f"{what}: the engine has not answered an earlier call within {self.seconds:g} s; "
                                    "it is not asked again until it does")
        call: _Call[T] = _Call()
        threading.Thread(target=self._run, args=(engine, call, action), name="moma-engine-call", daemon=True).start()
        if not call.done.wait(self.seconds):
            with self._lock:
                if not call.done.is_set():
                    call.abandoned = True
                    self._hanging[engine] += 1
                    raise EngineTimeout(f"{what}: the engine did not answer within {self.seconds:g} s")
        if call.error is not None:
            raise call.error
        return cast(T, call.result)  # no error: action() returned it (T | None only until then)

    def _run(self, engine: Hashable, call: "_Call[T]", action: Callable[[], T]) -> None:
        try:
            call.result = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            call.error = exc
        finally:
            with self._lock:
                call.done.set()
                if call.abandoned:
                    self._hanging[engine] -= 1
                    if not self._hanging[engine]:
                        del self._hanging[engine]


class _Call(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.abandoned = False
