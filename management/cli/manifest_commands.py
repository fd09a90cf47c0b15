"""``moma manifest create|list|show``. The inputs and the body they make also serve the
one-shot commands (``oneshot.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from ..client import ApiClient
from .context import CliContext, output_option, pass_context, print_record, print_table
from .uploads import asset_id, is_url, local_path, model_name, register_model, upload, upload_file

F = TypeVar("F", bound=Callable[..., Any])
RUNTIMES = {"python": "Python", "spark-py": "SparkPython"}
DRIVER_ID = "driver"
SCHEMA_ID = "schema"
SCHEMA_FILE = "service_schema.json"  # the runtime looks for this name in the app root
MANIFEST_COLUMNS = (("ID", "id"), ("NAME", "name"), ("VERSION", "version"), ("RUNTIME", "targetRuntime.runtimeType"),
                    ("MODELS", "modelIds"), ("CREATED", "createdTime"))
MANIFEST_FIELDS = (("ID", "id"), ("Name", "name"), ("Version", "version"), ("Description", "description"),
                   ("Runtime", "targetRuntime.runtimeType"), ("Driver", "driverProgram"), ("Models", "modelIds"),
                   ("pip requirements", "targetRuntime.properties.pipRequirements"),
                   ("conda env", "targetRuntime.properties.condaEnvFile"), ("Created", "createdTime"))
ASSET_COLUMNS = (("ASSET", "id"), ("UNPACK", "unpack"), ("MIME TYPE", "mimeType"), ("URL", "url"))


INPUTS = {"driver_file": "-f", "target_runtime": "-r", "schema_file": "-s", "dependencies": "-d",
          "pip_requirements": "-p", "conda_env": "-c", "model_ids": "--model-id", "model_files": "-m"}


def manifest_inputs(required: bool, model_id_flags: tuple[str, ...] = ("-i", "--model-id")) -> Callable[[F], F]:
    """The options that make a manifest (the original's flags), shared by ``manifest create``
    (driver and runtime required) and the one-shot commands (all optional there; the
    service commands spell the model id ``--model-id`` only, as ``-i`` is the service's)."""
    options = [
        click.option("-f", "--driver-file", required=required,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The driver, e.g. score.py: init() loads the models by relative path, run() scores."),
        click.option("-r", "--target-runtime", required=required, type=click.Choice(sorted(RUNTIMES)),
                     help="python, or spark-py (SparkPython: a local SparkSession as `spark` in the driver)."),
        click.option("-s", "--schema-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A schema written by generate_schema, e.g. service_schema.json: input checked, "
                          "DataFrames built, example in swagger.json."),
        click.option("-d", "--dependency", "dependencies", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="A file or directory the driver needs, beside it in the app root (repeatable); "
                          "directories are tarred and unpacked. e.g. -d utils.py -d lookups/"),
        click.option("-p", "--pip-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A requirements.txt, installed into the image (no pip options such as --index-url)."),
        click.option("-c", "--conda-env", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A conda environment file, e.g. aml_config/conda_dependencies.yml "
                          "(its python version picks the base image)."),
        click.option(*model_id_flags, "model_ids", multiple=True, metavar="MODEL_ID",
                     help="A registered model's id (repeatable)."),
        click.option("-m", "--model-file", "model_files", multiple=True, metavar="PATH|URL",
                     help="A model to register first, named after its file (model.pkl → model); a directory is "
                          "tarred and unpacked under its own name (repeatable). e.g. -m model.pkl -m vocab/"),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group()
def manifest() -> None:
    """Manifests: a driver, its assets, the runtime and the models an image is built from.

    \b
    Example:
      moma manifest create -n iris -f score.py -r python -p requirements.txt -m model.pkl
    """


@manifest.command("create")
@click.option("-n", "--manifest-name", "name", required=True, help="Manifest name: letters, digits, hyphens.")
@click.option("--manifest-description", "description", default="", help="Up to 512 characters.")
@manifest_inputs(required=True)
@output_option
@pass_context
def manifest_create(ctx: CliContext, name: str, description: str, **inputs: Any) -> None:
    """Create a manifest: upload the driver, schema, dependencies and requirement files,
    register models given as files, and record it all. Needs -f, -r and at least one -i or -m.

    \b
    Examples:
      moma manifest create -n iris -f score.py -r python -p requirements.txt -i 3f2b8c1d9e0a4b5c8d7e6f5a4b3c2d1e
      moma manifest create -n iris -f score.py -r python -s schema.json -c conda.yml -d utils.py -m model.pkl
    """
    ctx.emit(create_manifest(ctx.client, name, description, **inputs), show_manifest)


def create_manifest(client: ApiClient, name: str, description: str, **inputs: Any) -> dict[str, Any]:
    """Check every input first (usage errors before any upload), then upload, register the
    models given as files (a new version each) and record the manifest."""
    check_inputs(inputs)
    registered = [register_model(client, source, model_name(source))["id"] for source in inputs["model_files"]]
    body = manifest_body(client, name, description, inputs, [*inputs["model_ids"], *registered])
    return client.call("POST", "/manifests", json=body).json()


def input_args(inputs: dict[str, Any]) -> list[str]:
    """The flags that give these inputs again, for a command to paste."""
    args: list[str] = []
    for key, flag in INPUTS.items():
        values = inputs[key] if isinstance(inputs[key], tuple) else (inputs[key],)
        args += [part for value in values if value is not None for part in (flag, str(value))]
    return args


def check_inputs(inputs: dict[str, Any]) -> None:
    """Usage errors for what a manifest needs: -f, -r, a model, local model paths that exist."""
    if inputs["driver_file"] is None:
        raise click.UsageError("a driver file is required: -f score.py")
    if inputs["target_runtime"] is None:
        raise click.UsageError("a target runtime is required: -r python or -r spark-py")
    if not inputs["model_ids"] and not inputs["model_files"]:
        raise click.UsageError("at least one model is required: -m MODEL_FILE or --model-id MODEL_ID")
    for source in inputs["model_files"]:
        if not is_url(source):
            local_path(source, "-m/--model-file")


def manifest_body(client: ApiClient, name: str, description: str, inputs: dict[str, Any],
                  model_ids: list[str]) -> dict[str, Any]:
    """The Manifest to POST, its files uploaded (the store keeps one copy of each content)."""
    assets = [{"id": DRIVER_ID, "url": upload_file(client, inputs["driver_file"]), "mimeType": "application/x-python"}]
    if inputs["schema_file"] is not None:
        assets.append({"id": SCHEMA_ID, "url": upload_file(client, inputs["schema_file"], SCHEMA_FILE),
                       "mimeType": "application/json"})
    taken = {DRIVER_ID, SCHEMA_ID}
    for dependency in inputs["dependencies"]:
        uploaded = upload(client, dependency)
        asset: dict[str, Any] = {"id": asset_id(dependency, taken), "url": uploaded.url,
                                 "mimeType": uploaded.mime_type}
        if uploaded.unpack:
            asset["unpack"] = True
        assets.append(asset)
    properties = {}
    if inputs["pip_requirements"] is not None:
        properties["pipRequirements"] = upload_file(client, inputs["pip_requirements"])
    if inputs["conda_env"] is not None:
        properties["condaEnvFile"] = upload_file(client, inputs["conda_env"])
    return {"name": name, "description": description, "driverProgram": DRIVER_ID, "modelType": "Registered",
            "modelIds": model_ids, "webserviceType": "Realtime",
            "targetRuntime": {"runtimeType": RUNTIMES[inputs["target_runtime"]], "properties": properties},
            "assets": assets}


@manifest.command("list")
@click.option("-n", "--manifest-name", "name", help="Only manifests of this name.")
@click.option("--model-id", help="Only manifests that use this model.")
@output_option
@pass_context
def manifest_list(ctx: CliContext, name: str | None, model_id: str | None) -> None:
    """List manifests, oldest first (every page).

    \b
    Examples:
      moma manifest list
      moma manifest list -n iris -o json
    """
    ctx.emit_list("/manifests", {"manifestName": name, "modelId": model_id}, MANIFEST_COLUMNS)


@manifest.command("show")
@click.option("-i", "--id", "manifest_id", required=True, help="The manifest's id.")
@output_option
@pass_context
def manifest_show(ctx: CliContext, manifest_id: str) -> None:
    """Show one manifest and its assets.

    \b
    Example:
      moma manifest show -i 0c8c9995-1b2d-4c3e-8f4a-5b6c7d8e9f00
    """
    ctx.emit(ctx.client.call("GET", f"/manifests/{manifest_id}").json(), show_manifest)


def show_manifest(value: dict[str, Any]) -> None:
    print_record(value, MANIFEST_FIELDS)
    click.echo("")
    print_table(value.get("assets") or [], ASSET_COLUMNS)
