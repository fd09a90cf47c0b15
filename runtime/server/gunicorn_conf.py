"""gunicorn settings and hooks: ``gunicorn --config python:runtime.server.gunicorn_conf runtime.wsgi:app``
(the images' command, ``contract.COMMAND``).

- Binds ``${MOMA_BIND:-0.0.0.0}:${PORT:-5001}``; with ``REUSE_PORT=true`` one socket
  bound by the master with ``SO_REUSEPORT`` and shared by the workers.
- ``WORKER_CLASS``: ``gthread`` (default: gunicorn's gthread worker as
  ``gthread.ScoringWorker``: keep-alive, connections balanced across workers, requests
  read whole by the event loop before a thread takes them, short requests answered by
  the event loop itself, slow ones on threads so health checks are answered while
  run() calls are busy, queued requests wait in threads; its switches are
  ``gthread.Features``), ``gthread-stock`` (gunicorn's own gthread worker, which
  ``gthread`` falls back to, with one log line, on a gunicorn version not in
  ``compat.WRITTEN_FOR``) or ``sync`` (one request per worker at a time, no keep-alive,
  no protection against slow clients).
- ``WORKERS`` defaults to the container's CPU quota (cgroup v2/v1, else the CPUs this
  process may run on), rounded up (SparkPython: 1, a JVM using every core); ``THREADS``
  defaults to enough threads per worker for every admitted and queued request plus two for health checks (at least 4).
- Before forking, the master creates the shared memory (admission semaphores, who holds
  what, connection counts, metric cells); ``child_exit`` gives back what a dead worker
  held.
- After init() each worker ``gc.freeze()``s what it loaded, so full collections stop
  walking the model and the imported modules (a 70 ms pause per worker before).
- SIGTERM (``docker stop``): workers stop accepting, finish in-flight requests within
  ``graceful_timeout`` (at least 30 s, longer than the scoring timeout), ``/readyz``
  answers 503 ``draining`` meanwhile.
- While a worker's driver init() runs (models can take minutes to load), a heartbeat
  thread tells the master the worker is alive so it is not killed for a slow boot.
- When a worker exits (SIGTERM, max requests), ``worker_exit`` writes the data
  collection rows it still queues (at most ``AML_MODEL_DC_SHUTDOWN_TIMEOUT_S``) and
  exports the telemetry it still queues.
- Logs are JSON: access lines on stdout (``ACCESS_LOG=false`` turns them off), the
  rest on stderr, with the request id.
"""

from __future__ import annotations

import gc
import math
import os
import secrets
import signal
import socket
import threading
from types import FrameType
from typing import Any  # gunicorn's Arbiter, Worker and sockets: no type information

import gunicorn

from .. import datacollection as _datacollection
from .. import metrics as _metrics
from .. import shared_memory as _shared_memory
from .. import telemetry as _telemetry
from ..cgroups import available_cpus, default_workers
from ..config import INSTANCE_ID, Settings, parse_bool, parse_int
from ..errors import ConfigError
from . import compat as _compat
from . import gthread as _gthread

__all__ = ["bind", "worker_class", "workers", "threads", "timeout", "graceful_timeout",
           "keepalive", "reuse_port", "chdir", "accesslog", "errorlog", "loglevel",
           "logger_class", "control_socket_disable", "proc_name", "on_starting", "post_fork",
           "post_worker_init", "child_exit", "worker_exit", "on_exit"]
WORKER_KINDS = ("gthread", "gthread-stock", "sync")

_env = os.environ
# One opaque id for every worker of this container (forked workers inherit os.environ).
_env.setdefault(INSTANCE_ID, secrets.token_hex(8))
_settings = Settings.load()

