"""``moma service create|update|list|show|delete [realtime]``; the scoring commands
(run, keys, usage, logs) live in ``service_scoring.py``. As in ``az ml``, the word
``realtime`` may follow the verb (the only kind of service there is); it may be left out.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from ..client import ServerError
from .context import CliContext, output_option, pass_context, print_record
from .manifest_commands import input_args
from .oneshot import check_service, image_from_project, one_shot, project_inputs, project_options
from .progress import StatusLine, not_waiting, operation_id, resource_id, wait
from .service_data import service_data
from .service_scoring import realtime, service_keys, service_logs, service_run, service_usage, show_usage, usage_of

F = TypeVar("F", bound=Callable[..., Any])
SERVICE_COLUMNS = (("NAME", "name"), ("ID", "id"), ("STATE", "state"), ("IMAGE", "image.imageLocation"),
                   ("COMPUTE", "computeResource.id"), ("SCORING URI", "scoringUri"), ("UPDATED", "updatedAt"))
SERVICE_FIELDS = (("ID", "id"), ("Name", "name"), ("State", "state"), ("Image", "image.imageLocation"),
                  ("Image id", "image.id"), ("Models", "manifest.modelIds"), ("Compute", "computeResource.id"),
                  ("Replicas", "numReplicas"), ("Autoscale", "autoScaler.autoscaleEnabled"),
                  ("CPU", "containerResourceReservation.cpu"), ("Memory", "containerResourceReservation.memory"),
                  ("Max concurrent", "maxConcurrentRequestsPerContainer"),
                  ("Collect model data", "dataCollection.storageEnabled"), ("App insights", "appInsightsEnabled"),
                  ("Telemetry OTLP endpoint", "telemetry.otlpEndpoint"),
                  ("Telemetry connection string", "telemetry.connectionString"),
                  ("Telemetry request bodies", "telemetry.requestBody"),
                  ("Telemetry follows caller sampling", "telemetry.followCallerSampling"),
                  ("Scoring URI", "scoringUri"), ("Swagger URI", "swaggerUri"), ("Created", "createdAt"),
                  ("Updated", "updatedAt"), ("Error", "error.message"))
TELEMETRY_FLAGS = (("telemetry_endpoint", "otlpEndpoint"), ("telemetry_connection_string", "connectionString"),
                   ("telemetry_request_body", "requestBody"),
                   ("telemetry_follow_caller_sampling", "followCallerSampling"))
AUTOSCALER_FLAGS = (("autoscale_enabled", "autoscaleEnabled"), ("autoscale_min_replicas", "minReplicas"),
                    ("autoscale_max_replicas", "maxReplicas"), ("autoscale_target_utilization", "targetUtilization"),
                    ("autoscale_refresh_period_seconds", "refreshPeriodInSeconds"))


def service_settings(command: F) -> F:
    """The original's flags for what a service runs with (create and update). Each says
    what moma does with it (runtime/README.md, service_settings.py, the engines)."""
    options = [
        click.option("-z", "--num-replicas", type=click.IntRange(0, 100),
                     help="Containers to run, e.g. -z 3, on a swarm compute (local runs one); turns autoscaling off."),
        click.option("--cpu", help="CPUs per container, e.g. 0.5 or 500m: its limit (on swarm also reserved); "
                                   "sets the scoring workers too (rounded up)."),
        click.option("--memory", help="Memory per container, e.g. 1G or 512Mi: its limit (on swarm also "
                                      "reserved); a container that goes over is killed and restarted."),
        click.option("--replica-max-concurrent-requests", type=click.IntRange(1, 10000), metavar="N",
                     help="run() calls one container serves at once, e.g. 4 (default: no limit). Over it, up to 2×N "
                          "requests wait in a queue for up to 500 ms; the others get 429 with Retry-After (not "
                          "503). The autoscaler's measure of a container too."),
        click.option("--collect-model-data", type=click.BOOL, metavar="true|false",
                     help="Record each request's input and prediction (and ModelDataCollector rows) as CSV; read "
                          "them with `moma service data`. Never slows or fails a request."),
        click.option("-l", "--enable-app-insights", type=click.BOOL, metavar="true|false",
                     help="Export a trace span per request, the driver's prints and logging, and request metrics "
                          "(OpenTelemetry) to the server's telemetry destination (MOMA_TELEMETRY_*) or the one "
                          "given with --telemetry-endpoint / --telemetry-connection-string."),
        click.option("--telemetry-endpoint", metavar="URL",
                     help="This service's OTLP/HTTP collector, e.g. http://collector:4318, instead of the server's."),
        click.option("--telemetry-connection-string", metavar="TEXT",
                     help="This service's Azure Monitor (Application Insights connection string), instead of the "
                          "server's."),
        click.option("--telemetry-request-body", type=click.BOOL, metavar="true|false",
                     help="Put each request's body (its first 8 KiB) on its span (default false: never)."),
        click.option("--telemetry-follow-caller-sampling", type=click.BOOL, metavar="true|false",
                     help="Let a caller's traceparent 'not sampled' flag leave its request unrecorded (default "
                          "false: every request is recorded, the caller's trace continued)."),
        click.option("--autoscale-enabled", type=click.BOOL, metavar="true|false",
                     help="Scale replicas with load, on a swarm compute only (there it is on unless -z is given)."),
        click.option("--autoscale-min-replicas", type=click.IntRange(0, 100), metavar="N",
                     help="Fewest replicas when autoscaling (default 1)."),
        click.option("--autoscale-max-replicas", type=click.IntRange(1, 100), metavar="N",
                     help="Most replicas when autoscaling (default 10)."),
        click.option("--autoscale-target-utilization", type=click.IntRange(0, 100), metavar="PERCENT",
                     help="Load per replica to aim for, in percent of --replica-max-concurrent-requests (1 when "
                          "unset); load = requests in run() + queued (default 70)."),
        click.option("--autoscale-refresh-period-seconds", type=click.IntRange(1, 3600), metavar="SECONDS",
                     help="How often the load is read (default 1); down by one replica after 3 low periods."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def setting_args(settings: dict[str, Any]) -> list[str]:
    """The flags that give these settings again, for a command to paste."""
    args: list[str] = []
    for key, value in settings.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def settings_body(settings: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body for the flags given. Creating (no ``current``) sends the original
    CLI's minimal body: empty ``autoScaler`` and ``containerResourceReservation`` when no
    flag fills them. Updating sends only what is given, merged over the service's current
    objects, so ``--autoscale-max-replicas 5`` alone keeps the other autoscaler settings."""
    current = current or {}
    body: dict[str, Any] = {}
    for flag, key in (("num_replicas", "numReplicas"), ("replica_max_concurrent_requests",
                                                        "maxConcurrentRequestsPerContainer"),
                      ("enable_app_insights", "appInsightsEnabled")):
        if settings.get(flag) is not None:
            body[key] = settings[flag]
    telemetry = {key: settings[flag] for flag, key in TELEMETRY_FLAGS if settings.get(flag) is not None}
    if telemetry:
        body["telemetry"] = {**current.get("telemetry", {}), **telemetry}
    if settings.get("collect_model_data") is not None:
        body["dataCollection"] = {**current.get("dataCollection", {}), "storageEnabled": settings["collect_model_data"]}
    autoscaler = {key: settings[flag] for flag, key in AUTOSCALER_FLAGS if settings.get(flag) is not None}
    reservation = {key: settings[key] for key in ("cpu", "memory") if settings.get(key) is not None}
    creating = not current
    if autoscaler or creating:
        body["autoScaler"] = {**current.get("autoScaler", {}), **autoscaler}
    if reservation or creating:
        body["containerResourceReservation"] = {**current.get("containerResourceReservation", {}), **reservation}
    return body


