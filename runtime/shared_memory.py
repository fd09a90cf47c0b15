"""Memory shared by every worker process of a container: admission semaphores, who
holds what, connection counts and metric cells.

A pre-fork server's master creates one ``SharedMemory`` before it forks any worker
(``server/gunicorn_conf.on_starting``) and ``install``s it; workers inherit it, and the
app finds it with ``inherited()`` (or makes one for its own process when there is none:
tests, other servers). It holds:

- ``slots``: a POSIX counting semaphore with ``MAX_CONCURRENT_REQUESTS`` units and
  ``queue``: one with ``MAX_QUEUE`` units (places to wait for a slot). Taking or giving
  a unit without waiting is a userspace atomic operation (futex), with no system call
  and without releasing the GIL; waiting for one sleeps in the kernel until a unit is
  posted or the wait times out.
- an anonymous shared ``mmap`` laid out as below, one row per live process (row 0
  archives dead ones). A process writes only its own row, under a thread lock (or,
  for ``connections`` and ``stamp``, only from its main thread).
- a lock for the rare whole-memory operations (claiming a row, reclaiming a dead
  worker's row, reading every row for ``/metrics``): a thread lock plus ``flock`` on a
  file under ``MOMA_STATE_DIR``, which the kernel drops if its holder dies.

Layout (this module alone knows it; everything else goes through a view)::

    Header   top_row: int64 (the highest row ever claimed), 7 x int64 spare
    Row      x rows: pid, held (slot units held), waiting (queue units held),
             connections (1 + the connections a worker has open, 0 while it takes
             no part in connection balancing), stamp (ms, when it said so): int64
    cells    rows x cells: float64 (what each cell means: ``metrics.py``)

Views: ``admission`` (the semaphores, this process's held and waiting units, their
totals), ``balance`` (connection counts, ``server/gthread.py``), ``cells`` (this
process's metric cells, their totals).

When a worker exits, the master calls ``reclaim(pid)``: the dead row's cells go to the
archive row, and the slot and queue units it held are posted back. A process records a
unit right after taking it and un-records it right before giving it back, so a worker
killed between the two can only leak one unit (the container then admits one request
fewer), never admit one too many.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import multiprocessing
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import Any

ARCHIVE_ROW = 0
ARCHIVE_PID = -1
DEFAULT_ROWS = 256


class Header(ctypes.Structure):
    _fields_ = [("top_row", ctypes.c_int64), ("spare", ctypes.c_int64 * 7)]


class Row(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int64), ("held", ctypes.c_int64), ("waiting", ctypes.c_int64),
                ("connections", ctypes.c_int64), ("stamp", ctypes.c_int64)]


_INT = ctypes.sizeof(ctypes.c_int64)
_HEADER_INTS = ctypes.sizeof(Header) // _INT
_ROW_INTS = ctypes.sizeof(Row) // _INT
_PID, _HELD, _WAITING, _CONNECTIONS, _STAMP = (getattr(Row, name).offset // _INT
                                               for name, *_ in Row._fields_)

_memories: "weakref.WeakSet[SharedMemory]" = weakref.WeakSet()
_inherited: "SharedMemory | None" = None


class MemoryFull(RuntimeError):
    """More live processes than the memory has rows."""


class SharedMemory:
    def __init__(self, cells: int, gauge_cells: frozenset[int] = frozenset(),
                 state_dir: str | None = None, rows: int = DEFAULT_ROWS,
                 limit: int = 0, max_queue: int = 0) -> None:
        self.cell_count = cells
        self.gauge_cells = gauge_cells  # cells not summed into the archive
        self.rows = rows
        int_bytes = ctypes.sizeof(Header) + rows * ctypes.sizeof(Row)
        self._mm = mmap.mmap(-1, int_bytes + 8 * rows * cells)  # MAP_SHARED | MAP_ANONYMOUS
        self._ints = memoryview(self._mm)[:int_bytes].cast("q")
        self._floats = memoryview(self._mm)[int_bytes:].cast("d")
        self._ints[self._base(ARCHIVE_ROW) + _PID] = ARCHIVE_PID
        fd, self.lock_path = tempfile.mkstemp(prefix="moma-runtime-", suffix=".lock",
                                              dir=state_dir or tempfile.gettempdir())
        os.close(fd)
        self._creator = os.getpid()
        self._reset_process()
        self.admission = AdmissionCounters(self, limit, max_queue)
        self.balance = ConnectionBalance(self)
        self.cells = MetricCells(self)
        _memories.add(self)

    # -- per process ----------------------------------------------------------------
    def _reset_process(self) -> None:
        """Called in a fresh child: own lock fd, own thread lock, no row yet."""
        self._fd: int | None = None
        self._tlock = threading.Lock()
        self._row: int | None = None

    def _after_fork(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # the parent's open file description: never lock through it
        self._reset_process()
        self.cells._mine = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The whole-memory lock (thread lock, then flock)."""
        self._tlock.acquire()
        try:
            fd = self._fd
            if fd is None:
                fd = self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._tlock.release()
            raise
        try:
            yield
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                self._tlock.release()

    @property
    def row(self) -> int:
        """This process's row, claimed on first use."""
        row = self._row
        if row is None:
            row = self._claim_row()
        return row

    def own(self, field: int) -> int:
        """Index into the int view of a field of this process's row."""
        return self._base(self.row) + field

    @staticmethod
    def _base(row: int) -> int:
        return _HEADER_INTS + row * _ROW_INTS

    def _claim_row(self) -> int:
        pid = os.getpid()
        with self.locked():
            if self._row is not None:
                return self._row
            free = None
            for row in range(1, self.rows):
                owner = self._ints[self._base(row) + _PID]
                if owner == pid:
                    free = row  # stale row of a recycled pid: reclaim missed it
                    self.admission.post(*self._archive_row(row))
                    break
                if owner == 0 and free is None:
                    free = row
            if free is None:
                raise MemoryFull(f"more than {self.rows - 1} worker processes")
            self._ints[self._base(free) + _PID] = pid
            self._ints[0] = max(self._ints[0], free)  # Header.top_row
            self._row = free
            return free

    def _top_row(self) -> int:
        return self._ints[0]

    def _live_rows(self) -> list[int]:
        """Rows of live processes (archive excluded). Caller holds the lock."""
        ints = self._ints
        return [row for row in range(1, self.rows) if ints[self._base(row) + _PID] > 0]

    def _sum(self, field: int) -> int:
        """A row field summed over live rows. Caller holds the lock."""
        return sum(self._ints[self._base(row) + field] for row in self._live_rows())

    # -- master side ------------------------------------------------------------------
    def reclaim(self, pid: int) -> int:
        """A process exited: fold its row into the archive, post back the units it
        held. Returns the slots freed."""
        freed = queued = 0
        with self.locked():
            for row in range(1, self.rows):
                if self._ints[self._base(row) + _PID] == pid:
                    held, waiting = self._archive_row(row)
                    freed, queued = freed + held, queued + waiting
        self.admission.post(freed, queued)
        return freed

    def _archive_row(self, row: int) -> tuple[int, int]:
        """Add a row's cells to the archive, clear it. Caller holds the lock.
        Returns the slot and queue units the row held."""
        base = self._base(row)
        held, waiting = self._ints[base + _HELD], self._ints[base + _WAITING]
        for field in range(_ROW_INTS):
            self._ints[base + field] = 0
        floats, cells = self._floats, self.cell_count
        src, dst = row * cells, ARCHIVE_ROW * cells
        for i in range(cells):
            value = floats[src + i]
            if value:
                if i not in self.gauge_cells:
                    floats[dst + i] += value
                floats[src + i] = 0.0
        return held, waiting

    def close(self) -> None:
        """Remove the lock file (the creating process, at exit)."""
        if os.getpid() == self._creator:
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)


