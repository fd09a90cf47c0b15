"""``moma base``: the base images builds start from."""

from __future__ import annotations

import click

from builder.base_images import RECIPES, ensure_base_image, load_recipe, recipes_for
from builder.config import BuilderConfig
from builder.engine import DockerEngine


@click.group()
def base() -> None:
    """Base images: present, pulled, or bootstrapped from Debian packages.

    \b
    Examples:
      moma base ensure --python 3.11
      moma base ensure --runtime spark-py
    """


RUNTIMES = {"python": "Python", "spark-py": "SparkPython"}


@base.command()
@click.option("--python", "python_version", default="3.11", show_default=True, type=click.Choice(sorted(RECIPES)),
              help="Python version of the base image.")
@click.option("-r", "--runtime", "runtime", default="python", show_default=True, type=click.Choice(sorted(RUNTIMES)),
              help="Which runtime's base: python, or spark-py (adds a headless Java 17).")
def ensure(python_version: str, runtime: str) -> None:
    """Make sure the base image exists on the Docker engine.

    Uses the image when present, else pulls it (MOMA_BASE_IMAGE_TEMPLATE, default
    python:{version}-slim; MOMA_SPARK_BASE_IMAGE_TEMPLATE, default
    moma/spark-python:{version}-java17), else bootstraps an equivalent from Debian
    packages with debootstrap (needs root) and tags it under the same name. Runs once
    per engine; builds also do it on demand.

    \b
    Examples:
      moma base ensure --python 3.11
      moma base ensure --runtime spark-py
    """
    runtime_type = RUNTIMES[runtime]
    config = BuilderConfig.from_env()
    recipe = load_recipe(recipes_for(runtime_type)[python_version])
    image_id = ensure_base_image(DockerEngine.from_env(), config, recipe, click.echo)
    click.echo(f"{config.base_image(python_version, runtime_type)} {image_id}")
