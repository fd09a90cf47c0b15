"""``moma image create|list|show|usage``: creation streams the build log as the worker
writes it."""

from __future__ import annotations

import shlex
from typing import Any

import click

from .context import CliContext, output_option, pass_context, print_record
from .manifest_commands import create_manifest, manifest_inputs
from .progress import BuildLog, BuildProgress, not_waiting, operation_id, resource_id, wait

IMAGE_COLUMNS = (("ID", "id"), ("NAME", "name"), ("VERSION", "version"), ("STATE", "creationState"),
                 ("LOCATION", "imageLocation"), ("CREATED", "createdTime"))
IMAGE_FIELDS = (("ID", "id"), ("Name", "name"), ("Version", "version"), ("Description", "description"),
                ("State", "creationState"), ("Location", "imageLocation"), ("Manifest", "manifest.id"),
                ("Models", "manifest.modelIds"), ("Build log", "imageBuildLogUri"), ("Created", "createdTime"),
                ("Error", "error.message"))
SCORING_PORT = 5001


@click.group()
def image() -> None:
    """Docker images built from manifests by the server's worker.

    \b
    Example:
      moma image create -n iris --manifest-id 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00
    """


@image.command("create")
@click.option("-n", "--image-name", "name", required=True, help="Image name: letters, digits, hyphens.")
@click.option("--image-description", "description", default="", help="Up to 512 characters.")
@click.option("--manifest-id", help="Build this manifest. Or create one on the way with -f, -r and -m/-i.")
@manifest_inputs(required=False)
@click.option("-q", "--quiet", is_flag=True, help="One progress line with the current Step N/M, not the build log.")
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the build goes on.")
@output_option
@pass_context
def image_create(ctx: CliContext, name: str, description: str, manifest_id: str | None, quiet: bool, no_wait: bool,
                 **inputs: Any) -> None:
    """Create an image: the worker builds it while its log streams here. Identical content
    is not built twice (the builder's content hash), so a repeated request takes seconds.
    Ctrl-C stops watching, not the build.

    \b
    Examples:
      moma image create -n iris --manifest-id 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00
      moma image create -n iris -f score.py -r python -p requirements.txt -m model.pkl   # one shot
      moma image create -n iris --manifest-id MANIFEST_ID --quiet -o json
    """
    given = any(value for value in inputs.values())
    if manifest_id and given:
        raise click.UsageError("give --manifest-id, or -f/-r/-m to create a manifest, not both")
    if not manifest_id:
        if not given:
            raise click.UsageError("give --manifest-id, or -f, -r and -m/-i to create the manifest on the way")
        created = create_manifest(ctx.client, name, "", **inputs)
        click.echo(f"created manifest {created['name']} version {created['version']} ({created['id']})", err=True)
        manifest_id = created["id"]
    response = ctx.client.call("POST", "/images", json={
        "name": name, "manifestId": manifest_id, "description": description, "imageType": "Docker",
        "computeResourceId": "local"})
    op_id = operation_id(response)
    if no_wait:
        not_waiting(ctx, op_id, f"image {name}")
        return
    operation = ctx.client.call("GET", f"/operations/{op_id}").json()
    pending = ctx.client.call("GET", f"/images/{resource_id(operation)}").json()
    progress = BuildProgress(BuildLog(ctx.client, pending["imageBuildLogUri"]), quiet,
                             f"image {name} version {pending['version']}")
    try:
        wait(ctx, op_id, progress)
    finally:
        progress.close()
    ctx.emit(ctx.client.call("GET", f"/images/{pending['id']}").json(), show_created)


@image.command("list")
@click.option("--manifest-id", help="Only images of this manifest.")
@click.option("--manifest-name", help="Only images of manifests of this name.")
@output_option
@pass_context
def image_list(ctx: CliContext, manifest_id: str | None, manifest_name: str | None) -> None:
    """List images, oldest first (every page).

    \b
    Examples:
      moma image list
      moma image list --manifest-id 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00 -o json
    """
    ctx.emit_list("/images", {"manifestId": manifest_id, "manifestName": manifest_name}, IMAGE_COLUMNS)


@image.command("show")
@click.option("-i", "--id", "image_id", required=True, help="The image's id.")
@output_option
@pass_context
def image_show(ctx: CliContext, image_id: str) -> None:
    """Show one image.

    \b
    Example:
      moma image show -i 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
    """
    ctx.emit(ctx.client.call("GET", f"/images/{image_id}").json(), lambda value: print_record(value, IMAGE_FIELDS))


@image.command("usage")
@click.option("-i", "--id", "image_id", required=True, help="The image's id.")
@output_option
@pass_context
def image_usage(ctx: CliContext, image_id: str) -> None:
    """How to run an image with Docker alone (pull it first when it is in a registry).

    \b
    Example:
      moma image usage -i 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
    """
    found = ctx.client.call("GET", f"/images/{image_id}").json()
    if found.get("creationState") != "Succeeded" or not found.get("imageLocation"):
        raise click.ClickException(f"image {image_id} is {found.get('creationState')}: there is nothing to run yet")
    location = found["imageLocation"]
    usage = {
        "imageLocation": location,
        "pull": f"docker pull {shlex.quote(location)}" if in_registry(location) else None,
        "run": f"docker run --rm -p 127.0.0.1:{SCORING_PORT}:{SCORING_PORT} {shlex.quote(location)}",
        "score": f"curl -s -X POST http://127.0.0.1:{SCORING_PORT}/score -H 'Content-Type: application/json' "
                 "-d '<input as JSON>'",
        "service": ctx.command_line("service", "create", "realtime", "-n", found["name"], "--image-id", found["id"]),
    }
    ctx.emit(usage, show_usage)


def in_registry(location: str) -> bool:
    """Docker's rule: the first path part names a registry when it has a '.' or a ':', or is localhost."""
    first, slash, _ = location.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def show_created(value: dict[str, Any]) -> None:
    click.echo(f"image {value['name']} version {value['version']} {value['creationState']}: {value['imageLocation']}")
    print_record(value, IMAGE_FIELDS)


def show_usage(usage: dict[str, Any]) -> None:
    click.echo(f"Image: {usage['imageLocation']}")
    if usage["pull"]:
        click.echo(f"\nPull it:\n  {usage['pull']}")
    click.echo(f"\nRun it (the scoring server listens on port {SCORING_PORT}):\n  {usage['run']}")
    click.echo(f"\nScore with it:\n  {usage['score']}")
    click.echo(f"\nOr run it as a service with keys:\n  {usage['service']}")
