"""``moma build``: a manifest file becomes an image, with no server involved."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from types import FrameType

import click

from builder.build import OUTPUTS, Builder, BuildOptions
from builder.config import BuilderConfig
from builder.dockerfile import LABEL_KEY_PATTERN
from builder.manifest import load_manifest


@click.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Image repository name. Default: the manifest's name, lower-cased.")
@click.option("--tag", default="latest", show_default=True, help="Image tag.")
@click.option("--output", "output", type=click.Choice(OUTPUTS), default="image", show_default=True,
              help="image: a local image; tar: also `docker save` it to --dest; "
                   "context: write the Dockerfile and its context to --dest, build nothing.")
@click.option("--dest", type=click.Path(path_type=Path),
              help="Where --output tar|context writes. Default: NAME-TAG.tar / NAME-context.")
@click.option("--push", metavar="REGISTRY", help="Also push to this registry, e.g. 127.0.0.1:5000.")
@click.option("--allow-root", "allow_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A directory file:// asset URLs may read from (repeatable). "
                   "The manifest's own directory is always allowed; see also MOMA_FILE_ROOTS.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              callback=lambda ctx, param, value: _labels(value),
              help="An extra image label (repeatable); part of the image's identity.")
@click.option("--no-cache", is_flag=True, help="Build every layer again, even if an identical image exists.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result, not the build log.")
def build(manifest: Path, name: str | None, tag: str, output: str, dest: Path | None, push: str | None,
          allow_roots: tuple[Path, ...], labels: dict[str, str], no_cache: bool, quiet: bool) -> None:
    """Build MANIFEST (JSON or YAML) into a Docker image.

    Assets may be paths relative to the manifest file, file:// URLs under an allowed
    root, or http(s) URLs (Azure Blob SAS URLs included). Python packages are resolved
    on this host, so the build itself needs no network.

    \b
    Examples:
      moma build examples/iris/manifest.yml --name iris --tag 1
      moma build manifest.yml --push 127.0.0.1:5000
      moma build manifest.yml --output context --dest ./iris-context && docker build ./iris-context
    """
    signal.signal(signal.SIGTERM, _unwind)
    config = BuilderConfig.from_env().with_file_roots(*(root.resolve() for root in allow_roots))
    spec = load_manifest(manifest)
    options = BuildOptions(name=name, tag=tag, output=output, dest=dest, push=push, labels=labels, no_cache=no_cache)
    result = Builder(config).build(spec, options, on_log=(lambda line: None) if quiet else click.echo)
    if result.reference:
        click.echo(f"image:    {result.reference} ({(result.image_id or '')[:19]})")
        click.echo(f"reused:   {'yes, an identical image existed' if result.reused else 'no, built'}")
    if result.location != result.reference:
        click.echo(f"location: {result.location}")
    click.echo(f"log:      {result.log_path}")


def _unwind(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the build the way Ctrl-C does: by an exception, so that its scratch
    directories are removed and its helper processes stopped on the way out. A second
    SIGTERM does not interrupt that clean-up (SIGKILL still does)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not re.fullmatch(LABEL_KEY_PATTERN, key):
            raise click.BadParameter(f"{value!r}: expected KEY=VALUE with a lower-case key like team.owner=alice",
                                     param_hint="--label")
        labels[key] = text
    return labels