class AdmissionCounters:
    """The admission semaphores, and the units this process holds of each."""

    def __init__(self, memory: SharedMemory, limit: int, max_queue: int) -> None:
        self._memory = memory
        self.limit = limit
        self.max_queue = max_queue
        context = multiprocessing.get_context("fork")
        self.slots = context.BoundedSemaphore(max(limit, 1))
        self.queue = context.BoundedSemaphore(max(max_queue, 1))
        if max_queue == 0:
            self.queue.acquire()  # a semaphore cannot start at 0 units and be bounded
        self._lock = threading.Lock()

    def count_held(self, change: int) -> None:
        self._count(_HELD, change)

    def count_waiting(self, change: int) -> None:
        self._count(_WAITING, change)

    def _count(self, field: int, change: int) -> None:
        memory = self._memory
        index = memory.own(field)
        with self._lock:
            memory._ints[index] += change

    def totals(self) -> tuple[int, int]:
        """Slot and queue units held by live processes."""
        memory = self._memory
        memory.row  # noqa: B018 - this process's row before the lock: claiming takes it
        with memory.locked():
            return memory._sum(_HELD), memory._sum(_WAITING)

    def post(self, slots: int, queue: int) -> None:
        """Give back units a dead process held (never more than the limit)."""
        if self.limit > 0:
            _post(self.slots, slots)
            _post(self.queue, queue)