@click.group()
def service() -> None:
    """Realtime scoring services: containers running an image, behind keys.

    \b
    Example:
      moma service create realtime -n iris --image-id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
    """


@service.command("create")
@realtime
@click.option("-n", "--name", required=True,
              help="Service name: letters, digits, hyphens; unique in the account. With -f also the name of its "
                   "manifest and image.")
@click.option("--image-id", help="The image to run (creationState Succeeded). Or build one with -f, -r and -m.")
@project_options(model_id_flags=("--model-id",))
@click.option("--compute", default="local", show_default=True, help="Where it runs (moma compute list).")
@service_settings
@click.option("-q", "--quiet", is_flag=True, help="With -f: one progress line for the build, not its log.")
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the deployment goes on "
                                              "(with -f, once the image is built).")
@output_option
@pass_context
def service_create(ctx: CliContext, name: str, image_id: str | None, compute: str, new_model_version: bool,
                   quiet: bool, no_wait: bool, **params: Any) -> None:
    """Create a realtime service and wait until it answers (or fails, with its container log).

    Either run an image (--image-id), or, in one shot as `az ml service create realtime -f`
    did, the project's files: the models are registered (-m; a directory is uploaded as a
    tar.gz the build unpacks under its name), a manifest is created, the image is built
    while its log streams, and the service starts; it ends with the scoring URL and a curl
    line with the key. What exists is reused: a model of the same name with the same bytes
    (unless --new-model-version), an identical manifest, an image built from it. A name
    in use, an unknown compute or settings the compute cannot run are refused before
    anything is uploaded. Ctrl-C stops waiting, never the work, and prints how to finish.

    \b
    Examples:
      moma service create realtime -n irisapp -f score.py -m model.pkl -s service_schema.json \\
          -r python -p requirements.txt --collect-model-data true
      moma service create realtime -n iris --image-id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
      moma service create realtime -n iris --image-id IMAGE_ID --cpu 0.5 --memory 1G
      moma service create realtime -n iris --image-id IMAGE_ID --compute cluster \\
          --autoscale-enabled true --autoscale-min-replicas 2 --autoscale-max-replicas 6
    """
    inputs = project_inputs(params)
    building = one_shot(inputs, image_id, "--image-id")
    if not building and not image_id:
        raise click.UsageError("give --image-id, or -f, -r and -m to build the image on the way")
    body = {"name": name, "computeResource": {"id": compute, "type": "Cluster"}, **settings_body(params)}
    if building:
        check_service(ctx, body, compute, name=name, update_args=[*input_args(inputs), *setting_args(params)])
        compute_args = ["--compute", compute] if compute != "local" else []
        image_id = image_from_project(
            ctx, name, inputs, new_model_version=new_model_version, quiet=quiet,
            then=lambda built: ctx.command_line("service", "create", "realtime", "-n", name, "--image-id", built,
                                                *compute_args, *setting_args(params)))["id"]
    op_id = operation_id(ctx.client.call("POST", "/services", json={"imageId": image_id, **body}))
    _finish(ctx, op_id, f"service {name}", no_wait, building)


