"""``moma service data [realtime] -i ID``: the model data a service collected
(``dataCollection.storageEnabled``, ``--collect-model-data true``) in its local sink,
read through the API: the rows as CSV (or JSON Lines), or ``--list`` the files."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from .context import CliContext, output_option, pass_context, print_table
from .service_scoring import realtime

FILE_COLUMNS = (("IDENTIFIER", "identifier"), ("DATE", "date"), ("MODEL", "model"), ("FORMAT", "format"),
                ("BYTES", "bytes"), ("PATH", "path"))
_AGO = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_value(text: str | None, now: datetime | None = None) -> str | None:
    """``--since``: an ISO 8601 date or date and time, or a duration ago (``30m``, ``2h``,
    ``1d``) turned into one; the server checks the ISO form."""
    if not text:
        return None
    match = _AGO.fullmatch(text.strip())
    if match is None:
        return text
    moment = (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@click.command("data")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("--since", help="Only rows from then on: 2017-09-01, 2017-09-01T12:00:00Z (UTC unless it says), "
                              "or a duration ago: 30s, 10m, 2h, 1d.")
@click.option("--identifier", help="Only this collector's rows: inputs, prediction, or a driver's identifier.")
@click.option("--list", "list_only", is_flag=True, help="List the data files instead of printing rows.")
@output_option
@pass_context
def service_data(ctx: CliContext, service_id: str, since: str | None, identifier: str | None,
                 list_only: bool) -> None:
    """Print the model data the service collected: the rows of each identifier (CSV with
    its header row, as in the blob layout of the original), or the files with --list.

    \b
    Examples:
      moma service data realtime -i SERVICE_ID
      moma service data -i SERVICE_ID --identifier inputs --since 1h > inputs.csv
      moma service data -i SERVICE_ID --list -o json
    """
    params = {key: value for key, value in (("identifier", identifier), ("since", since_value(since)))
              if value}
    files = ctx.client.call("GET", f"/services/{service_id}/data", params=params).json()["value"]
    if list_only:
        ctx.emit(files, lambda rows: print_table(rows, FILE_COLUMNS))
        return
    identifiers = list(dict.fromkeys(item["identifier"] for item in files))
    if not identifiers:
        click.echo("no model data collected" + (" since then" if since else " yet"), err=True)
    for name in identifiers:
        if len(identifiers) > 1:
            click.echo(f"==> {name} <==")
        rows = ctx.client.call("GET", f"/services/{service_id}/data/rows", params={**params, "identifier": name})
        click.echo(rows.text, nl=False)
