"""What every API-backed command needs: where the server is, the token, the account,
and how to print. Defaults come from flags, then environment, then ``$MOMA_HOME``."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import click

from ..client import ApiClient, Scope

DEFAULT_URL = "http://127.0.0.1:8081"
OUTPUTS = ("table", "json")
F = TypeVar("F", bound=Callable[..., Any])


def moma_home() -> Path:
    return Path(os.environ.get("MOMA_HOME") or Path.home() / ".moma").expanduser()


def saved_defaults() -> dict[str, Any]:
    path = moma_home() / "cli.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def save_defaults(values: dict[str, Any]) -> Path:
    path = moma_home() / "cli.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved_defaults() | values, indent=2) + "\n")
    return path


@dataclass
class CliContext:
    url: str
    token: str | None
    scope: Scope
    output: str = "table"
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.url, self.token, self.scope)
        return self._client

    def emit(self, value: Any, table: Callable[[Any], None]) -> None:
        """Print ``value`` as JSON with ``-o json``, else through ``table``."""
        if self.output == "json":
            click.echo(json.dumps(value, indent=2))
        else:
            table(value)

    def emit_list(self, path: str, filters: dict[str, str | None], columns: Sequence[tuple[str, str]]) -> None:
        """Every page of ``path`` (filters that are None left out), as a table or JSON."""
        rows = list(self.client.pages(path, {key: value for key, value in filters.items() if value}))
        self.emit(rows, lambda found: print_table(found, columns))

    def command_line(self, *args: str) -> str:
        """A ``moma`` command to paste, naming the server when it is not the default one."""
        prefix = ["moma"] + (["--url", self.url] if self.url.rstrip("/") != DEFAULT_URL else [])
        return shlex.join([*prefix, *args])


def resolve_token(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    token_file = moma_home() / "admin-token"
    try:
        return token_file.read_text().strip() or None
    except OSError:
        return None


def resolve_scope(subscription: str | None, resource_group: str | None, account: str | None) -> Scope:
    saved = saved_defaults().get("account", {})
    return Scope(subscription or saved.get("subscriptionId", "default"),
                 resource_group or saved.get("resourceGroupName", "default"),
                 account or saved.get("accountName", "default"))


pass_context = click.make_pass_decorator(CliContext)


def output_option(command: F) -> F:
    """``-o/--output`` after the subcommand too (``moma model list -o json``), as az users type it."""
    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        context = ctx.find_object(CliContext)
        if value is not None and context is not None:
            context.output = value

    return click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None, expose_value=False,
                        callback=remember, help="table (default) or json: the API's objects as they are.")(command)


def print_record(value: dict[str, Any], fields: Sequence[tuple[str, str]]) -> None:
    """One object, a line per field: (label, dotted key); missing values print as '-'."""
    width = max(len(label) for label, _ in fields) + 1
    for label, key in fields:
        click.echo(f"{label + ':':<{width}} {_text(dig(value, key))}")


def dig(value: Any, dotted: str) -> Any:
    """``value['a']['b']`` for ``'a.b'``, None when any part is missing."""
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def print_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """A plain text table: (header, dotted key) per column; missing values print as '-'."""
    rows = list(rows)
    cells = [[_text(dig(row, key)) for _, key in columns] for row in rows]
    widths = [max([len(header), *(len(line[i]) for line in cells)]) for i, (header, _) in enumerate(columns)]
    click.echo("  ".join(header.ljust(width) for (header, _), width in zip(columns, widths)).rstrip())
    for line in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())
    if not rows:
        click.echo("(none)")


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
