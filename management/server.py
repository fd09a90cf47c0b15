"""Running the service: ``moma serve`` (API under gunicorn, plus a worker process)
and ``moma worker`` (a worker alone, on this or another host sharing the store)."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from builder.build import Builder
from builder.scratch import sweep_scratch_directories

from . import tracing
from .config import Settings
from .engines.factory import Engines
from .errors import BadRequest
from .service_keys import installation_cipher
from .store import Store
from .worker import Worker
from .worker.autoscaling import ServiceAutoscaling
from .worker.credential_renewal import CredentialRenewal
from .worker.image_builds import ImageBuilds
from .worker.parent import death_signal, watch_parent
from .worker.reconciler import Reconciler
from .worker.service_deployments import Deployer, ServiceDeployments

log = logging.getLogger("moma.server")


def prepare(settings: Settings) -> Store:
    """Create the data dir, migrate the schema, make the default account, and the
    admin token on first start (``$MOMA_HOME/admin-token``, mode 0600)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.home, 0o700)
    store = Store(settings.db_url)
    store.migrate()
    store.accounts.ensure_default()
    _ensure_admin_token(settings, store)
    return store


def _ensure_admin_token(settings: Settings, store: Store) -> None:
    path = settings.admin_token_file
    if path.exists() and store.tokens.authenticate(path.read_text().strip()):
        return
    secret, _ = store.tokens.create("admin", None)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    os.chmod(path, 0o600)
    log.info("wrote a new admin token to %s", path)


def check_binding(host: str, auth: bool) -> None:
    if auth:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise BadRequest(f"--no-auth is only allowed on a loopback address, not {host}")


class _ApiServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .api import create_app

        store = Store(Settings.load().db_url)
        return create_app(store=store)


def serve(settings: Settings, host: str, port: int, workers: int, with_worker: bool = True) -> None:
    check_binding(host, settings.auth)
    prepare(settings).close()
    os.environ.update(settings.as_env())
    worker = _start_worker_process() if with_worker else None
    try:
        _ApiServer({
            "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": 8,
            "timeout": 120, "graceful_timeout": 20, "accesslog": "-", "errorlog": "-", "loglevel": "info",
            "proc_name": "moma-api",
            # gunicorn's control socket defaults to one path per user, which a second
            # `moma serve` takes over; nothing of ours uses it (signals stop and reload)
            "control_socket_disable": True,
        }).run()
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def _start_worker_process() -> subprocess.Popen:
    """The worker, from this (the main) thread and before any other thread starts: it
    dies with this process (see ``worker/parent.py``)."""
    return subprocess.Popen([sys.executable, "-m", "management.cli", "worker", "--parent-pid", str(os.getpid())],
                            env=os.environ.copy(), preexec_fn=death_signal())


def run_worker(settings: Settings, parent_pid: int | None = None) -> None:
    """Carry out operations until SIGTERM or SIGINT; the running ones finish first.
    With ``parent_pid`` (``moma serve``'s worker), the worker ends when that process does."""
    orphaned = threading.Event()
    if parent_pid is not None:
        watch_parent(parent_pid, orphaned)
    sweep_scratch_directories()
    tracing.start(settings, "worker")
    store = prepare(settings)
    builder = Builder(settings.builder_config())
    deployer = Deployer(settings, store, Engines(settings, store.meta.installation_id()),
                        installation_cipher(settings.secret_key_file, store.meta.remember))
    worker = Worker(settings, store, {"Image": ImageBuilds(settings, store, builder),
                                      "Service": ServiceDeployments(deployer)}, orphaned=orphaned)
    reconciler = Reconciler(deployer, worker.id, settings.reconcile_seconds, autoscale=ServiceAutoscaling(deployer))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=reconciler.run, args=(stop,), name="moma-reconciler", daemon=True).start()
    renewal = CredentialRenewal(store, settings, worker.id)
    threading.Thread(target=renewal.run, args=(stop,), name="moma-credential-renewal", daemon=True).start()
    worker.run(stop)
    store.close()
    tracing.shutdown()
