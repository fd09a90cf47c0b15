"""``moma serve`` and ``moma worker``."""

from __future__ import annotations

import ipaddress
import logging

import click

from ..config import Settings
from ..server import run_worker
from ..server import serve as run_server


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="API processes.")
@click.option("--no-worker", is_flag=True, help="Do not start an operation worker beside the API.")
@click.option("--no-auth", is_flag=True, help="Accept requests without a token (loopback addresses only).")
@click.option("--registry", default=None, help="Push built images to this registry, e.g. 127.0.0.1:5000.")
@click.option("--public-url", envvar="MOMA_PUBLIC_URL", default=None,
              help="The URL clients reach the API by, for absolute links (MOMA_PUBLIC_URL). "
                   "Default: http://HOST:PORT, unless HOST is a wildcard address (then links are host-relative).")
def serve(host: str, port: int, workers: int, no_worker: bool, no_auth: bool, registry: str | None,
          public_url: str | None) -> None:
    """Run the management API (gunicorn) and an operation worker, on embedded defaults:
    SQLite in $MOMA_HOME (default ~/.moma), images on the local Docker engine.

    On first start an admin token is written to $MOMA_HOME/admin-token (mode 0600);
    the CLI reads it from there.

    \b
    Examples:
      moma serve
      moma serve --host 0.0.0.0 --port 8081 --public-url http://moma.example:8081
      MOMA_DATABASE_URL=postgresql://moma@db/moma moma serve --no-worker
    """
    overrides: dict[str, object] = {"auth": not no_auth, "public_url": public_url or default_public_url(host, port)}
    if registry:
        overrides["registry"] = registry
    _logging()
    if not overrides["public_url"]:
        logging.getLogger("moma.server").warning(
            "--host %s is every address: nextLink and imageBuildLogUri are host-relative; set MOMA_PUBLIC_URL "
            "(or --public-url) to the URL clients use, for clients that need absolute links", host)
    try:
        settings = Settings.load(**overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-url") from None
    run_server(settings, host, port, workers, with_worker=not no_worker)


def default_public_url(host: str, port: int) -> str:
    """``http://host:port`` for a bind address clients can use; "" for a wildcard one."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        return ""
    return f"http://[{host}]:{port}" if address.version == 6 else f"http://{host}:{port}"


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
