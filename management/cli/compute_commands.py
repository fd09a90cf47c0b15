"""``moma compute add|list``: where services run. ``local`` (one container per service
on the server's Docker engine) always exists; swarm computes add replicas and autoscaling."""

from __future__ import annotations

import os
from typing import Any

import click

from .context import CliContext, output_option, pass_context, print_record, print_table

COMPUTE_COLUMNS = (("NAME", "id"), ("TYPE", "type"), ("DOCKER HOST", "dockerHost"), ("TLS VERIFY", "tls.verify"),
                   ("CREATED", "createdAt"))


@click.group()
def compute() -> None:
    """Computes: where services run (`local`, or Docker swarm clusters).

    \b
    Example:
      moma compute add -n cluster --type swarm --docker-host unix:///run/swarm-manager.sock
    """


@compute.command("add")
@click.option("-n", "--name", required=True, help="Compute name: letters, digits, hyphens.")
@click.option("--type", "kind", type=click.Choice(["swarm"]), default="swarm", show_default=True,
              help="The kind of compute.")
@click.option("--docker-host", default="",
              help="The swarm manager's Docker endpoint, unix:///path or tcp://host:port (admin token). "
                   "Default: the worker's engine.")
@click.option("--tls-ca-cert", type=click.Path(dir_okay=False), help="CA certificate (PEM) that signed the engine's.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Client certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Client key (PEM).")
@click.option("--tls-no-verify", is_flag=True, help="Do not verify the engine's certificate (no CA needed).")
@output_option
@pass_context
def compute_add(ctx: CliContext, name: str, kind: str, docker_host: str, tls_ca_cert: str | None,
                tls_cert: str | None, tls_key: str | None, tls_no_verify: bool) -> None:
    """Add a compute; services choose it with `service create --compute NAME`.

    A tcp:// engine off loopback needs TLS: the files are read on the worker's host
    (relative paths are made absolute here).

    \b
    Examples:
      moma compute add -n cluster --type swarm
      moma compute add -n cluster --type swarm --docker-host tcp://10.0.0.5:2376 \\
        --tls-ca-cert /etc/moma/ca.pem --tls-cert /etc/moma/cert.pem --tls-key /etc/moma/key.pem
    """
    body: dict[str, Any] = {"name": name, "type": kind}
    if docker_host:
        body["dockerHost"] = docker_host
    paths = {"caCertPath": tls_ca_cert, "clientCertPath": tls_cert, "clientKeyPath": tls_key}
    if tls_no_verify or any(paths.values()):
        body["tls"] = {"verify": not tls_no_verify,
                       **{key: os.path.abspath(path) for key, path in paths.items() if path}}
    added = ctx.client.call("POST", "/computes", json=body).json()
    ctx.emit(added, lambda value: print_record(value, (("Name", "id"), ("Type", "type"), ("Docker host", "dockerHost"),
                                                       ("TLS verify", "tls.verify"), ("Created", "createdAt"))))


@compute.command("list")
@output_option
@pass_context
def compute_list(ctx: CliContext) -> None:
    """List computes.

    \b
    Example:
      moma compute list -o json
    """
    computes = ctx.client.call("GET", "/computes").json()["value"]
    ctx.emit(computes, lambda rows: print_table(rows, COMPUTE_COLUMNS))
