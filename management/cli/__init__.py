"""The ``moma`` command line, shaped like the 2017 ``az ml`` commands.

One module per command group; the root group imports a group's module only when it
runs (``lazy.py``). Every API-backed command reaches the server through the context
object (``context.py``); errors become exit codes in one place (``errors.py``)."""

from __future__ import annotations

import click

from .context import DEFAULT_URL, OUTPUTS, CliContext, resolve_scope, resolve_token
from .errors import run_main
from .lazy import LazyGroup

COMMANDS = {
    "account": "management.cli.admin_commands:account",
    "base": "management.cli.base_commands:base",
    "build": "management.cli.build_command:build",
    "compute": "management.cli.compute_commands:compute",
    "image": "management.cli.image_commands:image",
    "manifest": "management.cli.manifest_commands:manifest",
    "model": "management.cli.model_commands:model",
    "operation": "management.cli.operation_commands:operation",
    "serve": "management.cli.server_commands:serve",
    "service": "management.cli.service_commands:service",
    "token": "management.cli.admin_commands:token",
    "worker": "management.cli.server_commands:worker",
}


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="moma")
@click.option("--url", envvar="MOMA_URL", default=DEFAULT_URL, show_default=True, help="The moma server (MOMA_URL).")
@click.option("--token", envvar="MOMA_TOKEN", help="API token (MOMA_TOKEN); default: $MOMA_HOME/admin-token.")
@click.option("--subscription", envvar="MOMA_SUBSCRIPTION", help="Subscription of the account to use.")
@click.option("--resource-group", envvar="MOMA_RESOURCE_GROUP", help="Resource group of the account to use.")
@click.option("--account", envvar="MOMA_ACCOUNT", help="Account to use; default: saved with `moma account set`.")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="Human tables, or the API's JSON objects as they are (also accepted after the command).")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None, subscription: str | None, resource_group: str | None,
        account: str | None, output: str) -> None:
    """moma: register models, build images from manifests, run scoring services.

    \b
    A 2017 project in one command (models, manifest, image, service; what exists is reused):
      moma service create realtime -n irisapp -f score.py -m model.pkl -s service_schema.json -r python

    \b
    Examples, the whole lifecycle step by step against a running server (`moma serve`):
      moma model register -m model.pkl -n iris
      moma manifest create -n iris -f score.py -r python -p requirements.txt -i MODEL_ID
      moma image create -n iris --manifest-id MANIFEST_ID
      moma service create realtime -n iris --image-id IMAGE_ID
      moma service run realtime -i SERVICE_ID -d '{"data": [[5.1, 3.5, 1.4, 0.2]]}'

    \b
    Build an image from a manifest file, with no server:
      moma build examples/iris/manifest.yml --name iris --tag 1
    """
    ctx.obj = CliContext(url=url, token=resolve_token(token),
                         scope=resolve_scope(subscription, resource_group, account), output=output)


def main() -> None:
    run_main(cli)
