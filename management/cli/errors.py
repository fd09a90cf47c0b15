"""Exit codes of the CLI: 0 done, 1 the work was refused or failed, 2 usage error.
Errors print their message, never a Python traceback."""

from __future__ import annotations

import sys

import click

from builder.errors import BuilderError

from ..errors import MomaError

EXIT_FAILED = 1
EXIT_USAGE = 2


def run_main(command: click.Command) -> None:
    try:
        code = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
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
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
