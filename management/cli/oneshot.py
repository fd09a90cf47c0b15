"""The 2017 CLI's one-shot commands: from a project's files to an image (``image create
-f``), and on to a service (``service create -f``, ``service update -f``).

Each step says on stderr what it did, and reuses what exists instead of making it
again, so the same command run twice builds nothing:

- a model of the same name registered from the same bytes under the same file name
  (``--new-model-version`` registers anyway; an http(s) URL is always registered);
- a manifest of the same name with the same body (models, files, runtime);
- a Succeeded image of the same name built from that manifest.

The builder also finds an identical image by its content hash, but only for the same
manifest and models, as its labels name them: a new model version or manifest is a
new image, which is why the steps before it reuse first.

Ctrl-C while the files go up leaves nothing running; while a build or a deployment
runs it stops waiting, never the work, and says how to finish (``wait``'s ``then``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

import click

from ..errors import Conflict, NotFound
from ..service_settings import SETTINGS_KEYS, desired_settings
from .context import CliContext
from .errors import EXIT_INTERRUPTED
from .manifest_commands import INPUTS, check_inputs, manifest_body, manifest_inputs
from .progress import BuildLog, BuildProgress, operation_id, resource_id, wait
from .uploads import model_from, model_name

F = TypeVar("F", bound=Callable[..., Any])


def project_options(model_id_flags: tuple[str, ...] = ("-i", "--model-id")) -> Callable[[F], F]:
    """The manifest's flags, all optional, and ``--new-model-version``."""
    def decorate(command: F) -> F:
        command = click.option("--new-model-version", is_flag=True,
                               help="With -m: register the models again even when the same name already has "
                                    "these bytes (a new version, so a new manifest and image).")(command)
        return manifest_inputs(required=False, model_id_flags=model_id_flags)(command)

    return decorate


def project_inputs(params: dict[str, Any]) -> dict[str, Any]:
    """The manifest's inputs, taken out of a command's parameters."""
    return {name: params.pop(name) for name in INPUTS}


def one_shot(inputs: dict[str, Any], other: str | None, other_flag: str) -> bool:
    """Whether the project's files were given (then checked, before any request); with
    ``other`` too, a usage error."""
    given = any(inputs.values())
    if given and other:
        raise click.UsageError(f"give {other_flag}, or -f, -r and -m to build the image on the way, not both")
    if given:
        check_inputs(inputs)
    return given


def prepare(ctx: CliContext, name: str, inputs: dict[str, Any], *,
            new_model_version: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(manifest, the Succeeded image of it named ``name`` or None): the models registered
    or reused, the files uploaded, the manifest created or reused. ``inputs`` have passed
    ``one_shot``."""
    try:
        registered = [_model(ctx, source, reuse=not new_model_version) for source in inputs["model_files"]]
        manifest = _manifest(ctx, manifest_body(ctx.client, name, "", inputs, [*inputs["model_ids"], *registered]))
        return manifest, _built_image(ctx, manifest, name)
    except KeyboardInterrupt:
        click.echo("\ninterrupted before any build started: nothing runs on the server; the same command again "
                   "reuses what was registered", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def image_from_project(ctx: CliContext, name: str, inputs: dict[str, Any], *, new_model_version: bool, quiet: bool,
                       then: Callable[[str], str]) -> dict[str, Any]:
    """The Succeeded image of the project's files: reused, or built while its log streams.
    ``then`` makes, from the new image's id, the command that finishes the work after Ctrl-C."""
    manifest, image = prepare(ctx, name, inputs, new_model_version=new_model_version)
    if image is not None:
        return image
    return follow_build(ctx, start_build(ctx, name, manifest["id"]), quiet, then)


def start_build(ctx: CliContext, name: str, manifest_id: str, description: str = "") -> str:
    """POST the image; its build operation's id."""
    return operation_id(ctx.client.call("POST", "/images", json={
        "name": name, "manifestId": manifest_id, "description": description, "imageType": "Docker",
        "computeResourceId": "local"}))


def follow_build(ctx: CliContext, op_id: str, quiet: bool,
                 then: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Stream the build log (or one status line) until the build ends; the image."""
    operation = ctx.client.call("GET", f"/operations/{op_id}").json()
    pending = ctx.client.call("GET", f"/images/{resource_id(operation)}").json()
    progress = BuildProgress(BuildLog(ctx.client, pending["imageBuildLogUri"]), quiet,
                             f"image {pending['name']} version {pending['version']}")
    try:
        wait(ctx, op_id, progress, then(pending["id"]) if then else "")
    finally:
        progress.close()
    return ctx.client.call("GET", f"/images/{pending['id']}").json()


def check_service(ctx: CliContext, body: dict[str, Any], compute: str, *, name: str | None = None,
                  current: dict[str, Any] | None = None, update_args: Sequence[str] = ()) -> None:
    """What the server would refuse once the image is built, refused before the build: a
    taken name (creating; the message shows the update to run instead, with
    ``update_args``), an unknown compute, settings the compute cannot run."""
    if name is not None:
        for existing in ctx.client.pages("/services", {"serviceName": name}):
            update = ctx.command_line("service", "update", "realtime", "-i", existing["id"], *update_args)
            raise Conflict(f"service {name} already exists ({existing['id']}); to run these files on it:\n"
                           f"  {update}\nor choose another -n")
    kinds = {found["id"]: found["type"] for found in ctx.client.call("GET", "/computes").json()["value"]}
    if compute not in kinds:
        raise NotFound(f"compute {compute} does not exist in this account (moma compute list)")
    previous = {key: current[key] for key in SETTINGS_KEYS if key in current} if current else None
    desired_settings(body, kinds[compute], previous)


def _model(ctx: CliContext, source: str, *, reuse: bool) -> str:
    model, reused = model_from(ctx.client, source, model_name(source), reuse=reuse)
    _step(f"model {model['name']} version {model['version']}: "
          f"{'reused, same content' if reused else 'registered'} ({model['id']})")
    return str(model["id"])


def _manifest(ctx: CliContext, body: dict[str, Any]) -> dict[str, Any]:
    """The latest manifest with this very body, or a new one. Listed by name and first
    model, so the search reads a few manifests, not the account's."""
    found = None
    for manifest in ctx.client.pages("/manifests", {"manifestName": body["name"], "modelId": body["modelIds"][0]}):
        if all(manifest.get(key) == value for key, value in body.items()):
            found = manifest
    reused = found is not None
    if found is None:
        found = ctx.client.call("POST", "/manifests", json=body).json()
    _step(f"manifest {found['name']} version {found['version']}: "
          f"{'reused, same content' if reused else 'created'} ({found['id']})")
    return found


def _built_image(ctx: CliContext, manifest: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = None
    for image in ctx.client.pages("/images", {"manifestId": manifest["id"]}):
        if image["name"] == name and image["creationState"] == "Succeeded":
            found = image
    if found is not None:
        _step(f"image {found['name']} version {found['version']}: reused, built from this manifest ({found['id']})")
    return found


def _step(text: str) -> None:
    click.echo(text, err=True)
