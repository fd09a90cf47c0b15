"""``moma service run|keys|usage|logs [realtime]``: talking to a running service, and
what it writes. These call the scoring URL itself (with a key fetched from the API) as
a client of the service would."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import click
import requests

from ..client import ServerError, ServerUnreachable
from .context import CliContext, output_option, pass_context, print_record
from .errors import EXIT_INTERRUPTED

F = TypeVar("F", bound=Callable[..., Any])
SCORING_TIMEOUT = 120.0
LOG_POLL_SECONDS = 1.0
FOLLOW_TAIL = 1000
OVERLAP = 20  # lines matched to find where the previous read of a log ended
PLACEHOLDER = "<input as JSON>"
OIP_PLACEHOLDER = '{"inputs": [{"name": "<input>", "shape": [1], "datatype": "FP64", "data": [0.0]}]}'


def realtime(command: F) -> F:
    """The optional ``realtime`` word of ``az ml service <verb> realtime``."""
    return click.argument("kind", required=False, type=click.Choice(["realtime"]), metavar="[realtime]",
                          expose_value=False)(command)


def json_input(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``-d``: JSON text, or ``@file`` holding it; checked here so a quoting slip is a usage error."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value[1:]}: {exc.strerror}") from exc
    try:
        json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}): {text[:80]!r}") from exc
    return text


def data_option(help_text: str) -> Callable[[F], F]:
    return click.option("-d", "--data", callback=json_input, metavar="JSON|@FILE", help=help_text)


@click.command("run")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@data_option("The input. Default: the example in the service's swagger.json (from its schema).")
@output_option
@pass_context
def service_run(ctx: CliContext, service_id: str, data: str | None) -> None:
    """Score: send the input to the service with its primary key and print the answer.
    The answer's request id goes to stderr (find its log lines with `service logs -r`).

    \b
    Examples:
      moma service run realtime -i SERVICE_ID -d '{"data": [[5.1, 3.5, 1.4, 0.2]]}'
      moma service run realtime -i SERVICE_ID          # the example from its schema
      moma service run realtime -i SERVICE_ID -d @input.json
    """
    found, key = _running(ctx, service_id)
    if data is None:
        example = _swagger_example(found, key)
        if example is None:
            raise click.UsageError(f"service {found['name']} publishes no example input (its manifest has no "
                                   "schema file): give the input with -d '<json>'")
        data = json.dumps(example)
    try:
        answer = requests.post(found["scoringUri"], data=data.encode("utf-8"), timeout=SCORING_TIMEOUT,
                               headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    except requests.RequestException as exc:
        raise ServerUnreachable(f"cannot reach service {found['name']} at {found['scoringUri']}: {exc}") from exc
    request_id = answer.headers.get("x-ms-request-id", "")
    if answer.status_code >= 400:
        raise ServerError(f"service {found['name']} answered {answer.status_code}: {_message(answer)}",
                          answer.status_code, request_id)
    click.echo(answer.text.rstrip("\n"))
    if request_id:
        click.echo(f"request id: {request_id}", err=True)


@click.command("keys")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("--regen", is_flag=True, help="Regenerate one key (-k); the other keeps working meanwhile.")
@click.option("-k", "--key-type", type=click.Choice(["Primary", "Secondary"], case_sensitive=False),
              help="Which key --regen replaces.")
@output_option
@pass_context
def service_keys(ctx: CliContext, service_id: str, regen: bool, key_type: str | None) -> None:
    """Show the service's two keys, or regenerate one. Clients send either as
    `Authorization: Bearer <key>`; rotate by moving clients to the other key first.

    \b
    Examples:
      moma service keys realtime -i SERVICE_ID
      moma service keys realtime -i SERVICE_ID --regen -k Primary
    """
    if key_type and not regen:
        raise click.UsageError("-k/--key-type goes with --regen")
    if regen and not key_type:
        raise click.UsageError("--regen needs -k Primary or -k Secondary")
    regenerated = key_type.capitalize() if key_type else None  # given exactly with --regen
    if regenerated:
        keys = ctx.client.call("POST", f"/services/{service_id}/regenerateKeys",
                               json={"keyType": regenerated}).json()
    else:
        keys = ctx.client.call("GET", f"/services/{service_id}/keys").json()
    ctx.emit(keys, lambda value: print_record(value, (("PrimaryKey", "primaryKey"), ("SecondaryKey", "secondaryKey"))))
    if regenerated and ctx.output != "json":
        click.echo(f"the new {regenerated} key is accepted within seconds", err=True)


@click.command("usage")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@data_option("The input to show in the samples. Default: the example in the service's swagger.json.")
@output_option
@pass_context
def service_usage(ctx: CliContext, service_id: str, data: str | None) -> None:
    """How to call the service: its URL, the headers, and ready-to-paste commands (with the key).

    \b
    Example:
      moma service usage realtime -i SERVICE_ID -d '{"data": [[5.1, 3.5, 1.4, 0.2]]}'
    """
    ctx.emit(usage_of(ctx, service_id, data), show_usage)


@click.command("logs")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("-r", "--request-id", help="Only lines of this request (its x-ms-request-id).")
@click.option("--tail", default=200, show_default=True, type=click.IntRange(1, 10000), help="Lines to read.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@pass_context
def service_logs(ctx: CliContext, service_id: str, request_id: str | None, tail: int, follow: bool) -> None:
    """Print the service's recent log lines (JSON lines carrying request ids).

    \b
    Examples:
      moma service logs realtime -i SERVICE_ID
      moma service logs realtime -i SERVICE_ID -r 0d4c2a8e-6f1b-4c3d-9e8f-7a6b5c4d3e2f
      moma service logs realtime -i SERVICE_ID --follow
    """
    def read(lines: int) -> list[str]:
        text = ctx.client.call("GET", f"/services/{service_id}/logs", params={"tail": str(lines)}).text
        return text.splitlines()

    def show(lines: list[str]) -> None:
        for line in lines:
            if request_id is None or request_id in line:
                click.echo(line)

    seen = read(tail)
    show(seen)
    if not follow:
        return
    try:
        while True:
            time.sleep(LOG_POLL_SECONDS)
            current = read(FOLLOW_TAIL)
            show(new_lines(seen, current))
            seen = current
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` after where ``previous`` ended, both being tails of one
    growing log: the last lines of ``previous`` are found in ``current`` (the latest
    match wins). When they are not there (the log moved on by more than a tail, or a
    new container started), all of ``current`` is new."""
    window = previous[-OVERLAP:]
    if not window:
        return current
    for end in range(len(current), len(window) - 1, -1):
        if current[end - len(window):end] == window:
            return current[end:]
    return current