@service.command("update")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("--image-id", help="Run this image instead (a rolling update: the URL and keys stay). Or build one "
                                 "with -f, -r and -m.")
@project_options(model_id_flags=("--model-id",))
@service_settings
@click.option("-q", "--quiet", is_flag=True, help="With -f: one progress line for the build, not its log.")
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the update goes on "
                                              "(with -f, once the image is built).")
@output_option
@pass_context
def service_update(ctx: CliContext, service_id: str, image_id: str | None, new_model_version: bool, quiet: bool,
                   no_wait: bool, **params: Any) -> None:
    """Update a service: another image and/or other settings. The old containers serve until
    the new ones answer; a failed update leaves the old ones serving. The URL and the keys
    stay.

    With -f, -r and -m the new image is built from the project's files first (named after
    the service; what exists is reused, as with `service create -f`); when that is the
    image the service already runs, and no setting changes, nothing is updated.

    \b
    Examples:
      moma service update realtime -i SERVICE_ID -f score.py -m model.pkl -s service_schema.json -r python
      moma service update realtime -i SERVICE_ID --image-id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
      moma service update realtime -i SERVICE_ID --cpu 1 --replica-max-concurrent-requests 4
    """
    inputs = project_inputs(params)
    building = one_shot(inputs, image_id, "--image-id")
    current = ctx.client.call("GET", f"/services/{service_id}").json()
    body = settings_body(params, current)
    if building:
        check_service(ctx, body, current["computeResource"]["id"], current=current)
        built = image_from_project(
            ctx, current["name"], inputs, new_model_version=new_model_version, quiet=quiet,
            then=lambda new: ctx.command_line("service", "update", "realtime", "-i", service_id, "--image-id", new,
                                              *setting_args(params)))
        if built["id"] == (current.get("image") or {}).get("id") and not body:
            click.echo(f"service {current['name']} already runs image {built['name']} version {built['version']}: "
                       "nothing to update", err=True)
            ctx.emit(current, lambda value: _show_with_usage(ctx, value))
            return
        image_id = built["id"]
    if image_id:
        body["imageId"] = image_id
    if not body:
        raise click.UsageError("nothing to update: give --image-id, -f to build one, or a setting such as --cpu")
    op_id = operation_id(ctx.client.call("PUT", f"/services/{service_id}", json=body))
    _finish(ctx, op_id, f"service {current['name']}", no_wait, building)


