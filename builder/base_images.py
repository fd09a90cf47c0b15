"""Base images without a registry: use the image when present, else pull it, else
bootstrap an equivalent from Debian packages (debootstrap) and ``docker import`` it
under the configured tag. Bootstrapping happens once per engine; the image is reused."""

from __future__ import annotations

import importlib.resources
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from .config import BuilderConfig
from .engine import DockerEngine
from .errors import BaseImageError
from .processes import run_streaming
from .scratch import scratch_directory

LineSink = Callable[[str], None]
BOOTSTRAP_LABEL = "moma.bootstrapped-from"


@dataclass(frozen=True)
class Recipe:
    name: str
    runtime_type: str
    python_version: str
    suite: str
    variant: str
    include: tuple[str, ...]
    trim: tuple[str, ...]
    changes: tuple[str, ...]


def load_recipe(name: str) -> Recipe:
    resource = importlib.resources.files("templates").joinpath("base-images", f"{name}.yml")
    try:
        data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BaseImageError(f"no base image recipe named {name!r}") from exc
    return Recipe(
        name=name,
        runtime_type=data.get("runtime_type", "Python"),
        python_version=str(data["python_version"]),
        suite=data["suite"],
        variant=data["variant"],
        include=tuple(data["include"]),
        trim=tuple(data.get("trim", ())),
        changes=tuple(data.get("changes", ())),
    )


# Python minor version → the recipe that can bootstrap its base image, per runtime type.
RECIPES = {"3.11": "python"}
SPARK_RECIPES = {"3.11": "spark-python"}


def recipes_for(runtime_type: str) -> dict[str, str]:
    return SPARK_RECIPES if runtime_type == "SparkPython" else RECIPES


def base_image_id(engine: DockerEngine, config: BuilderConfig, python_version: str, log: LineSink = print,
                  runtime_type: str = "Python") -> str:
    """The base image for a runtime and Python version: present, pulled, or bootstrapped
    when a recipe can."""
    reference = config.base_image(python_version, runtime_type)
    image_id = engine.image_id(reference)
    if image_id:
        return image_id
    recipes = recipes_for(runtime_type)
    if python_version in recipes:
        return ensure_base_image(engine, config, load_recipe(recipes[python_version]), log)
    reason = engine.pull(reference)
    image_id = None if reason else engine.image_id(reference)
    if image_id is None:
        raise BaseImageError(
            f"Python {python_version}: base image {reference} is not present and cannot be pulled ({reason}); "
            f"moma can bootstrap base images for Python {', '.join(recipes)} only. Load or tag an image as "
            f"{reference}, or set MOMA_BASE_IMAGE_TEMPLATE."
        )
    return image_id


def ensure_base_image(engine: DockerEngine, config: BuilderConfig, recipe: Recipe,
                      log: LineSink = print) -> str:
    """Return the id of the base image for ``recipe``, pulling or bootstrapping it once."""
    reference = config.base_image(recipe.python_version, recipe.runtime_type)
    image_id = engine.image_id(reference)
    if image_id:
        log(f"base image {reference} present ({image_id[:19]})")
        return image_id
    log(f"pulling {reference} ...")
    reason = engine.pull(reference)
    if not reason:
        image_id = engine.image_id(reference)
        if image_id:
            return image_id
    log(f"pull failed ({reason}); bootstrapping {reference} from Debian {recipe.suite} packages")
    return bootstrap(engine, config, recipe, reference, log)


def bootstrap(engine: DockerEngine, config: BuilderConfig, recipe: Recipe, reference: str,
              log: LineSink = print) -> str:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BaseImageError(
            f"{reference} cannot be pulled and debootstrap is not installed "
            "(apt-get install debootstrap, as root) to bootstrap it"
        )
    if os.geteuid() != 0:
        raise BaseImageError(f"{reference} cannot be pulled; bootstrapping it with debootstrap needs root")
    with scratch_directory("moma-base-") as work:
        rootfs = work / "rootfs"
        _run([debootstrap, f"--variant={recipe.variant}", f"--include={','.join(recipe.include)}",
              recipe.suite, str(rootfs), config.debian_mirror], log, "debootstrap")
        _trim(rootfs, recipe.trim)
        tarball = work / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], log, "tar")
        changes = [*recipe.changes, f'LABEL {BOOTSTRAP_LABEL}="debootstrap {recipe.suite} {recipe.name}"']
        image_id = engine.import_rootfs(tarball, reference, changes)
    log(f"bootstrapped {reference} ({image_id[:19]})")
    return image_id


def _trim(rootfs: Path, paths: tuple[str, ...]) -> None:
    """Empty the listed directories (caches, docs, locales) inside the root file system."""
    for relative in paths:
        target = (rootfs / relative).resolve()
        if not target.is_relative_to(rootfs.resolve()) or not target.is_dir():
            continue
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def _run(command: list[str], log: LineSink, what: str) -> None:
    code, output = run_streaming(command, log, hide=lambda line: line.startswith(("I: Retrieving", "I: Validating")))
    if code != 0:
        raise BaseImageError(f"{what} failed with exit code {code}:\n" + "\n".join(output[-20:]))
