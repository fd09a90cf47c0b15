"""The ``moma`` command line."""

from __future__ import annotations

import click

from .admin_commands import account, token
from .base_commands import base
from .build_command import build
from .context import DEFAULT_URL, CliContext, resolve_scope, resolve_token
from .errors import run_main
from .server_commands import serve, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="moma")
@click.option("--url", envvar="MOMA_URL", default=DEFAULT_URL, show_default=True, help="The moma server (MOMA_URL).")
@click.option("--token", envvar="MOMA_TOKEN", help="API token (MOMA_TOKEN); default: $MOMA_HOME/admin-token.")
@click.option("--subscription", envvar="MOMA_SUBSCRIPTION", help="Subscription of the account to use.")
@click.option("--resource-group", envvar="MOMA_RESOURCE_GROUP", help="Resource group of the account to use.")
@click.option("--account", envvar="MOMA_ACCOUNT", help="Account to use; default: saved with `moma account set`.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Human tables, or the API's JSON objects as they are.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None, subscription: str | None, resource_group: str | None,
        account: str | None, output: str) -> None:
    """moma: register models, build images from manifests, run scoring services.

    \b
    Build an image from a manifest file, with no server:
      moma build examples/iris/manifest.yml --name iris --tag 1

    \b
    Run the service and talk to it:
      moma serve &
      moma account list
    """
    ctx.obj = CliContext(url=url, token=resolve_token(token), scope=resolve_scope(subscription, resource_group, account),
                         output=output)


cli.add_command(build)
cli.add_command(base)
cli.add_command(serve)
cli.add_command(worker)
cli.add_command(account)
cli.add_command(token)


def main() -> None:
    run_main(cli)
