"""``moma base``: the base images builds start from."""

from __future__ import annotations

import click

from builder.base_images import RECIPES, ensure_base_image, load_recipe
from builder.config import BuilderConfig
from builder.engine import DockerEngine


@click.group()
def base() -> None:
    """Base images: present, pulled, or bootstrapped from Debian packages.

    \b
    Example:
      moma base ensure --python 3.11
    """


@base.command()
@click.option("--python", "python_version", default="3.11", show_default=True, type=click.Choice(sorted(RECIPES)),
              help="Python version of the base image.")
def ensure(python_version: str) -> None:
    """Make sure the base image exists on the Docker engine.

    Uses the image when present, else pulls it (MOMA_BASE_IMAGE_TEMPLATE, default
    python:{version}-slim), else bootstraps an equivalent from Debian packages with
    debootstrap (needs root) and tags it under the same name. Runs once per engine.

    \b
    Example:
      moma base ensure --python 3.11
    """
    config = BuilderConfig.from_env()
    image_id = ensure_base_image(DockerEngine.from_env(), config, load_recipe(RECIPES[python_version]), click.echo)
    click.echo(f"{config.base_image(python_version)} {image_id}")