_host = _env.get("MOMA_BIND") or "0.0.0.0"
_port = parse_int("PORT", _env.get("PORT"), 5001, 1)
bind = [f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"]
_worker_kind = (_env.get("WORKER_CLASS") or "gthread").strip()
if _worker_kind not in WORKER_KINDS:
    raise ConfigError(f"WORKER_CLASS must be one of {', '.join(WORKER_KINDS)}, "
                      f"got {_worker_kind!r}")
_fallback = ""  # why gthread is served by gunicorn's own worker, logged by on_starting
if _worker_kind == "gthread" and not _compat.supported(gunicorn.__version__):
    _fallback = (f"gunicorn {gunicorn.__version__} is not a version runtime.server.gthread "
                 f"was written for ({', '.join(_compat.WRITTEN_FOR)}): serving with gunicorn's "
                 f"stock gthread worker (no connection balancing, inline path, one-write "
                 f"answers or protection against slow clients)")
    _worker_kind = "gthread-stock"
worker_class = {"gthread": "runtime.server.gthread.ScoringWorker", "gthread-stock": "gthread",
                "sync": "sync"}[_worker_kind]
_gthread.Features.from_env(_env)  # bad values stop the master, not each worker
_gthread.limits_from_env(_env, _settings.max_body_bytes)
# SparkPython: one worker by default; its JVM runs Spark on all the container's cores
# (spark_resources.py), and every further worker would be another JVM and heap.
workers = parse_int("WORKERS", _env.get("WORKERS"),
                    1 if _settings.runtime_type == "SparkPython" else default_workers(available_cpus()), 1)
threads = 1 if _worker_kind == "sync" else parse_int(
    "THREADS", _env.get("THREADS"),
    max(4, math.ceil((_settings.max_concurrent + _settings.max_queue) / workers) + 2), 1)
timeout = 30
graceful_timeout = max(30, math.ceil(_settings.scoring_timeout_ms / 1000) + 5)
keepalive = parse_int("KEEPALIVE", _env.get("KEEPALIVE"), 5)
# Two containers of one service share a network namespace during a local update and
# both listen on the port; the kernel spreads connections between them (SO_REUSEPORT).
_reuse_port = parse_bool("REUSE_PORT", _env.get("REUSE_PORT"), False)
# Never gunicorn's own reuse_port: it gives every worker a listening socket of its own,
# and connection balancing (gthread.py) needs the one accept queue the workers share.
# With REUSE_PORT the master binds that one socket with SO_REUSEPORT (on_starting).
reuse_port = False
chdir = _settings.app_root
accesslog = "-" if parse_bool("ACCESS_LOG", _env.get("ACCESS_LOG"), True) else None
errorlog = "-"
loglevel = (_env.get("LOG_LEVEL") or "info").lower()
logger_class = "runtime.server.access_log.JsonLogger"
control_socket_disable = True  # no control socket: the root filesystem may be read-only
proc_name = "moma-runtime"

_BOOT_BEAT_S = 5.0


def on_starting(server: Any) -> None:
    """Master, before any fork: the memory every worker shares."""
    server.log.info("instance %s answers /readyz and /livez as %s", _settings.instance,
                    _settings.instance_id)
    if _fallback:
        server.log.warning("%s", _fallback)
    _shared_memory.install(_metrics.new_shared_memory(
        _settings.state_dir, _settings.max_concurrent, _settings.max_queue))
    if _reuse_port:
        server.LISTENERS = [_reuse_port_listener(server)]


def _reuse_port_listener(server: Any) -> Any:
    """The one listening socket of this container's workers, bound with SO_REUSEPORT so
    that another container in the same network namespace can listen on the port too
    (the next generation during a local update; swarm replicas without IPVS)."""
    from gunicorn.sock import TCP6Socket, TCPSocket

    family = socket.AF_INET6 if ":" in _host else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    try:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        raw.bind((_host, _port))
    except BaseException:
        raw.close()
        raise
    kind = TCP6Socket if family == socket.AF_INET6 else TCPSocket
    return kind((_host, _port), server.cfg, server.log, fd=raw.detach())


def post_fork(server: Any, worker: Any) -> None:
    """Worker, just forked: keep the master's timeout at bay while init() runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(_BOOT_BEAT_S):
            worker.notify()

    threading.Thread(target=beat, name="moma-boot-heartbeat", daemon=True).start()
    worker._moma_boot_stop = stop


def post_worker_init(worker: Any) -> None:
    """Worker, app loaded (init() ran): stop the boot heartbeat, freeze what init() made,
    count dropped clients in the app's metrics, drain on SIGTERM."""
    stop = getattr(worker, "_moma_boot_stop", None)
    if stop is not None:
        stop.set()
    # The model and every imported module stay for the worker's life: keep them out of
    # the cyclic GC's full collections, which otherwise pause a worker for tens of ms.
    gc.freeze()
    runtime = getattr(worker.wsgi, "extensions", {}).get("moma")
    if runtime is not None and hasattr(worker, "count_dropped"):
        worker.count_dropped = runtime.metrics.connection_dropped
    previous = signal.getsignal(signal.SIGTERM)
    if runtime is None or not callable(previous):
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        runtime.lifecycle.drain()
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def child_exit(server: Any, worker: Any) -> None:
    """Master, a worker exited: its admission slots and queue places are free again."""
    memory = _shared_memory.inherited()
    if memory is not None:
        freed = memory.reclaim(worker.pid)
        if freed:
            server.log.warning("worker %s exited holding %d admission slot(s); reclaimed",
                               worker.pid, freed)


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, leaving: write the data collection rows, telemetry and access lines it
    still holds."""
    _datacollection.shutdown()
    _telemetry.shutdown()
    flush = getattr(worker.log, "flush_access", None)
    if flush is not None:
        flush()


def on_exit(server: Any) -> None:
    memory = _shared_memory.inherited()
    if memory is not None:
        memory.close()
