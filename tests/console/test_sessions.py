"""Console sessions: the cookie seals the token, a session ends for good, and the key
is made once however many processes start together."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from management.console import sessions
from management.console.sessions import Sessions, load_or_create_key

TOKEN = "moma_secret-token-value"


def test_the_cookie_seals_the_token_and_the_session_comes_back(tmp_path: Path):
    store = Sessions(tmp_path)
    started, cookie = store.start(TOKEN, admin=False, account=("s", "r", "a"))
    assert TOKEN not in cookie and "secret" not in cookie
    loaded = store.load(cookie)
    assert loaded == started and loaded.account == ("s", "r", "a") and not loaded.admin
    assert stat.S_IMODE((tmp_path / "console.key").stat().st_mode) == 0o600


def test_a_changed_or_moved_cookie_is_no_session(tmp_path: Path):
    store = Sessions(tmp_path)
    _, cookie = store.start(TOKEN, admin=True, account=None)
    other, other_cookie = store.start(TOKEN, admin=True, account=None)
    session_id, sealed = cookie.split(".")
    middle = len(sealed) // 2  # a character all of whose bits are used (unlike the last before padding)
    flipped = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1:]
    assert store.load(f"{session_id}.{flipped}") is None
    assert store.load(f"{other.id}.{sealed}") is None  # sealed for another id
    assert store.load(session_id) is None and store.load("") is None and store.load(None) is None
    assert store.load(other_cookie) is not None


def test_an_ended_session_stays_ended(tmp_path: Path):
    store = Sessions(tmp_path)
    session, cookie = store.start(TOKEN, admin=True, account=None)
    store.end(session.id)
    assert store.load(cookie) is None
    assert Sessions(tmp_path).load(cookie) is None  # another process of the same server


def test_sessions_run_out_and_their_files_are_swept(tmp_path: Path, monkeypatch):
    store = Sessions(tmp_path)
    monkeypatch.setattr(sessions, "LIFETIME_SECONDS", -1)
    _, cookie = store.start(TOKEN, admin=True, account=None)
    assert store.load(cookie) is None
    monkeypatch.setattr(sessions, "LIFETIME_SECONDS", 3600)
    store.start(TOKEN, admin=True, account=None)
    assert len(list(store.directory.iterdir())) == 1  # the run-out one is gone


def test_processes_starting_together_share_one_key(tmp_path: Path):
    path = tmp_path / "console.key"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        keys = pool.map(load_or_create_key, [path] * 24)
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["console.key"]  # no temporary file left
