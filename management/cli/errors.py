"""Exit codes of the CLI, in one place: 0 done, 1 the work was refused or failed,
2 usage error, 130 interrupted. Errors print their message (and the server's request
id when there is one), never a Python traceback (``MOMA_DEBUG=1`` shows it).

What is caught, and how it ends:

click.UsageError, BadParameter ..... 2  (Click's own message and usage line)
click.ClickException ............... its exit_code (1)
click.exceptions.Exit .............. its code (130 after "stopped waiting")
MomaError .......................... 1  "error: <message> (request id ...)" and its details
├── client.ServerError               the server's answer
├── client.ServerUnreachable         "cannot reach the moma server at ..."
├── client.ForeignLink               a link from the server to another server, not followed
└── OperationFailed                  an operation that ended Failed or Cancelled
BuilderError ....................... 1  (``moma build``)
requests.RequestException, OSError . 1  (a scoring URL that does not answer, an unreadable file)
KeyboardInterrupt / click.Abort .... 130
anything else ...................... 1  "internal error", a bug: the traceback with MOMA_DEBUG=1
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click
import requests

from builder.errors import BuilderError

from ..errors import Detail, MomaError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OperationFailed(MomaError):
    """An operation that ended Failed or Cancelled: its error message and details."""

    code = "OperationFailed"

    @classmethod
    def of(cls, operation: dict[str, Any]) -> "OperationFailed":
        error = operation.get("error") or {}
        message = error.get("message") or f"operation {operation['id']} ended {operation['state']}"
        details = [Detail(d.get("code", ""), d.get("message", "")) for d in error.get("details") or []]
        return cls(f"{message} (operation {operation['id']}, {operation['state']})", details)


def run_main(command: click.Command) -> None:
    try:
        code = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MomaError as exc:
        request_id = getattr(exc, "request_id", "")
        click.echo(f"error: {exc.message}" + (f" (request id {request_id})" if request_id else ""), err=True)
        for detail in exc.details[1:] if exc.details and exc.details[0].message in exc.message else exc.details:
            click.echo(f"  {detail.message}", err=True)
        sys.exit(EXIT_FAILED)
    except BuilderError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except requests.RequestException as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug; say so in one line, not a traceback
        if os.environ.get("MOMA_DEBUG"):
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (MOMA_DEBUG=1 shows the traceback)", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
