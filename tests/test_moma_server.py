"""The harness that starts a real `moma serve` (bench/moma_server.py) waits for the
server to answer, however long its workers take to load the app."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from bench import moma_server
from bench.moma_server import MomaServer

# Takes connections at once, answers the first after 2 s (a gunicorn worker still
# loading the app), the next ones at once.
SLOW_TO_ANSWER = textwrap.dedent("""
    import sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    class Answer(BaseHTTPRequestHandler):
        first = True
        def do_GET(self):
            if Answer.first:
                Answer.first = False
                time.sleep(2)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
    HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), Answer).serve_forever()
""")


def test_start_waits_for_a_server_that_is_slow_to_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "slow-moma"
    program.write_text(f"#!{sys.executable}\n{SLOW_TO_ANSWER}")
    program.chmod(0o755)
    monkeypatch.setattr(moma_server, "MOMA", str(program))

    server = MomaServer(tmp_path / "home").start(timeout=30)
    try:
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