def _finish(ctx: CliContext, op_id: str, label: str, no_wait: bool, with_usage: bool = False) -> None:
    if no_wait:
        not_waiting(ctx, op_id, label)
        return
    status = StatusLine(label)
    try:
        operation = wait(ctx, op_id, status)
    finally:
        status.close()
    found = ctx.client.call("GET", f"/services/{resource_id(operation)}").json()
    ctx.emit(found, (lambda value: _show_with_usage(ctx, value)) if with_usage else show_service)


def _show_with_usage(ctx: CliContext, value: dict[str, Any]) -> None:
    show_service(value)
    click.echo("")
    show_usage(usage_of(ctx, value["id"]))


@service.command("list")
@realtime
@click.option("-n", "--name", help="Only the service of this name.")
@click.option("--image-id", help="Only services running this image.")
@click.option("--model-id", help="Only services whose image holds this model.")
@output_option
@pass_context
def service_list(ctx: CliContext, name: str | None, image_id: str | None, model_id: str | None) -> None:
    """List services, oldest first (every page).

    \b
    Examples:
      moma service list realtime
      moma service list -n iris -o json
    """
    ctx.emit_list("/services", {"serviceName": name, "imageId": image_id, "modelId": model_id}, SERVICE_COLUMNS)


@service.command("show")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@output_option
@pass_context
def service_show(ctx: CliContext, service_id: str) -> None:
    """Show one service: state, image, settings, scoring URL.

    \b
    Example:
      moma service show realtime -i 9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a
    """
    ctx.emit(ctx.client.call("GET", f"/services/{service_id}").json(), show_service)


@service.command("delete")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("--no-wait", is_flag=True, help="Return once the server has it; its containers go shortly after.")
@output_option
@pass_context
def service_delete(ctx: CliContext, service_id: str, no_wait: bool) -> None:
    """Delete a service and wait until its containers are gone.

    \b
    Example:
      moma service delete realtime -i 9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a
    """
    response = ctx.client.call("DELETE", f"/services/{service_id}")
    if response.status_code == 204:
        raise ServerError(f"service {service_id} not found (nothing deleted)", 404,
                          response.headers.get("x-ms-request-id", ""))
    op_id = operation_id(response)
    if no_wait:
        not_waiting(ctx, op_id, f"deleting service {service_id}")
        return
    status = StatusLine(f"deleting service {service_id}")
    try:
        operation = wait(ctx, op_id, status)
    finally:
        status.close()
    ctx.emit(operation, lambda value: click.echo(f"deleted service {service_id}"))


def show_service(value: dict[str, Any]) -> None:
    print_record(value, SERVICE_FIELDS)


for _command in (service_run, service_keys, service_usage, service_logs, service_data):
    service.add_command(_command)
