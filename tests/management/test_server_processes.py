"""`moma serve` as processes on one machine: two instances side by side, and what a
kill -9 of one leaves behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.server import MomaServer

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
