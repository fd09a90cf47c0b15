"""``moma service create|update|list|show|delete [realtime]``; the scoring commands
(run, keys, usage, logs) live in ``service_scoring.py``. As in ``az ml``, the word
``realtime`` may follow the verb (the only kind of service there is); it may be left out.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from ..client import ServerError
from .context import CliContext, output_option, pass_context, print_record
from .progress import StatusLine, not_waiting, operation_id, resource_id, wait
from .service_data import service_data
from .service_scoring import realtime, service_keys, service_logs, service_run, service_usage

F = TypeVar("F", bound=Callable[..., Any])
SERVICE_COLUMNS = (("NAME", "name"), ("ID", "id"), ("STATE", "state"), ("IMAGE", "image.imageLocation"),
                   ("COMPUTE", "computeResource.id"), ("SCORING URI", "scoringUri"), ("UPDATED", "updatedAt"))
SERVICE_FIELDS = (("ID", "id"), ("Name", "name"), ("State", "state"), ("Image", "image.imageLocation"),
                  ("Image id", "image.id"), ("Models", "manifest.modelIds"), ("Compute", "computeResource.id"),
                  ("Replicas", "numReplicas"), ("Autoscale", "autoScaler.autoscaleEnabled"),
                  ("CPU", "containerResourceReservation.cpu"), ("Memory", "containerResourceReservation.memory"),
                  ("Max concurrent", "maxConcurrentRequestsPerContainer"),
                  ("Collect model data", "dataCollection.storageEnabled"), ("App insights", "appInsightsEnabled"),
                  ("Scoring URI", "scoringUri"), ("Swagger URI", "swaggerUri"), ("Created", "createdAt"),
                  ("Updated", "updatedAt"), ("Error", "error.message"))
AUTOSCALER_FLAGS = (("autoscale_enabled", "autoscaleEnabled"), ("autoscale_min_replicas", "minReplicas"),
                    ("autoscale_max_replicas", "maxReplicas"), ("autoscale_target_utilization", "targetUtilization"),
                    ("autoscale_refresh_period_seconds", "refreshPeriodInSeconds"))


def service_settings(command: F) -> F:
    """The original's flags for what a service runs with (create and update)."""
    options = [
        click.option("-z", "--num-replicas", type=click.IntRange(0, 100), help="Replicas (no autoscaling)."),
        click.option("--cpu", help="CPU reserved per container, e.g. 0.5 or 500m."),
        click.option("--memory", help="Memory reserved per container, e.g. 1G or 512Mi."),
        click.option("--replica-max-concurrent-requests", type=click.IntRange(1, 10000),
                     help="Requests one container scores at once; more wait or get 503."),
        click.option("--collect-model-data", type=click.BOOL, metavar="true|false",
                     help="Collect inputs and predictions (ModelDataCollector)."),
        click.option("-l", "--enable-app-insights", type=click.BOOL, metavar="true|false",
                     help="Application Insights telemetry."),
        click.option("--autoscale-enabled", type=click.BOOL, metavar="true|false",
                     help="Scale replicas with load (swarm computes)."),
        click.option("--autoscale-min-replicas", type=click.IntRange(0, 100)),
        click.option("--autoscale-max-replicas", type=click.IntRange(1, 100)),
        click.option("--autoscale-target-utilization", type=click.IntRange(0, 100), help="Percent."),
        click.option("--autoscale-refresh-period-seconds", type=click.IntRange(1, 3600)),
    ]
    for option in reversed(options):
        command = option(command)
    return command


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
@click.option("-n", "--name", required=True, help="Service name: letters, digits, hyphens; unique in the account.")
@click.option("--image-id", required=True, help="The image to run (creationState Succeeded).")
@click.option("--compute", default="local", show_default=True, help="Where it runs (moma compute list).")
@service_settings
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the deployment goes on.")
@output_option
@pass_context
def service_create(ctx: CliContext, name: str, image_id: str, compute: str, no_wait: bool,
                   **settings: Any) -> None:
    """Create a realtime service and wait until it answers (or fails, with its container log).

    \b
    Examples:
      moma service create realtime -n iris --image-id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
      moma service create realtime -n iris --image-id IMAGE_ID --cpu 0.5 --memory 1G
      moma service create realtime -n iris --image-id IMAGE_ID --compute cluster \\
          --autoscale-enabled true --autoscale-min-replicas 2 --autoscale-max-replicas 6
    """
    body = {"imageId": image_id, "name": name, "computeResource": {"id": compute, "type": "Cluster"},
            **settings_body(settings)}
    op_id = operation_id(ctx.client.call("POST", "/services", json=body))
    _finish(ctx, op_id, f"service {name}", no_wait)


@service.command("update")
@realtime
@click.option("-i", "--id", "service_id", required=True, help="The service's id.")
@click.option("--image-id", help="Run this image instead (a rolling update: the URL and keys stay).")
@service_settings
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the update goes on.")
@output_option
@pass_context
def service_update(ctx: CliContext, service_id: str, image_id: str | None, no_wait: bool, **settings: Any) -> None:
    """Update a service: another image and/or other settings. The old containers serve until
    the new ones answer; a failed update leaves the old ones serving.

    \b
    Examples:
      moma service update realtime -i SERVICE_ID --image-id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
      moma service update realtime -i SERVICE_ID --cpu 1 --replica-max-concurrent-requests 4
    """
    current = ctx.client.call("GET", f"/services/{service_id}").json()
    body = settings_body(settings, current)
    if image_id:
        body["imageId"] = image_id
    if not body:
        raise click.UsageError("nothing to update: give --image-id or a setting such as --cpu or -z")
    op_id = operation_id(ctx.client.call("PUT", f"/services/{service_id}", json=body))
    _finish(ctx, op_id, f"service {current['name']}", no_wait)


def _finish(ctx: CliContext, op_id: str, label: str, no_wait: bool) -> None:
    if no_wait:
        not_waiting(ctx, op_id, label)
        return
    status = StatusLine(label)
    try:
        operation = wait(ctx, op_id, status)
    finally:
        status.close()
    ctx.emit(ctx.client.call("GET", f"/services/{resource_id(operation)}").json(), show_service)


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
