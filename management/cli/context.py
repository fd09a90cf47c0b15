"""What every API-backed command needs: where the server is, the token, the account,
and how to print. Defaults come from flags, then environment, then ``$MOMA_HOME``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click

from ..client import ApiClient, Scope

DEFAULT_URL = "http://127.0.0.1:8081"


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


def print_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """A plain text table: (header, key) per column; missing values print as '-'."""
    rows = list(rows)
    cells = [[_text(row.get(key)) for _, key in columns] for row in rows]
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
