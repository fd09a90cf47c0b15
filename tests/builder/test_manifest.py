import json
from pathlib import Path

import pytest

from builder.errors import ManifestError
from builder.manifest import load_manifest, parse_manifest


def manifest(**overrides):
    data = {
        "name": "irisapp",
        "driverProgram": "driver",
        "modelType": "Registered",
        "webserviceType": "Realtime",
        "targetRuntime": {"runtimeType": "Python", "properties": {"pipRequirements": "requirements.txt"}},
        "assets": [
            {"id": "driver", "url": "score.py", "mimeType": "application/x-python"},
            {"id": "0c8c9995", "url": "deps.tar.gz", "mimeType": "application/octet-stream", "unpack": True},
        ],
        "models": [{"name": "iris", "url": "model.pkl", "version": 3, "id": "cc6a9e840b08415a9e0b3e29c5aeb17c"}],
        "modelIds": ["cc6a9e840b08415a9e0b3e29c5aeb17c"],
    }
    data.update(overrides)
    return data


def test_the_original_cli_shape_parses():
    spec = parse_manifest(manifest())
    assert spec.name == "irisapp"
    assert spec.driver.url == "score.py"
    assert spec.pip_requirements == "requirements.txt"
    assert spec.conda_env_file is None
    assert [a.id for a in spec.assets] == ["driver", "0c8c9995"]
    assert spec.assets[1].unpack is True
    assert spec.models[0].version == 3


def test_yaml_file_sets_base_dir(tmp_path: Path):
    path = tmp_path / "m.yml"
    path.write_text("name: a\ndriverProgram: d\ntargetRuntime: {runtimeType: Python}\nassets: [{id: d, url: s.py}]\n")
    spec = load_manifest(path)
    assert spec.base_dir == tmp_path.resolve()
    assert spec.models == ()


def test_json_file(tmp_path: Path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest()))
    assert load_manifest(path).name == "irisapp"


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"driverProgram": "score.py"}, "driverProgram", "is not the id of an asset"),
        ({"name": "bad name"}, "name", "is not allowed"),
        ({"name": "x" * 33}, "name", "is not allowed"),
        ({"name": "-leading"}, "name", "is not allowed"),
        ({"name": "a$(touch p)"}, "name", "is not allowed"),
        ({"targetRuntime": {"runtimeType": "R"}}, "targetRuntime.runtimeType", "is not one of"),
        ({"targetRuntime": {"runtimeType": "Python", "properties": {"dockerfile": "x"}}},
         "targetRuntime.properties", "allowed: condaEnvFile, pipRequirements"),
        ({"assets": []}, "assets", "should be non-empty"),
        ({"assets": [{"id": "driver"}]}, "assets[0]", "'url' is a required property"),
        ({"assets": [{"id": "driver", "url": "a.py"}, {"id": "driver", "url": "b.py"}]}, "assets[1]",
         "duplicate asset id"),
        ({"assets": [{"id": "driver", "url": "a.py", "unpack": True}]}, "driverProgram", "single file"),
        ({"assets": [{"id": "driver", "url": "a.py", "sha256": "abc"}]}, "assets[0].sha256", "is not allowed"),
        ({"modelIds": ["ffff"]}, "modelIds", "no model record for ffff"),
        ({"models": [{"name": "iris", "url": "a"}, {"name": "iris", "url": "b", "version": 2}], "modelIds": []},
         "models[1]", "listed twice"),
        ({"extra": 1} | {"assets": [{"id": "driver", "url": "a", "path": "/etc"}]}, "assets[0]", "allowed:"),
    ],
)
def test_bad_manifests_name_the_field(overrides, field, fragment):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest(**overrides))
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_not_an_object():
    with pytest.raises(ManifestError, match="must be a JSON/YAML object"):
        parse_manifest(["a"])


def test_unreadable_and_invalid_files(tmp_path: Path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="neither valid JSON nor YAML"):
        load_manifest(bad)
