"""`moma serve` as processes on one machine: two instances side by side, and what a
kill -9 of one leaves behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.moma_server import MomaServer
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_two_servers_share_no_control_socket(tmp_path: Path):
    """gunicorn 27 opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl (or
    ~/.gunicorn/gunicorn.ctl) by default: a second instance took over the first's, and
    the first one's exit removed the second's. moma serve opens none."""
    run_dir, user_home = tmp_path / "run", tmp_path / "user"
    run_dir.mkdir(mode=0o700)
    user_home.mkdir()
    shared = {"XDG_RUNTIME_DIR": str(run_dir), "HOME": str(user_home)}
    first = MomaServer(tmp_path / "first", shared).start()
    try:
        second = MomaServer(tmp_path / "second", shared).start()
        try:
            sockets = [path for path in tmp_path.rglob("*") if stat.S_ISSOCK(path.lstat().st_mode)]
            assert sockets == []
        finally:
            second.stop()
        assert first.client().call("GET", "/models").status_code == 200
        assert "Control socket" not in first.log.read_text()
    finally:
        first.stop()


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def workers_of(home: Path) -> set[int]:
    """Live `moma worker` processes started for ``home`` (zombies count as gone)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"management.cli\0worker" not in (proc / "cmdline").read_bytes():
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone while we looked
            continue
        if f"MOMA_HOME={home}".encode() in environ and alive(int(proc.name)):
            found.add(int(proc.name))
    return found


def test_a_killed_server_takes_its_worker_along(tmp_path: Path):
    home = tmp_path / "home"
    for _ in range(2):
        server = MomaServer(home).start()
        try:
            workers = wait_until(lambda: workers_of(home), timeout=30)
            assert len(workers) == 1, workers
            os.kill(server.process.pid, signal.SIGKILL)  # the server alone, not its process group
            server.process.wait(10)
            started = time.monotonic()
            assert wait_until(lambda: not workers_of(home), timeout=10), f"worker {workers} outlived its server"
            assert time.monotonic() - started < 5
        finally:
            server.kill()
            for pid in workers_of(home):  # what the defect leaves behind
                os.kill(pid, signal.SIGKILL)


PARENT = textwrap.dedent("""
    import signal, subprocess, sys
    from management.worker.parent import death_signal
    kernel = sys.argv[2] == "kernel"
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[3]], stdout=subprocess.PIPE, text=True,
                             preexec_fn=death_signal() if kernel else None)
    print(child.pid, child.stdout.readline().strip(), flush=True)
    signal.pause()
""")
CHILD = textwrap.dedent("""
    import os, sys, threading
    from management.worker.parent import watch_parent
    watch_parent(os.getppid(), threading.Event(), interval=float(sys.argv[1]))
    print("watching", flush=True)
    threading.Event().wait()
""")


@pytest.mark.parametrize("how", [("kernel", "3600"), ("pid-watch", "0.2")], ids=lambda how: how[0])
def test_each_way_of_dying_with_the_parent_works_alone(how: tuple[str, str]):
    """PR_SET_PDEATHSIG (the pid watch asleep for an hour), and the pid watch alone."""
    child = 0
    with subprocess.Popen([sys.executable, "-c", PARENT, CHILD, *how], stdout=subprocess.PIPE, text=True,
                          cwd=REPO) as parent:
        try:
            child_pid, state = parent.stdout.readline().split()
            child = int(child_pid)
            assert state == "watching" and alive(child)
            parent.kill()
            parent.wait(10)
            assert wait_until(lambda: not alive(child), timeout=5), f"{how[0]}: the child outlived its parent"
        finally:
            parent.kill()
            if child and alive(child):
                os.kill(child, signal.SIGKILL)
