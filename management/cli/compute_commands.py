"""``moma compute add|list``: where services run. ``local`` (one container per service
on the server's Docker engine) always exists; swarm computes add replicas and autoscaling."""

from __future__ import annotations

import click

from .context import CliContext, output_option, pass_context, print_record, print_table

COMPUTE_COLUMNS = (("NAME", "id"), ("TYPE", "type"), ("DOCKER HOST", "dockerHost"), ("CREATED", "createdAt"))


@click.group()
def compute() -> None:
    """Computes: where services run (`local`, or Docker swarm clusters).

    \b
    Example:
      moma compute add -n cluster --type swarm --docker-host tcp://10.0.0.5:2376
    """


@compute.command("add")
@click.option("-n", "--name", required=True, help="Compute name: letters, digits, hyphens.")
@click.option("--type", "kind", type=click.Choice(["swarm"]), default="swarm", show_default=True,
              help="The kind of compute.")
@click.option("--docker-host", default="", help="The swarm manager's Docker endpoint. Default: the worker's engine.")
@output_option
@pass_context
def compute_add(ctx: CliContext, name: str, kind: str, docker_host: str) -> None:
    """Add a compute; services choose it with `service create --compute NAME`.

    \b
    Examples:
      moma compute add -n cluster --type swarm
      moma compute add -n cluster --type swarm --docker-host tcp://10.0.0.5:2376
    """
    body = {"name": name, "type": kind, **({"dockerHost": docker_host} if docker_host else {})}
    added = ctx.client.call("POST", "/computes", json=body).json()
    ctx.emit(added, lambda value: print_record(value, (("Name", "id"), ("Type", "type"), ("Docker host", "dockerHost"),
                                                       ("Created", "createdAt"))))


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
