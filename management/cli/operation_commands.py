"""``moma operation show``: the asynchronous work behind image and service commands,
for when a command was told not to wait (``--no-wait``) or stopped waiting (Ctrl-C)."""

from __future__ import annotations

from typing import Any

import click

from .context import CliContext, output_option, pass_context, print_record
from .progress import StatusLine, wait

OPERATION_FIELDS = (("ID", "id"), ("Type", "operationType"), ("State", "state"), ("Created", "createdTime"),
                    ("Ended", "endTime"), ("Resource", "resourceLocation"), ("Error", "error.message"))


@click.group()
def operation() -> None:
    """Operations: image builds and service changes, carried out by the server's worker.

    \b
    Example:
      moma operation show -i 69b29838-47b3-46cb-ae80-f133b06f43bd
    """


@operation.command("show")
@click.option("-i", "--id", "operation_id", required=True, help="The operation's id.")
@click.option("--wait", "wait_for_end", is_flag=True,
              help="Wait until it ends; exit 1 when it ends Failed or Cancelled.")
@output_option
@pass_context
def operation_show(ctx: CliContext, operation_id: str, wait_for_end: bool) -> None:
    """Show an operation: its state, and its error when it failed. Without --wait the exit
    code is 0 whatever the state (the operation was shown).

    \b
    Examples:
      moma operation show -i 69b29838-47b3-46cb-ae80-f133b06f43bd
      moma operation show -i 69b29838-47b3-46cb-ae80-f133b06f43bd --wait
    """
    if wait_for_end:
        status = StatusLine(f"operation {operation_id}")
        try:
            wait(ctx, operation_id, status)
        finally:
            status.close()
    ctx.emit(ctx.client.call("GET", f"/operations/{operation_id}").json(), show_operation)


def show_operation(value: dict[str, Any]) -> None:
    print_record(value, OPERATION_FIELDS)
    for detail in (value.get("error") or {}).get("details") or []:
        click.echo(f"  {detail.get('message', '')}")
