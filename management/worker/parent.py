"""A worker that ``moma serve`` starts ends with the server, however the server ends.

``PR_SET_PDEATHSIG`` has the kernel kill the worker when the server dies, even by
SIGKILL, even while the worker is stuck in a build. It exists only on Linux, and it
fires when the *thread* that started the worker ends rather than its process, so a
thread also watches the parent pid: once the worker is orphaned it sets ``orphaned``
(the heartbeat stops renewing leases at once) and exits. Operations it held are then
taken over by another worker when their leases run out, as after any crash.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from typing import Callable

log = logging.getLogger("moma.worker")

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5
EXIT_ORPHANED = 3


def die_with_parent(parent_pid: int, orphaned: threading.Event, *, kernel_signal: bool = True,
                    interval: float = WATCH_SECONDS,
                    exit: Callable[[], None] = lambda: os._exit(EXIT_ORPHANED)) -> threading.Thread:
    """Arrange for this process to end when ``parent_pid`` is no longer its parent
    (checked once at once: the parent may have died before we got here)."""
    if kernel_signal:
        _set_pdeathsig(signal.SIGKILL)
    thread = threading.Thread(target=_watch, args=(parent_pid, orphaned, interval, exit),
                              name="moma-parent-watch", daemon=True)
    thread.start()
    return thread


def _watch(parent_pid: int, orphaned: threading.Event, interval: float, exit: Callable[[], None]) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    orphaned.set()
    log.error("the server (pid %d) is gone: stopping now; other workers take over this one's operations",
              parent_pid)
    exit()


def _set_pdeathsig(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux: the pid watch alone
        return
    if prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s; watching the server's pid only",
                    os.strerror(ctypes.get_errno()))
