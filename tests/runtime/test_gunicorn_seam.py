"""The seam between the runtime and gunicorn (runtime/server/): every gunicorn member the
package relies on is there as it was written against (compat.MEMBERS), and on a
gunicorn it was not written for the runtime falls back to the stock gthread worker,
keys, admission and metrics included."""

from __future__ import annotations

import importlib
import inspect
import os
import socket
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.unreader import Unreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from runtime.server import compat

from .conftest import REPO, key_hash


def _resolve(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _instance(owner: Any) -> Any:
    """An instance whose attributes __init__ sets, for the classes that have some."""
    if owner is ThreadWorker:
        return ThreadWorker(1, os.getpid(), [], None, 30, Config(), None)
    if owner is TConn:
        left, right = socket.socketpair()
        right.close()
        return TConn(Config(), left, ("127.0.0.1", 1), ("127.0.0.1", 2))
    if owner is Unreader:
        return Unreader()
    return None


def problem(member: compat.Member) -> str:
    """What is wrong with ``member`` in the installed gunicorn ("" when nothing)."""
    try:
        owner = _resolve(member.owner)
    except (ImportError, AttributeError) as exc:
        return f"{member.owner} is gone: {exc}"
    if member.expected == compat.ATTRIBUTE:
        instance = _instance(owner)
        try:
            found = hasattr(owner, member.name) or hasattr(instance, member.name)
        finally:
            if isinstance(instance, TConn):
                instance.sock.close()
            elif isinstance(instance, ThreadWorker):
                instance.tmp.close()
        return "" if found else f"{member.owner}.{member.name} is gone"
    if not hasattr(owner, member.name):
        return f"{member.owner}.{member.name} is gone"
    target = getattr(owner, member.name)
    if member.expected.startswith(compat.SOURCE):
        text = member.expected[len(compat.SOURCE):]
        return "" if text in inspect.getsource(target) else \
            f"{member.owner}.{member.name} no longer contains {text!r}"
    signature = str(inspect.signature(target))
    return "" if signature == member.expected else \
        f"{member.owner}.{member.name}{signature}, written against {member.expected}"


@pytest.mark.parametrize("member", compat.MEMBERS,
                         ids=lambda m: f"{m.owner.rpartition('.')[2]}.{m.name}")
def test_every_gunicorn_member_the_server_package_relies_on_is_there(member):
    assert problem(member) == ""


@pytest.mark.parametrize("member, words", [
    (compat.Member("gunicorn.workers.gthread.ThreadWorker", "accept", "(self, listener, more)"),
     "written against"),
    (compat.Member("gunicorn.workers.gthread.ThreadWorker", "no_such_thing", "(self)"), "gone"),
    (compat.Member("gunicorn.workers.gthread.TConn", "no_such_field", compat.ATTRIBUTE), "gone"),
    (compat.Member("gunicorn.http.wsgi", "create", compat.SOURCE + "not in there"), "contains"),
    (compat.Member("gunicorn.no_such_module", "x", "(self)"), "gone"),
])
def test_the_check_tells_a_changed_member(member, words):
    assert words in problem(member)


def test_the_installed_gunicorn_is_one_the_worker_was_written_for():
    import gunicorn

    assert compat.supported(gunicorn.__version__), gunicorn.__version__


def test_on_another_gunicorn_the_stock_worker_serves_with_keys_admission_and_metrics(
        serve, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import gunicorn\ngunicorn.__version__ = '99.0.0'\n")
    keys = tmp_path / "keys"
    keys.write_text(key_hash("k") + "\n")
    server = serve("ok.py", PYTHONPATH=f"{site}{os.pathsep}{REPO}", MOMA_KEYS_FILE=str(keys),
                   MAX_CONCURRENT_REQUESTS="2")
    log = server.stderr()
    assert "gunicorn 99.0.0 is not a version runtime.server.gthread was written for" in log
    assert "Using worker: gthread" in log
    assert server.score({"x": 1}).status_code == 401
    assert server.score({"x": 1}, key="k").json()["input"] == {"x": 1}
    assert 'moma_requests_total{route="/score",status="200"} 1.0' in \
        server.get("/metrics", key="k").text


def test_gthread_stock_is_chosen_explicitly(serve):
    server = serve("ok.py", WORKER_CLASS="gthread-stock")
    assert "Using worker: gthread" in server.stderr()
    assert "not a version" not in server.stderr()
    assert server.score({"x": 2}).json()["input"] == {"x": 2}
