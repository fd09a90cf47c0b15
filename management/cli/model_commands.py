"""``moma model register|list|show``."""

from __future__ import annotations

from typing import Any

import click

from .context import CliContext, output_option, pass_context, print_record
from .uploads import register_model

MODEL_COLUMNS = (("ID", "id"), ("NAME", "name"), ("VERSION", "version"), ("TAGS", "tags"), ("CREATED", "createdAt"))
MODEL_FIELDS = (("ID", "id"), ("Name", "name"), ("Version", "version"), ("Tags", "tags"),
                ("Description", "description"), ("URL", "url"), ("MIME type", "mimeType"), ("Unpack", "unpack"),
                ("Created", "createdAt"))


@click.group()
def model() -> None:
    """Models: files (or directories, or URLs) registered by name; each registration of a
    name is a new version.

    \b
    Example:
      moma model register -m model.pkl -n iris -t sklearn
    """


@model.command("register")
@click.option("-m", "--model", "source", required=True, metavar="PATH|URL",
              help="A local file (uploaded as it is), a directory (uploaded as a tar.gz to unpack) "
                   "or an http(s) URL (registered as it is).")
@click.option("-n", "--name", required=True, help="Model name: letters, digits, hyphens; up to 32.")
@click.option("-t", "--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("-d", "--description", default="", help="Up to 200 characters.")
@output_option
@pass_context
def model_register(ctx: CliContext, source: str, name: str, tags: tuple[str, ...], description: str) -> None:
    """Register a model: upload it and record it under NAME (a new version each time).

    \b
    Examples:
      moma model register -m model.pkl -n iris -t sklearn -d "logistic regression"
      moma model register -m ./spark_model_dir -n churn
      moma model register -m "https://acct.blob.core.windows.net/models/m.tar.gz?sv=..." -n churn
    """
    ctx.emit(register_model(ctx.client, source, name, tags, description), show_registered)


@model.command("list")
@click.option("-n", "--name", help="Only models of this name.")
@click.option("-t", "--tag", help="Only models with this tag.")
@output_option
@pass_context
def model_list(ctx: CliContext, name: str | None, tag: str | None) -> None:
    """List models, oldest first (every page).

    \b
    Examples:
      moma model list
      moma model list -n iris -o json
    """
    ctx.emit_list("/models", {"name": name, "tag": tag}, MODEL_COLUMNS)


@model.command("show")
@click.option("-i", "--id", "model_id", required=True, help="The model's id.")
@output_option
@pass_context
def model_show(ctx: CliContext, model_id: str) -> None:
    """Show one model.

    \b
    Example:
      moma model show -i 3f2b8c1d9e0a4b5c8d7e6f5a4b3c2d1e
    """
    found = ctx.client.call("GET", f"/models/{model_id}").json()
    ctx.emit(found, lambda value: print_record(value, MODEL_FIELDS))


def show_registered(value: dict[str, Any]) -> None:
    click.echo(f"registered model {value['name']} version {value['version']}")
    print_record(value, MODEL_FIELDS)
