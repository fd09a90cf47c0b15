"""``moma image create|list|show|usage``: creation streams the build log as the worker
writes it."""

from __future__ import annotations

import shlex
from typing import Any

import click

from runtime.contract import PORT as SCORING_PORT

from .context import CliContext, output_option, pass_context, print_record
from .oneshot import follow_build, one_shot, prepare, project_inputs, project_options, start_build
from .progress import not_waiting

IMAGE_COLUMNS = (("ID", "id"), ("NAME", "name"), ("VERSION", "version"), ("STATE", "creationState"),
                 ("LOCATION", "imageLocation"), ("CREATED", "createdTime"))
IMAGE_FIELDS = (("ID", "id"), ("Name", "name"), ("Version", "version"), ("Description", "description"),
                ("State", "creationState"), ("Location", "imageLocation"), ("Manifest", "manifest.id"),
                ("Models", "manifest.modelIds"), ("Build log", "imageBuildLogUri"), ("Created", "createdTime"),
                ("Error", "error.message"))


@click.group()
def image() -> None:
    """Docker images built from manifests by the server's worker.

    \b
    Example:
      moma image create -n iris --manifest-id 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00
    """


@image.command("create")
@click.option("-n", "--image-name", "name", required=True,
              help="Image name: letters, digits, hyphens; with -f also the manifest's name.")
@click.option("--image-description", "description", default="", help="Up to 512 characters.")
@click.option("--manifest-id", help="Build this manifest. Or build from the project's files with -f, -r and -m.")
@project_options()
@click.option("-q", "--quiet", is_flag=True, help="One progress line with the current Step N/M, not the build log.")
@click.option("--no-wait", is_flag=True, help="Print the operation and return at once; the build goes on.")
@output_option
@pass_context
def image_create(ctx: CliContext, name: str, description: str, manifest_id: str | None, new_model_version: bool,
                 quiet: bool, no_wait: bool, **params: Any) -> None:
    """Create an image: the worker builds it while its log streams here (stderr; the image
    goes to stdout). Ctrl-C stops watching, not the build.

    Either build a manifest (--manifest-id), or, in one shot as `az ml image create` did,
    the project's files: the models are registered (-m; a directory is uploaded as a
    tar.gz the build unpacks), the manifest is created and the image built. What exists
    is reused: a model of the same name with the same bytes (unless --new-model-version),
    an identical manifest, and an image of this name built from it; so the same command
    twice builds once.

    \b
    Examples:
      moma image create -n iris -f score.py -r python -m model.pkl -s service_schema.json -p requirements.txt
      moma image create -n iris --manifest-id 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00
      moma image create -n iris --manifest-id MANIFEST_ID --quiet -o json
    """
    inputs = project_inputs(params)
    building = one_shot(inputs, manifest_id, "--manifest-id")
    if not building and not manifest_id:
        raise click.UsageError("give --manifest-id, or -f, -r and -m/-i to create the manifest on the way")
    if building:
        manifest, built = prepare(ctx, name, inputs, new_model_version=new_model_version)
        if built is not None:
            ctx.emit(built, show_created)
            return
        manifest_id = manifest["id"]
    op_id = start_build(ctx, name, manifest_id, description)
    if no_wait:
        not_waiting(ctx, op_id, f"image {name}")
        return
    ctx.emit(follow_build(ctx, op_id, quiet), show_created)


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
