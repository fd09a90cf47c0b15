"""Long work, shown while it runs: waiting for an operation (with a state line, or a
build log streamed as it grows), and what Ctrl-C does (stops waiting, never the work).

Progress goes to stderr; stdout carries only the result, so ``-o json`` stays parseable.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable

import click
import requests

from ..client import ApiClient, ServerError
from .context import CliContext
from .errors import EXIT_INTERRUPTED, OperationFailed

POLL_SECONDS = 1.0  # the 2017 CLI polled every 5 s; a local server answers at once
FINAL_STATES = ("Succeeded", "Failed", "Cancelled")
STEP = re.compile(r"^Step (\d+)/(\d+)")


def operation_id(response: requests.Response) -> str:
    """The operation of a 202 (or a delete's 200): the last segment of Operation-Location."""
    location = response.headers.get("Operation-Location", "")
    if not location:
        raise ServerError("the server accepted the request but named no operation (no Operation-Location header)",
                          response.status_code, response.headers.get("x-ms-request-id", ""))
    return location.rstrip("/").rsplit("/", 1)[-1]


def resource_id(operation: dict[str, Any]) -> str:
    return str(operation.get("resourceLocation", "")).rstrip("/").rsplit("/", 1)[-1]


def wait(ctx: CliContext, op_id: str, on_poll: Callable[[dict[str, Any]], None] = lambda operation: None,
         then: str = "") -> dict[str, Any]:
    """Poll the operation until it ends; Succeeded returns it, Failed or Cancelled raise
    OperationFailed. Ctrl-C stops waiting (exit 130) and says how to check on it later,
    and ``then``, the command that finishes what this one would have done after it."""
    try:
        while True:
            operation = ctx.client.call("GET", f"/operations/{op_id}").json()
            on_poll(operation)
            if operation["state"] in FINAL_STATES:
                break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        click.echo(f"\nstopped waiting; the server carries on with operation {op_id}.\n"
                   f"check it with: {ctx.command_line('operation', 'show', '-i', op_id, '--wait')}"
                   + (f"\nonce it has succeeded: {then}" if then else ""), err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    if operation["state"] != "Succeeded":
        raise OperationFailed.of(operation)
    return operation


def not_waiting(ctx: CliContext, op_id: str, what: str) -> None:
    """``--no-wait``: the operation as the API returns it, or a line saying how to follow it."""
    operation = ctx.client.call("GET", f"/operations/{op_id}").json()
    ctx.emit(operation, lambda value: click.echo(
        f"{what}: operation {op_id} {value['state']}\n"
        f"follow it with: {ctx.command_line('operation', 'show', '-i', op_id, '--wait')}"))


class StatusLine:
    """One line of progress on stderr: rewritten in place on a terminal; elsewhere (logs,
    pipes) a new line only when the text changes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = ""
        self.width = 0

    def show(self, text: str) -> None:
        line = f"{self.label}: {text}"
        if self.tty:
            line = f"{line} ({time.monotonic() - self.started:.0f} s)"
            click.echo("\r" + line.ljust(self.width), err=True, nl=False)
            self.width = len(line)
        elif line != self.last:
            click.echo(line, err=True)
        self.last = line

    def close(self) -> None:
        if self.tty and self.width:
            click.echo("", err=True)
        self.width = 0

    def __call__(self, operation: dict[str, Any]) -> None:
        self.show(operation["state"])


class BuildLog:
    """The build log of an image, read as it grows: every poll fetches it and hands on the
    complete lines not seen yet (a log is a few hundred lines; no range requests needed)."""

    def __init__(self, client: ApiClient, url: str) -> None:
        self.client = client
        self.url = url
        self.offset = 0

    def new_lines(self) -> list[str]:
        try:
            content = self.client.get_url(self.url).content
        except ServerError as exc:
            if exc.status == 404:  # the worker has not started the build yet
                return []
            raise
        end = content.rfind(b"\n") + 1
        if end <= self.offset:
            return []
        lines = content[self.offset:end].decode("utf-8", errors="replace").splitlines()
        self.offset = end
        return lines


class BuildProgress:
    """What ``image create`` shows while the worker builds: the log itself, or with
    ``--quiet`` one status line with the current ``Step N/M``."""

    def __init__(self, log: BuildLog, quiet: bool, label: str) -> None:
        self.log = log
        self.quiet = quiet
        self.status = StatusLine(label)
        self.step = ""

    def __call__(self, operation: dict[str, Any]) -> None:
        for line in self.log.new_lines():
            if self.quiet:
                match = STEP.match(line)
                self.step = f"Step {match[1]}/{match[2]}" if match else self.step
            else:
                click.echo(line, err=True)
        if self.quiet:
            self.status.show(", ".join(filter(None, (operation["state"], self.step))))

    def close(self) -> None:
        self.status.close()
