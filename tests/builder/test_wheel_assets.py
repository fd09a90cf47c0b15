"""A ``.whl`` asset is a package the image installs: kept out of the app root, handed to
the resolver, and a requirement line naming its file refers to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.assets import fetch_manifest
from builder.config import BuilderConfig
from builder.errors import ManifestError
from builder.manifest import parse_manifest

from .fixture_wheels import make_wheel


def project(tmp_path: Path, wheel_name: str, requirements: str) -> tuple[Path, dict]:
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(x): return x\n")
    (tmp_path / "requirements.txt").write_text(requirements)
    manifest = {"name": "wheels", "driverProgram": "driver",
                "targetRuntime": {"runtimeType": "Python", "properties": {"pipRequirements": "requirements.txt"}},
                "assets": [{"id": "driver", "url": "score.py"}, {"id": "labels", "url": wheel_name},
                           {"id": "notes", "url": "notes.txt"}]}
    (tmp_path / "notes.txt").write_text("a plain asset\n")
    return tmp_path, manifest


def fetched(tmp_path: Path, manifest: dict):
    config = BuilderConfig.from_env({"MOMA_HOME": str(tmp_path / "home")})
    return fetch_manifest(parse_manifest(manifest, base_dir=tmp_path), tmp_path / "work", config)


def test_a_wheel_asset_is_a_package_not_an_app_file(tmp_path: Path):
    wheel = make_wheel(tmp_path, "iris-labels", "1.0", {"iris_labels/__init__.py": ""})
    base, manifest = project(tmp_path, wheel.name, f"{wheel.name}\njoblib\n")

    result = fetched(base, manifest)

    assert [item.filename for item in result.wheels] == [wheel.name]
    assert [item.filename for item in result.app_files] == ["score.py", "notes.txt"]
    assert result.dependencies.requirements == ("joblib",)


def test_a_wheel_asset_needs_a_wheel_file_name(tmp_path: Path):
    (tmp_path / "labels.whl").write_bytes(b"PK")
    base, manifest = project(tmp_path, "labels.whl", "joblib\n")
    with pytest.raises(ManifestError, match=r"assets \(labels\): 'labels.whl' is not a wheel file name"):
        fetched(base, manifest)
