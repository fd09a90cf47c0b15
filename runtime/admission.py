"""Admission control: at most ``MAX_CONCURRENT_REQUESTS`` run() calls per container.

The limit holds across all gunicorn workers: the counters live in the shared board
(``shared.py``) that the master made before fork. A request that finds every slot
taken waits in a bounded queue (``MAX_QUEUE`` requests, ``MAX_QUEUE_WAIT_MS`` each);
when the queue is full, or the wait runs out, it is refused with ``Overloaded``
(429). New arrivals do not overtake queued requests: they take a free slot only when
nobody is waiting. A slot is released by whoever ends the run() call, which for a
timed-out call is the thread still running it, so timed-out work keeps its slot until
it really returns; a worker that dies gives its slots back through ``Board.reclaim``.

With a limit of 0 nothing is limited; slots are still counted (for the
``moma_scoring_in_flight`` gauge) with a process-local lock only.
"""

from __future__ import annotations

import math
import threading
import time

from .errors import Overloaded
from .shared import H_ADMITTED, H_WAITING, R_HELD, R_WAITING, Board

POLL_S = 0.05  # waiters re-check at least this often, doorbell or not


class Admission:
    def __init__(self, board: Board, limit: int, max_queue: int, max_wait_ms: int) -> None:
        self.board = board
        self.limit = limit
        self.max_queue = max_queue
        self.max_wait_s = max_wait_ms / 1000.0
        self.retry_after_s = max(1, math.ceil(self.max_wait_s))
        self._local = threading.Lock()

    def acquire(self) -> float:
        """Take a slot, waiting if allowed. Returns seconds waited; raises Overloaded."""
        board, ints = self.board, self.board.ints
        held = board.row_int(R_HELD)
        if self.limit <= 0:
            with self._local:
                ints[held] += 1
            return 0.0
        mine_waiting = board.row_int(R_WAITING)
        board.lock()
        try:
            admitted = ints[H_ADMITTED]
            if admitted < self.limit and ints[H_WAITING] == 0:
                ints[held] += 1
                ints[H_ADMITTED] = admitted + 1
                return 0.0
            if ints[H_WAITING] >= self.max_queue:
                raise Overloaded(f"the service is at its limit of {self.limit} concurrent "
                                 f"requests and its queue of {self.max_queue} is full",
                                 reason="queue_full", retry_after_s=self.retry_after_s)
            ints[mine_waiting] += 1
            ints[H_WAITING] += 1
        finally:
            board.unlock()
        started = time.monotonic()
        deadline = started + self.max_wait_s
        doorbell = board.doorbell
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                doorbell.acquire(True, min(remaining, POLL_S))
            with board.locked():
                if ints[H_ADMITTED] < self.limit:
                    ints[mine_waiting] -= 1
                    ints[H_WAITING] -= 1
                    ints[held] += 1
                    ints[H_ADMITTED] += 1
                    return time.monotonic() - started
                if time.monotonic() >= deadline:
                    ints[mine_waiting] -= 1
                    ints[H_WAITING] -= 1
                    raise Overloaded(f"no slot became free within {self.max_wait_s * 1000:.0f} ms "
                                     f"(limit {self.limit} concurrent requests)",
                                     reason="queue_timeout", retry_after_s=self.retry_after_s)

    def release(self) -> None:
        board, ints = self.board, self.board.ints
        held = board.row_int(R_HELD)
        if self.limit <= 0:
            with self._local:
                ints[held] -= 1
            return
        board.lock()
        try:
            ints[held] -= 1
            ints[H_ADMITTED] -= 1
            ring = ints[H_WAITING] > 0
        finally:
            board.unlock()
        if ring:
            board.doorbell.release()