class ConnectionBalance:
    """Open connections per worker, for spreading new ones (``server/gthread.py``)."""

    def __init__(self, memory: SharedMemory) -> None:
        self._memory = memory

    def publish(self, count: int | None, now: float = 0.0) -> None:
        """This worker's open connections as of ``now`` (``time.monotonic()``); None: it
        takes no new ones (busy, stopping)."""
        memory = self._memory
        memory._ints[memory.own(_STAMP)] = int(now * 1000)
        memory._ints[memory.own(_CONNECTIONS)] = 0 if count is None else count + 1

    def fewest_elsewhere(self, since: float = 0.0) -> int | None:
        """The fewest open connections of any other worker that takes new ones and said
        so at ``since`` or later (``time.monotonic()``); None if there is none.

        Reads without the lock: each value is one aligned int64 that only its owner
        writes, and a value a moment old only makes balancing a connection less exact.
        """
        memory = self._memory
        ints, own, oldest = memory._ints, memory.row, int(since * 1000)
        fewest = None
        for row in range(1, memory._top_row() + 1):
            base = memory._base(row)
            value = ints[base + _CONNECTIONS]
            if value and row != own and ints[base + _STAMP] >= oldest \
                    and (fewest is None or value - 1 < fewest):
                fewest = value - 1
        return fewest


class MetricCells:
    """Float cells per process; ``metrics.py`` says what each one counts."""

    def __init__(self, memory: SharedMemory) -> None:
        self._memory = memory
        self._mine: "memoryview[float] | None" = None  # this process's cells (reset in a child)

    def mine(self) -> "memoryview[float]":
        """This process's cells (index 0 is its first)."""
        mine = self._mine
        if mine is None:
            memory = self._memory
            start = memory.row * memory.cell_count
            mine = self._mine = memory._floats[start:start + memory.cell_count]
        return mine

    def totals(self) -> list[float]:
        """Every cell summed over the archive and the live rows."""
        memory = self._memory
        memory.row  # noqa: B018 - this process's row before the lock: claiming takes it
        cells = memory.cell_count
        with memory.locked():
            total = [0.0] * cells
            for row in (ARCHIVE_ROW, *memory._live_rows()):
                chunk = memory._floats[row * cells:(row + 1) * cells].tolist()
                total = [a + b for a, b in zip(total, chunk)]
        return total


def _post(semaphore: Any, units: int) -> None:
    for _ in range(units):
        try:
            semaphore.release()
        except ValueError:  # already full: never hand out more than the limit
            break


def _after_fork_in_child() -> None:
    for memory in list(_memories):
        memory._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def install(memory: SharedMemory) -> None:
    """Make ``memory`` the one workers forked from this process will use."""
    global _inherited
    _inherited = memory


def inherited() -> SharedMemory | None:
    """The memory a server's master made before fork, if any."""
    return _inherited
