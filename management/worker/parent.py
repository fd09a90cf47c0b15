"""A worker that ``moma serve`` starts ends with the server, however the server ends.

``moma serve`` starts it with ``PR_SET_PDEATHSIG`` set between fork and exec
(:func:`death_signal`): the kernel kills the worker when the server dies, even by
SIGKILL, even while the worker is still importing or stuck in a build. That exists
only on Linux, and it fires when the *thread* that started the worker ends rather
than its process, so the worker also watches its parent pid (:func:`watch_parent`):
once orphaned it sets ``orphaned`` (the heartbeat stops renewing leases at once) and
exits. Operations it held are then taken over by another worker when their leases
run out, as after any crash.
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


def death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child killed when this thread ends; None where
    the kernel has no such thing. ``prctl`` is looked up here, before the fork: the
    child only calls it. (A ``preexec_fn`` is unsafe in a process with threads; the
    server starts its worker before it starts any.)"""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the worker's pid watch alone
        return None

    def set_in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return set_in_child


def watch_parent(parent_pid: int, orphaned: threading.Event, interval: float = WATCH_SECONDS,
                 exit: Callable[[], None] = lambda: os._exit(EXIT_ORPHANED)) -> threading.Thread:
    """End this process once ``parent_pid`` is no longer its parent (checked at once:
    the parent may have died before we got here)."""
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
