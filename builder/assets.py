"""Fetch everything a manifest names (driver, assets, models, requirement files) into a
work directory, with digests, before anything is unpacked or built."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .config import BuilderConfig
from .errors import AssetError, AssetNotAllowed, ManifestError, RequirementsError
from .fetch import Fetched, FetchPolicy, asset_filename, fetch, redact
from .manifest import AssetSpec, ManifestSpec, ModelSpec
from .requirements import DEFAULT_PYTHON, PythonDependencies, parse_conda_env, parse_pip_requirements

SCHEMA_FILE = "service_schema.json"
MAX_REQUIREMENTS_BYTES = 1024 * 1024
# Input types of the original schema files and what the runtime needs to build them.
_SCHEMA_TYPE_PACKAGES = {1: ("numpy",), 3: ("numpy", "pandas")}


@dataclass(frozen=True)
class FetchedFile:
    """One asset or model, on local disk."""

    role: str  # "driver", "asset" or "model"
    key: str  # asset id, or model name
    url: str  # redacted: no query string
    filename: str
    path: Path
    sha256: str
    size: int
    unpack: bool
    mime_type: str
    model: ModelSpec | None = None

    @property
    def model_id(self) -> str:
        """The registered id, or for a model given inline a stable id derived from its content."""
        assert self.model is not None
        if self.model.id:
            return self.model.id
        seed = f"{self.model.name}\0{self.model.version}\0{self.sha256}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]


@dataclass(frozen=True)
class FetchedManifest:
    spec: ManifestSpec
    files: tuple[FetchedFile, ...]
    dependencies: PythonDependencies

    @property
    def driver(self) -> FetchedFile:
        return next(f for f in self.files if f.role == "driver")

    @property
    def models(self) -> tuple[FetchedFile, ...]:
        return tuple(f for f in self.files if f.role == "model")

    @property
    def app_files(self) -> tuple[FetchedFile, ...]:
        return tuple(f for f in self.files if f.role != "model")


def fetch_manifest(spec: ManifestSpec, work: Path, config: BuilderConfig) -> FetchedManifest:
    policy = _policy(spec, config)
    work.mkdir(parents=True, exist_ok=True)
    files = [
        *(_fetch_asset(asset, index, spec, work, policy) for index, asset in enumerate(spec.assets)),
        *(_fetch_model(model, index, spec, work, policy) for index, model in enumerate(spec.models)),
    ]
    dependencies = _dependencies(spec, work, policy)
    dependencies = dependencies.merged_with(PythonDependencies(dependencies.python_version, _schema_packages(files)))
    return FetchedManifest(spec, tuple(files), dependencies)


def _policy(spec: ManifestSpec, config: BuilderConfig) -> FetchPolicy:
    roots = config.file_roots + ((spec.base_dir,) if spec.base_dir else ())
    return FetchPolicy(allowed_roots=roots, max_bytes=config.max_asset_bytes, allow_link_local=config.allow_link_local,
                       deadline_seconds=config.download_deadline_seconds,
                       min_bytes_per_second=config.download_min_bytes_per_second)


def _fetch_asset(asset: AssetSpec, index: int, spec: ManifestSpec, work: Path, policy: FetchPolicy) -> FetchedFile:
    role = "driver" if asset.id == spec.driver_program else "asset"
    where = f"assets[{index}] ({asset.id})"
    filename = _filename(asset.url, where)
    with _context(where):
        fetched = fetch(asset.url, work / f"asset-{index}-{filename}", policy=policy, base_dir=spec.base_dir,
                        sha256=asset.sha256)
    return _fetched_file(role, asset.id, asset.url, filename, fetched, asset.unpack, asset.mime_type)


def _fetch_model(model: ModelSpec, index: int, spec: ManifestSpec, work: Path, policy: FetchPolicy) -> FetchedFile:
    where = f"models[{index}] ({model.name})"
    filename = _filename(model.url, where)
    with _context(where):
        fetched = fetch(model.url, work / f"model-{index}-{filename}", policy=policy, base_dir=spec.base_dir,
                        sha256=model.sha256)
    return _fetched_file("model", model.name, model.url, filename, fetched, model.unpack, model.mime_type, model)


def _fetched_file(role: str, key: str, url: str, filename: str, fetched: Fetched, unpack: bool, mime_type: str,
                  model: ModelSpec | None = None) -> FetchedFile:
    return FetchedFile(role=role, key=key, url=redact(url), filename=filename, path=fetched.path,
                       sha256=fetched.sha256, size=fetched.size, unpack=unpack, mime_type=mime_type, model=model)


@contextlib.contextmanager
def _context(where: str) -> Iterator[None]:
    """Say which asset an asset error is about."""
    try:
        yield
    except AssetError as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def _filename(url: str, where: str) -> str:
    try:
        return asset_filename(url)
    except AssetNotAllowed as exc:
        raise ManifestError(where, str(exc)) from exc


def _dependencies(spec: ManifestSpec, work: Path, policy: FetchPolicy) -> PythonDependencies:
    dependencies = PythonDependencies(DEFAULT_PYTHON, ())
    if spec.conda_env_file:
        text = _fetch_text(spec.conda_env_file, work / "conda-env.yml", spec, policy)
        dependencies = parse_conda_env(text, f"condaEnvFile ({redact(spec.conda_env_file)})")
    if spec.pip_requirements:
        text = _fetch_text(spec.pip_requirements, work / "requirements.txt", spec, policy)
        pip = parse_pip_requirements(text, f"pipRequirements ({redact(spec.pip_requirements)})")
        dependencies = dependencies.merged_with(PythonDependencies(dependencies.python_version, pip))
    return dependencies


def _fetch_text(url: str, dest: Path, spec: ManifestSpec, policy: FetchPolicy) -> str:
    small = FetchPolicy(allowed_roots=policy.allowed_roots, max_bytes=MAX_REQUIREMENTS_BYTES,
                        allow_link_local=policy.allow_link_local)
    fetched = fetch(url, dest, policy=small, base_dir=spec.base_dir)
    try:
        return fetched.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequirementsError(f"{redact(url)} is not UTF-8 text") from exc


def _schema_packages(files: list[FetchedFile]) -> tuple[str, ...]:
    """numpy / pandas when the service schema has inputs of those types."""
    packages: list[str] = []
    for item in files:
        if item.filename != SCHEMA_FILE or item.unpack:
            continue
        try:
            schema = json.loads(item.path.read_text(encoding="utf-8"))
            inputs = schema.get("input", {}).values()
            types = {entry.get("type") for entry in inputs if isinstance(entry, dict)}
        except (ValueError, AttributeError) as exc:
            raise ManifestError(f"assets ({item.key})", f"{SCHEMA_FILE} is not a valid schema file: {exc}") from exc
        for schema_type in sorted(t for t in types if isinstance(t, int)):
            packages.extend(_SCHEMA_TYPE_PACKAGES.get(schema_type, ()))
    return tuple(dict.fromkeys(packages))
