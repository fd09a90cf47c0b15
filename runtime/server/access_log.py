"""gunicorn logger class: JSON error log and JSON access log with the request id.

Named by ``gunicorn_conf.logger_class``. Access lines go to stdout (or the
``accesslog`` file), everything else to stderr, one JSON object per line.

Access lines are cheap on purpose (they are written for every request): formatted with
the C string escaper instead of ``json.dumps`` of a dict, the timestamp's seconds part
cached, and written in batches, at the latest every 0.2 s or every 256 lines, by the
worker instead of one write+flush per request through ``logging``. A worker flushes
what it holds when it exits; only a SIGKILL can lose the last 0.2 s of access lines.
"""

from __future__ import annotations

import atexit
import datetime
import os
import threading
import time
from json.encoder import encode_basestring_ascii as _quote
from typing import IO, Any

from gunicorn.glogging import Logger

from ..logs import JsonFormatter

FLUSH_INTERVAL_S = 0.2
FLUSH_LINES = 256


def _q(value: Any) -> str:
    return "null" if value is None else _quote(str(value))


class LineBuffer:
    """Lines written by any thread, flushed in batches by a per-process thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._pid = 0
        self._stop = threading.Event()

    def write(self, line: str) -> None:
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            lines = self._lines
            lines.append(line)
            full = len(lines) >= FLUSH_LINES
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            if lines:
                try:
                    self.stream.write("".join(lines))
                    self.stream.flush()
                except (OSError, ValueError):
                    pass  # stdout closed or full: dropping log lines must not fail requests

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._lines = []  # lines inherited from the parent are the parent's to write
            self._stop = threading.Event()
        threading.Thread(target=self._run, name="moma-access-log", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()


class JsonLogger(Logger):
    """Access lines never carry a query string, on any route: no route takes secrets in
    a query, but a careless client may put its key there (``?key=...``), and ``/score``'s
    query arguments are the scoring input. A line says how long the query was."""

    def setup(self, cfg: Any) -> None:  # gunicorn's Config
        super().setup(cfg)
        formatter = JsonFormatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        stream = None
        for handler in self.access_log.handlers:
            stream = getattr(handler, "stream", None) or stream
        self._access = LineBuffer(stream) if stream is not None and cfg.accesslog else None
        self._second = -1
        self._stamp = ""

    def flush_access(self) -> None:
        if self._access is not None:
            self._access.flush()

    def access(self, resp: Any, req: Any, environ: dict[str, Any],
               request_time: datetime.timedelta) -> None:
        out = self._access
        if out is None:
            if self.access_log_enabled:  # logconfig/syslog set up by the user: use logging
                super().access(resp, req, environ, request_time)
            return
        try:
            now = time.time()
            second = int(now)
            if second != self._second:
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                self._second = second
            status = getattr(resp, "status_code", None) or str(resp.status).split(" ", 1)[0]
            out.write(
                f'{{"time":"{self._stamp}.{int((now - second) * 1000):03d}Z","level":"info",'
                f'"logger":"access","request_id":{_q(environ.get("moma.request_id"))},'
                f'"method":{_q(environ.get("REQUEST_METHOD"))},'
                f'"path":{_q(environ.get("PATH_INFO"))},'
                f'"query_bytes":{len(environ.get("QUERY_STRING") or "")},"status":{int(status)},'
                f'"duration_ms":{request_time.total_seconds() * 1000:.3f},'
                f'"bytes":{int(getattr(resp, "sent", 0) or 0)},'
                f'"remote":{_q(environ.get("REMOTE_ADDR"))},'
                f'"user_agent":{_q(environ.get("HTTP_USER_AGENT"))},"pid":{os.getpid()}}}\n')
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            self.error_log.exception("cannot write access log line")

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: datetime.timedelta) -> dict[str, Any]:
        """gunicorn's format atoms (a user's logconfig or syslog) without the query:
        the request line (``%(r)s``) and ``%(q)s`` lose it, the key header and the raw
        URI are left out."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["r"] = f'{environ.get("REQUEST_METHOD")} {environ.get("PATH_INFO")} ' \
                     f'{environ.get("SERVER_PROTOCOL")}'
        atoms["q"] = ""
        for name in ("{authorization}i", "{query_string}e", "{raw_uri}e"):
            atoms.pop(name, None)
        return atoms