def usage_of(ctx: CliContext, service_id: str, data: str | None = None) -> dict[str, Any]:
    """URL, headers (with the primary key) and commands to paste; the sample input is
    ``data``, else the example of the service's swagger.json, else a placeholder. The
    Open Inference Protocol line calls the service's model by the service's name, with
    the swagger's ``InferenceRequest`` example (the same input as tensors)."""
    found, key = _running(ctx, service_id)
    try:
        swagger = _swagger(found, key)
    except (ServerError, ServerUnreachable):
        swagger = None
    if data is None:
        example = _example(swagger, "ServiceInput")
        data = json.dumps(example) if example is not None else None
    sample = data if data is not None else PLACEHOLDER
    oip_example = _example(swagger, "InferenceRequest")
    infer_uri = f"{found['scoringUri'].removesuffix('/score')}/v2/models/{found['name']}/infer"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return {
        "scoringUri": found["scoringUri"], "swaggerUri": found.get("swaggerUri"), "headers": headers,
        "sampleInput": json.loads(data) if data is not None else None,
        "run": ctx.command_line("service", "run", "realtime", "-i", found["id"], "-d", sample),
        "curl": _curl(found["scoringUri"], headers, sample),
        "inferUri": infer_uri,
        "oipCurl": _curl(infer_uri, headers, json.dumps(oip_example) if oip_example else OIP_PLACEHOLDER),
    }


def _curl(url: str, headers: dict[str, str], body: str) -> str:
    return shlex.join(["curl", "-s", "-X", "POST", url,
                       *(part for name, value in headers.items() for part in ("-H", f"{name}: {value}")),
                       "-d", body])


def show_usage(usage: dict[str, Any]) -> None:
    print_record(usage, (("Scoring URL", "scoringUri"), ("Swagger", "swaggerUri")))
    click.echo("Headers:")
    for name, value in usage["headers"].items():
        click.echo(f"  {name}: {value}")
    click.echo(f"\nScore with moma:\n  {usage['run']}")
    click.echo(f"\nScore with curl:\n  {usage['curl']}")
    click.echo(f"\nScore with curl, Open Inference Protocol (KServe v2, tritonclient):\n  {usage['oipCurl']}")


def _running(ctx: CliContext, service_id: str) -> tuple[dict[str, Any], str]:
    """The service and its primary key; an error when it has no scoring URL yet."""
    found = ctx.client.call("GET", f"/services/{service_id}").json()
    if not found.get("scoringUri"):
        raise ServerError(f"service {found['name']} has no scoring URL yet (state {found.get('state')})", 409, "")
    key = ctx.client.call("GET", f"/services/{service_id}/keys").json()["primaryKey"]
    return found, key


def _swagger_example(found: dict[str, Any], key: str) -> Any:
    """``definitions.ServiceInput.example`` of the service's swagger.json, or None."""
    return _example(_swagger(found, key), "ServiceInput")


def _swagger(found: dict[str, Any], key: str) -> Any:
    """The service's swagger.json, or None when it has none."""
    url = found.get("swaggerUri")
    if not url:
        return None
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    except requests.RequestException as exc:
        raise ServerUnreachable(f"cannot reach service {found['name']} at {url}: {exc}") from exc
    if answer.status_code >= 400:
        raise ServerError(f"service {found['name']} answered {answer.status_code} for its swagger.json: "
                          f"{_message(answer)}", answer.status_code, answer.headers.get("x-ms-request-id", ""))
    try:
        return answer.json()
    except ValueError:
        return None


def _example(swagger: Any, definition: str) -> Any:
    """``definitions.<definition>.example`` of a swagger document, or None."""
    try:
        return swagger.get("definitions", {}).get(definition, {}).get("example")
    except AttributeError:
        return None


def _message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip()[:500] or answer.reason
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)
