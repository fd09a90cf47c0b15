"""The builder's view of a manifest: validated, typed, with every name checked.

Accepts the API's Manifest shape (spec: Manifest, Asset, TargetRuntime) from a JSON or
YAML file or a dict, plus two builder-level extensions:

- ``models``: registered-model records (``name``, ``url``, optional ``id``,
  ``version``, ``mimeType``, ``unpack``, ``sha256``) — the management API passes the
  records of ``modelIds`` here; a manifest file may list them inline.
- ``sha256`` on any asset or model: the digest the content must have.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from .errors import ManifestError

# Patterns match a whole value (re.fullmatch; the schema's "pattern" is full-match too).
NAME_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?"
ASSET_ID_PATTERN = r"[A-Za-z0-9_.-]{1,32}"
SHA256_PATTERN = r"[0-9a-fA-F]{64}"
RUNTIME_TYPES = ("Python", "SparkPython")
RUNTIME_PROPERTIES = ("pipRequirements", "condaEnvFile")
MAX_MANIFEST_BYTES = 1024 * 1024

_URL = {"type": "string", "minLength": 1, "maxLength": 8192}
_SHA256 = {"type": "string", "pattern": SHA256_PATTERN}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "driverProgram", "targetRuntime", "assets"],
    "properties": {
        "id": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "maxLength": 512},
        "driverProgram": {"type": "string", "pattern": ASSET_ID_PATTERN},
        "modelType": {"enum": ["Registered"]},
        "webserviceType": {"enum": ["Realtime"]},
        "modelIds": {"type": "array", "items": {"type": "string", "maxLength": 64}},
        "targetRuntime": {
            "type": "object",
            "required": ["runtimeType"],
            "properties": {
                "runtimeType": {"enum": list(RUNTIME_TYPES)},
                "properties": {
                    "type": "object",
                    "properties": {key: _URL for key in RUNTIME_PROPERTIES},
                    "additionalProperties": False,
                },
            },
        },
        "assets": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "url"],
                "properties": {
                    "id": {"type": "string", "pattern": ASSET_ID_PATTERN},
                    "url": _URL,
                    "mimeType": {"type": "string", "maxLength": 255},
                    "unpack": {"type": "boolean"},
                    "sha256": _SHA256,
                },
                "additionalProperties": False,
            },
        },
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "url"],
                "properties": {
                    "id": {"type": "string", "pattern": r"[A-Za-z0-9-]{1,64}"},
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "version": {"type": "integer", "minimum": 1},
                    "url": _URL,
                    "mimeType": {"type": "string", "maxLength": 255},
                    "unpack": {"type": "boolean"},
                    "sha256": _SHA256,
                    "description": {"type": "string"},
                    "tags": {"type": "array"},
                    "createdAt": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
    },
}


def _full_match(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    """JSON Schema's ``pattern`` searches, so ``^x$`` would accept ``"x\\n"``; ours must match
    the whole string."""
    if validator.is_type(instance, "string") and not re.fullmatch(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_VALIDATOR = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _full_match})(SCHEMA)


@dataclass(frozen=True)
class AssetSpec:
    id: str
    url: str
    mime_type: str = ""
    unpack: bool = False
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    url: str
    version: int = 1
    id: str = ""
    mime_type: str = ""
    unpack: bool = False
    sha256: str | None = None


@dataclass(frozen=True)
class ManifestSpec:
    name: str
    driver_program: str
    runtime_type: str
    assets: tuple[AssetSpec, ...]
    models: tuple[ModelSpec, ...] = ()
    pip_requirements: str | None = None
    conda_env_file: str | None = None
    id: str = ""
    description: str = ""
    base_dir: Path | None = field(default=None, compare=False)

    @property
    def driver(self) -> AssetSpec:
        return next(asset for asset in self.assets if asset.id == self.driver_program)


def load_manifest(path: Path) -> ManifestSpec:
    """Read a manifest file (JSON or YAML); relative asset URLs resolve against its folder."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError("", f"{path} is {size} bytes; a manifest may have at most {MAX_MANIFEST_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError("", f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError("", f"{path} is not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError("", f"{path} is neither valid JSON nor YAML: {exc}") from exc
    return parse_manifest(data, base_dir=path.resolve().parent)


def parse_manifest(data: Any, *, base_dir: Path | None = None) -> ManifestSpec:
    """Validate a manifest dict (the API's shape plus ``models``) into a ManifestSpec."""
    if not isinstance(data, dict):
        raise ManifestError("", "a manifest must be a JSON/YAML object")
    _check_schema(data)
    assets = tuple(_asset(item) for item in data["assets"])
    models = tuple(_model(item) for item in data.get("models", ()))
    _check_unique([a.id for a in assets], "assets", "asset id")
    _check_driver(data["driverProgram"], assets)
    _check_models(data.get("modelIds", ()), models)
    properties = data["targetRuntime"].get("properties") or {}
    return ManifestSpec(
        name=data["name"],
        driver_program=data["driverProgram"],
        runtime_type=data["targetRuntime"]["runtimeType"],
        assets=assets,
        models=models,
        pip_requirements=properties.get("pipRequirements") or None,
        conda_env_file=properties.get("condaEnvFile") or None,
        id=data.get("id", ""),
        description=data.get("description", ""),
        base_dir=base_dir,
    )


def _check_schema(data: dict[str, Any]) -> None:
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise ManifestError(_field_path(first.absolute_path), _schema_message(first))


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "manifest"


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern":
        return f"{json.dumps(error.instance)} is not allowed (must match {error.validator_value})"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{error.message}; allowed: {allowed}"
    return error.message


def _asset(item: dict[str, Any]) -> AssetSpec:
    return AssetSpec(
        id=item["id"],
        url=item["url"],
        mime_type=item.get("mimeType", ""),
        unpack=bool(item.get("unpack", False)),
        sha256=_lower(item.get("sha256")),
    )


def _model(item: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        name=item["name"],
        url=item["url"],
        version=item.get("version", 1),
        id=item.get("id", ""),
        mime_type=item.get("mimeType", ""),
        unpack=bool(item.get("unpack", False)),
        sha256=_lower(item.get("sha256")),
    )


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _check_unique(values: list[str], field_name: str, what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ManifestError(f"{field_name}[{index}]", f"duplicate {what} {value!r}")
        seen.add(value)


def _check_driver(driver_program: str, assets: tuple[AssetSpec, ...]) -> None:
    ids = [asset.id for asset in assets]
    if driver_program not in ids:
        raise ManifestError(
            "driverProgram",
            f"{driver_program!r} is not the id of an asset (asset ids: {', '.join(ids)})",
        )
    driver = next(asset for asset in assets if asset.id == driver_program)
    if driver.unpack:
        raise ManifestError("driverProgram", f"asset {driver_program!r} must be a single file, not unpacked")


def _check_models(model_ids: Any, models: tuple[ModelSpec, ...]) -> None:
    known = {model.id for model in models if model.id}
    missing = [model_id for model_id in model_ids if model_id not in known]
    if missing:
        raise ManifestError(
            "modelIds",
            f"no model record for {', '.join(missing)}: registered models are resolved by the "
            "management API; in a manifest file list them under 'models' with name and url",
        )
    seen: set[str] = set()
    for index, model in enumerate(models):
        if model.name in seen:
            raise ManifestError(f"models[{index}]", f"model {model.name!r} is listed twice; "
                                "an image holds one version of each model")
        seen.add(model.name)
