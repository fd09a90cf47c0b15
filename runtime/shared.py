"""Memory shared by every gunicorn worker of a container: admission semaphores, the
rows that say who holds what, and the metric cells.

The gunicorn master creates one ``Board`` before it forks any worker
(``gunicorn_conf.on_starting``); workers inherit it. A board is:

- ``slots``: a POSIX counting semaphore with ``MAX_CONCURRENT_REQUESTS`` units and
  ``queue``: one with ``MAX_QUEUE`` units (places to wait for a slot). Taking or
  giving a unit without waiting is a userspace atomic operation (futex), with no
  system call and without releasing the GIL; waiting for one sleeps in the kernel
  until a unit is posted or the wait times out.
- an anonymous shared ``mmap`` with one row per live process (row 0 archives dead
  workers): int64 ``pid``, ``held`` (slot units this process holds), ``waiting``
  (queue units it holds), ``connections`` (1 + the connections a worker has open,
  0 while it does not take part in connection balancing, ``workers.py``) and
  ``stamp`` (when it last said so, monotonic ms), and float64 metric ``cells``. A
  process writes only its own row, under a thread lock (or, for ``connections`` and
  ``stamp``, only from its main thread).
- a lock for the rare whole-board operations (claiming a row, reclaiming a dead
  worker's row, reading every row for ``/metrics``): a thread lock plus ``flock`` on a
  file under ``MOMA_STATE_DIR``, which the kernel drops if its holder dies.

When a worker exits, the master's ``child_exit`` hook calls ``reclaim(pid)``: the
dead row's counters go to the archive row, and the slot and queue units it held are
posted back. A process records a unit right after taking it and un-records it right
before giving it back, so a worker killed between the two can only leak one unit
(the container then admits one request fewer), never admit one too many.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import multiprocessing
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import Any

HEADER_INTS = 8
H_TOP_ROW = 0  # the highest row ever claimed: readers of every row stop there
# row int fields (int64)
R_PID = 0
R_HELD = 1
R_WAITING = 2
R_CONNECTIONS = 3
R_STAMP = 4
ROW_INTS = 5

ARCHIVE_ROW = 0
ARCHIVE_PID = -1
DEFAULT_ROWS = 256

_boards: "weakref.WeakSet[Board]" = weakref.WeakSet()
_inherited: "Board | None" = None


class BoardFull(RuntimeError):
    """More live processes than the board has rows."""


class Board:
    def __init__(self, cells: int, gauge_cells: frozenset[int] = frozenset(),
                 state_dir: str | None = None, rows: int = DEFAULT_ROWS,
                 limit: int = 0, max_queue: int = 0) -> None:
        self.cells = cells
        self.limit = limit
        self.max_queue = max_queue
        self.gauge_cells = gauge_cells  # cells not summed into the archive
        self.rows = rows
        int_bytes = 8 * (HEADER_INTS + rows * ROW_INTS)
        self._mm = mmap.mmap(-1, int_bytes + 8 * rows * cells)  # MAP_SHARED | MAP_ANONYMOUS
        self.ints = memoryview(self._mm)[:int_bytes].cast("q")
        self.floats = memoryview(self._mm)[int_bytes:].cast("d")
        self.ints[HEADER_INTS + ARCHIVE_ROW * ROW_INTS + R_PID] = ARCHIVE_PID
        fd, self.lock_path = tempfile.mkstemp(prefix="moma-runtime-", suffix=".lock",
                                              dir=state_dir or tempfile.gettempdir())
        os.close(fd)
        context = multiprocessing.get_context("fork")
        self.slots = context.BoundedSemaphore(max(limit, 1))
        self.queue = context.BoundedSemaphore(max(max_queue, 1))
        if max_queue == 0:
            self.queue.acquire()  # a semaphore cannot start at 0 units and be bounded
        self._creator = os.getpid()
        self._reset_process()
        _boards.add(self)

    # -- per process ----------------------------------------------------------------
    def _reset_process(self) -> None:
        """Called in a fresh child: own lock fd, own thread lock, no row yet."""
        self._pid = os.getpid()
        self._fd: int | None = None
        self._tlock = threading.Lock()
        self._row: int | None = None

    def _after_fork(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # the parent's open file description: never lock through it
        self._reset_process()

    def lock(self) -> None:
        """Take the board lock (thread lock, then flock). Pair with ``unlock()``."""
        self._tlock.acquire()
        try:
            fd = self._fd
            if fd is None:
                fd = self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._tlock.release()
            raise

    def unlock(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        finally:
            self._tlock.release()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.lock()
        try:
            yield
        finally:
            self.unlock()

    @property
    def row(self) -> int:
        """This process's row, claimed on first use."""
        row = self._row
        if row is None:
            row = self._claim_row()
        return row

    def row_int(self, field: int) -> int:
        """Index into ``ints`` of a field of this process's row."""
        return HEADER_INTS + self.row * ROW_INTS + field

    def cell_base(self) -> int:
        """Index into ``floats`` of this process's first metric cell."""
        return self.row * self.cells

    def _claim_row(self) -> int:
        pid = os.getpid()
        with self.locked():
            if self._row is not None:
                return self._row
            free = None
            for row in range(1, self.rows):
                owner = self.ints[HEADER_INTS + row * ROW_INTS + R_PID]
                if owner == pid:
                    free = row  # stale row of a recycled pid: reclaim missed it
                    held, waiting = self._archive_row(row)
                    if self.limit > 0:
                        _post(self.slots, held)
                        _post(self.queue, waiting)
                    break
                if owner == 0 and free is None:
                    free = row
            if free is None:
                raise BoardFull(f"more than {self.rows - 1} worker processes")
            self.ints[HEADER_INTS + free * ROW_INTS + R_PID] = pid
            self.ints[H_TOP_ROW] = max(self.ints[H_TOP_ROW], free)
            self._row = free
            return free

    # -- connection balancing (workers.py) ----------------------------------------------
    def publish_connections(self, count: int | None, now: float = 0.0) -> None:
        """This worker's open connections as of ``now`` (``time.monotonic()``); None: it
        takes no new ones (busy, stopping)."""
        self.ints[self.row_int(R_STAMP)] = int(now * 1000)
        self.ints[self.row_int(R_CONNECTIONS)] = 0 if count is None else count + 1

    def fewest_connections_elsewhere(self, since: float = 0.0) -> int | None:
        """The fewest open connections of any other worker that takes new ones and said
        so at ``since`` or later (``time.monotonic()``); None if there is none.

        Reads without the lock: each value is one aligned int64 that only its owner
        writes, and a value a moment old only makes balancing a connection less exact.
        """
        ints, own, oldest = self.ints, self.row, int(since * 1000)
        fewest = None
        for row in range(1, ints[H_TOP_ROW] + 1):
            base = HEADER_INTS + row * ROW_INTS
            value = ints[base + R_CONNECTIONS]
            if value and row != own and ints[base + R_STAMP] >= oldest \
                    and (fewest is None or value - 1 < fewest):
                fewest = value - 1
        return fewest

    # -- master side ------------------------------------------------------------------
    def reclaim(self, pid: int) -> int:
        """A process exited: fold its row into the archive, post back the units it
        held. Returns the slots freed."""
        freed = queued = 0
        with self.locked():
            for row in range(1, self.rows):
                if self.ints[HEADER_INTS + row * ROW_INTS + R_PID] == pid:
                    held, waiting = self._archive_row(row)
                    freed, queued = freed + held, queued + waiting
        if self.limit > 0:
            _post(self.slots, freed)
            _post(self.queue, queued)
        return freed

    def _archive_row(self, row: int) -> tuple[int, int]:
        """Add a row's cells to the archive, clear it. Caller holds the lock.
        Returns the slot and queue units the row held."""
        base = HEADER_INTS + row * ROW_INTS
        held, waiting = self.ints[base + R_HELD], self.ints[base + R_WAITING]
        for field in range(ROW_INTS):
            self.ints[base + field] = 0
        floats, cells = self.floats, self.cells
        src, dst = row * cells, ARCHIVE_ROW * cells
        for i in range(cells):
            value = floats[src + i]
            if value:
                if i not in self.gauge_cells:
                    floats[dst + i] += value
                floats[src + i] = 0.0
        return held, waiting

    def live_rows(self) -> list[int]:
        """Rows of live processes (archive excluded). Caller holds the lock."""
        return [row for row in range(1, self.rows)
                if self.ints[HEADER_INTS + row * ROW_INTS + R_PID] > 0]

    def close(self) -> None:
        """Remove the lock file (the creating process, at exit)."""
        if os.getpid() == self._creator:
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)


def _post(semaphore: Any, units: int) -> None:
    for _ in range(units):
        try:
            semaphore.release()
        except ValueError:  # already full: never hand out more than the limit
            break


def _after_fork_in_child() -> None:
    for board in list(_boards):
        board._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def install(board: Board) -> None:
    """Make ``board`` the one workers forked from this process will use."""
    global _inherited
    _inherited = board


def inherited() -> Board | None:
    """The board made by the gunicorn master before fork, if any."""
    return _inherited
