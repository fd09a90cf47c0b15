"""``moma serve`` and ``moma worker``."""

from __future__ import annotations

import logging

import click

from ..config import Settings
from ..server import run_worker, serve as run_server


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="API processes.")
@click.option("--no-worker", is_flag=True, help="Do not start an operation worker beside the API.")
@click.option("--no-auth", is_flag=True, help="Accept requests without a token (loopback addresses only).")
@click.option("--registry", default=None, help="Push built images to this registry, e.g. 127.0.0.1:5000.")
def serve(host: str, port: int, workers: int, no_worker: bool, no_auth: bool, registry: str | None) -> None:
    """Run the management API (gunicorn) and an operation worker, on embedded defaults:
    SQLite in $MOMA_HOME (default ~/.moma), images on the local Docker engine.

    On first start an admin token is written to $MOMA_HOME/admin-token (mode 0600);
    the CLI reads it from there.

    \b
    Examples:
      moma serve
      moma serve --host 0.0.0.0 --port 8081 --registry 127.0.0.1:5000
      MOMA_DATABASE_URL=postgresql://moma@db/moma moma serve --no-worker
    """
    overrides: dict[str, object] = {"auth": not no_auth}
    if registry:
        overrides["registry"] = registry
    _logging()
    run_server(Settings.load(**overrides), host, port, workers, with_worker=not no_worker)


@click.command()
@click.option("--parent-pid", type=int, default=None, hidden=True,
              help="End when this process (moma serve) ends; set by moma serve.")
def worker(parent_pid: int | None) -> None:
    """Run an operation worker alone: it claims image builds (and later service changes)
    from the store. Start several, on several hosts sharing the store, to scale out.

    \b
    Example:
      MOMA_DATABASE_URL=postgresql://moma@db/moma moma worker
    """
    _logging()
    run_worker(Settings.load(), parent_pid)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
