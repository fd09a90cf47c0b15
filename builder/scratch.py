"""Scratch directories of builds (``$TMPDIR/moma-build-*``, the tool homes, base image
roots): removed when their block ends, and swept when their process died without ending
it (SIGKILL, a power cut).

A live directory is told from a dead one by a lock: its process holds an exclusive
``flock`` on the directory itself from just after creating it until just before
removing it, and the sweep removes only directories whose lock it can take, while
holding it. Locks die with their process, so no pid files and no guessing: a sweep
never removes a live build's directory, whichever process or worker on the host owns it.
The window between creating a directory and locking it is closed from the owner's side:
after locking, it checks that the path still names the directory it locked, and makes
another if a sweep got there first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

PREFIXES = ("moma-build-", "moma-tool-home-", "moma-base-")

log = logging.getLogger("moma.builder")


@contextlib.contextmanager
def scratch_directory(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A new directory ``<parent or $TMPDIR>/<prefix>*``, locked while the block runs and
    removed with everything in it when the block ends, however it ends."""
    path, descriptor = _create_locked(prefix, parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(descriptor)


def sweep_scratch_directories(parent: Path | None = None) -> list[Path]:
    """Remove the scratch directories under ``parent`` (default ``$TMPDIR``) that no live
    process holds; return them, sorted. Directories of other users, symbolic links and
    anything else are left alone."""
    root = Path(parent or tempfile.gettempdir())
    removed = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(PREFIXES) and _remove_if_unheld(path):
            log.info("removed %s, the scratch directory of a process that is gone", path)
            removed.append(path)
    return removed


def _create_locked(prefix: str, parent: Path | None) -> tuple[Path, int]:
    while True:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        descriptor = _open_directory(path)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if _still_names(path, descriptor):
            return path, descriptor
        os.close(descriptor)  # a sweep removed it between mkdtemp and flock


def _remove_if_unheld(path: Path) -> bool:
    try:
        descriptor = _open_directory(path)
    except OSError:  # gone meanwhile, a symbolic link, not a directory
        return False
    try:
        if os.fstat(descriptor).st_uid != os.getuid():
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live build holds it
        if not _still_names(path, descriptor):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return not os.path.lexists(path)
    finally:
        os.close(descriptor)


def _open_directory(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _still_names(path: Path, descriptor: int) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
