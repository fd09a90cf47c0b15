"""Assemble a build context directory: the Dockerfile and everything it COPYs.

Layout (each directory feeds one layer of the Dockerfile):
  Dockerfile
  uv/<installer wheel>       wheels/<*.whl>        (python-deps stage; only when the
                                                    Dockerfile installs the packages itself)
  runtime/                   the scoring runtime package
  app/                       driver and other assets, unpacked where asked
  models/                    models, unpacked where asked, and model_config_map.json
Both app/ and models/ land in the app root, so no path may appear in both.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .assets import FetchedFile, FetchedManifest
from .errors import UnpackError
from .unpack import UnpackLimits, unpack
from .wheelhouse import WheelSet

MODEL_CONFIG_MAP = "model_config_map.json"
RESERVED_NAMES = (MODEL_CONFIG_MAP,)


@dataclass(frozen=True)
class AccountContext:
    subscription_id: str = "local"
    resource_group_name: str = "local"
    account_name: str = "local"

    def as_json(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroupName": self.resource_group_name,
            "accountName": self.account_name,
        }


def model_config_map(manifest: FetchedManifest, account: AccountContext) -> dict[str, object]:
    return {
        "models": {m.key: {"id": m.model_id, "version": m.model.version} for m in manifest.models if m.model},
        "accountContext": account.as_json(),
    }


def assemble_context(
    directory: Path,
    *,
    dockerfile: str,
    manifest: FetchedManifest,
    wheels: WheelSet | None,
    installer: Path | None,
    runtime_source: Path,
    account: AccountContext,
    limits: UnpackLimits,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if wheels is not None and installer is not None:
        _link_or_copy_files([wheels.directory / name for name in wheels.wheels], directory / "wheels")
        _link_or_copy_files([installer], directory / "uv")
    shutil.copytree(runtime_source, directory / "runtime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    app_files = _place(manifest.app_files, directory / "app", limits)
    model_files = _place(manifest.models, directory / "models", limits)
    config_map = directory / "models" / MODEL_CONFIG_MAP
    config_map.write_text(json.dumps(model_config_map(manifest, account), indent=2, sort_keys=True) + "\n")
    _check_overlap(app_files, model_files)
    (directory / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    _normalise_modes(directory)


def _place(files: tuple[FetchedFile, ...], target: Path, limits: UnpackLimits) -> dict[str, str]:
    """Copy or unpack each file into target; return {relative path: owner key}."""
    target.mkdir(parents=True, exist_ok=True)
    owners: dict[str, str] = {}
    for item in files:
        if item.unpack:
            written = unpack(item.path, target, limits=limits, name_hint=item.filename, mime_type=item.mime_type)
        else:
            destination = target / item.filename
            if destination.exists():
                owner = owners.get(item.filename, "another asset")
                raise UnpackError(f"{item.role} {item.key!r}: {item.filename!r} is also provided by {owner!r}")
            shutil.copyfile(item.path, destination)
            written = [item.filename]
        for relative in written:
            if relative in RESERVED_NAMES:
                raise UnpackError(f"{item.role} {item.key!r}: {relative!r} is reserved for moma's own use")
            owners[relative] = f"{item.role} {item.key}"
    return owners


def _check_overlap(app_files: dict[str, str], model_files: dict[str, str]) -> None:
    for relative in sorted(set(app_files) & set(model_files)):
        raise UnpackError(f"{relative!r} is provided by both {app_files[relative]} and {model_files[relative]}")


def _link_or_copy_files(sources: list[Path], target: Path) -> None:
    """Hard links when the wheelhouse shares the file system (cheap), copies otherwise."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        destination = target / source.name
        try:
            os.link(source, destination)
        except OSError:
            shutil.copyfile(source, destination)


def _normalise_modes(directory: Path) -> None:
    """World-readable files owned by root in the image, so the non-root user can read
    but not change them; executables keep their execute bit."""
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, 0o755 if mode & 0o100 else 0o644)
