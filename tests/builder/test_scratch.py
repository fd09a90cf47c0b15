"""Scratch directories of builds: held by a lock while their build lives, swept once it is
gone. The owners here are real processes, ended the hard way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.scratch import scratch_directory, sweep_scratch_directories

OWNER = """
import sys
from builder.scratch import scratch_directory
with scratch_directory("moma-build-") as path:
    (path / "fetched").mkdir()
    (path / "fetched" / "weights.bin").write_bytes(b"x" * 1000)
    print(path, flush=True)
    sys.stdin.read()
"""


class Owner:
    """A process holding a build directory until its stdin closes (or it is killed)."""

    def __init__(self, tmp: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "TMPDIR": str(tmp)})
        assert self.process.stdout is not None
        self.path = Path(self.process.stdout.readline().strip())
        assert self.path.is_dir() and self.path.parent == tmp

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.stdout.close()  # type: ignore[union-attr]

    def finish(self) -> int:
        self.process.stdin.close()  # type: ignore[union-attr]
        code = self.process.wait(timeout=30)
        self.process.stdout.close()  # type: ignore[union-attr]
        return code


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    directory = tmp_path / "tmp"
    directory.mkdir()
    return directory


def test_a_dead_builds_directory_is_swept_and_a_live_ones_kept(tmp: Path) -> None:
    dead, live = Owner(tmp), Owner(tmp)
    dead.kill()
    assert dead.path.exists(), "SIGKILL leaves the directory behind"

    assert sweep_scratch_directories(tmp) == [dead.path]

    assert not dead.path.exists()
    assert (live.path / "fetched" / "weights.bin").read_bytes() == b"x" * 1000
    assert live.finish() == 0
    assert list(tmp.iterdir()) == [], "a build removes its own directory when it ends"


def test_directories_without_a_live_owner_are_swept_whatever_they_hold(tmp: Path) -> None:
    legacy = tmp / "moma-build-legacy"
    (legacy / "context" / "app").mkdir(parents=True)
    (legacy / "context" / "app" / "link").symlink_to("/etc")
    tool_home = tmp / "moma-tool-home-abc"
    tool_home.mkdir()

    assert sorted(sweep_scratch_directories(tmp)) == [legacy, tool_home]
    assert list(tmp.iterdir()) == []
    assert Path("/etc/passwd").exists()


def test_other_entries_are_left_alone(tmp: Path, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (tmp / "moma-build-link").symlink_to(target)
    (tmp / "moma-build-file").write_text("not a directory")
    (tmp / "other-build-1").mkdir()

    assert sweep_scratch_directories(tmp) == []
    assert sorted(path.name for path in tmp.iterdir()) == ["moma-build-file", "moma-build-link", "other-build-1"]
    assert target.is_dir()


def test_a_directory_is_removed_when_its_block_ends_even_by_an_exception(tmp: Path) -> None:
    with pytest.raises(RuntimeError):
        with scratch_directory("moma-build-", tmp) as path:
            (path / "partial").write_bytes(b"half")
            raise RuntimeError("build failed")
    assert not path.exists()


@pytest.mark.docker
def test_a_starting_worker_sweeps_dead_builds_and_keeps_live_ones(tmp: Path, tmp_path: Path) -> None:
    dead, live = Owner(tmp), Owner(tmp)
    dead.kill()
    moma = Path(sys.executable).parent / "moma"
    worker = subprocess.Popen([str(moma), "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp), "MOMA_HOME": str(tmp_path / "home")})
    try:
        deadline = time.monotonic() + 60
        while dead.path.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not dead.path.exists(), "the worker did not sweep the dead build's directory"
        assert live.path.is_dir()
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert f"removed {dead.path}, the scratch directory of a process that is gone" in errors
    assert live.finish() == 0
