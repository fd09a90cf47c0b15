"""Admission control: at most ``MAX_CONCURRENT_REQUESTS`` run() calls per container.

The limit holds across all worker processes: slots are units of a POSIX semaphore in
the shared memory (``shared_memory.py``) that the master made before fork, and so are the
places of the bounded wait queue (``MAX_QUEUE``). A request takes a free slot at once
when nobody is queued; otherwise it takes a queue place (none left: 429
``queue_full``) and sleeps on the slot semaphore for at most ``MAX_QUEUE_WAIT_MS``
(then 429 ``queue_timeout``); the kernel wakes a waiter as soon as a slot is posted.
New arrivals do not overtake queued requests while any are waiting.

A slot is given back by whoever ends the run() call, which for a timed-out call is the
thread still running it, so timed-out work keeps its slot until it really returns; a
worker that dies gives its slots back through ``SharedMemory.reclaim`` (the server's
``child_exit``).

The uncontended path is two semaphore operations and two counter updates, with no
system call and no release of the GIL (which, in a threaded worker, would hand the
interpreter to another thread at every request). With a limit of 0 nothing is
limited; slots are still counted for the ``moma_scoring_in_flight`` gauge.
"""

from __future__ import annotations

import logging
import math
import time

from .errors import Overloaded
from .shared_memory import AdmissionCounters

log = logging.getLogger("moma.runtime")


class Admission:
    def __init__(self, counters: AdmissionCounters, limit: int, max_queue: int,
                 max_wait_ms: int) -> None:
        if (limit, max_queue) != (counters.limit, counters.max_queue):
            log.warning("admission limits (%d, queue %d) differ from the shared memory's "
                        "(%d, queue %d), which the server's master made from its "
                        "environment; using the shared memory's", limit, max_queue,
                        counters.limit, counters.max_queue)
            limit, max_queue = counters.limit, counters.max_queue
        self.counters = counters
        self.limit = limit
        self.max_queue = max_queue
        self.max_wait_s = max_wait_ms / 1000.0
        self.retry_after_s = max(1, math.ceil(self.max_wait_s))

    def acquire(self) -> float:
        """Take a slot, waiting if allowed. Returns seconds waited; raises Overloaded."""
        counters = self.counters
        if self.limit <= 0:
            counters.count_held(+1)
            return 0.0
        slots, queue = counters.slots, counters.queue
        if queue.get_value() >= self.max_queue and slots.acquire(False):
            counters.count_held(+1)  # nobody queued and a slot was free
            return 0.0
        if not queue.acquire(False):
            raise Overloaded(f"the service is at its limit of {self.limit} concurrent "
                             f"requests and its queue of {self.max_queue} is full",
                             reason="queue_full", retry_after_s=self.retry_after_s)
        counters.count_waiting(+1)
        started = time.monotonic()
        try:
            admitted = slots.acquire(True, self.max_wait_s)
            if admitted:
                counters.count_held(+1)
        finally:
            counters.count_waiting(-1)
            queue.release()
        if not admitted:
            raise Overloaded(f"no slot became free within {self.max_wait_s * 1000:.0f} ms "
                             f"(limit {self.limit} concurrent requests)",
                             reason="queue_timeout", retry_after_s=self.retry_after_s)
        return time.monotonic() - started

    def release(self) -> None:
        self.counters.count_held(-1)
        if self.limit > 0:
            self.counters.slots.release()
