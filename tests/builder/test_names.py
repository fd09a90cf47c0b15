"""Every name the builder validates is matched whole: a trailing newline (which a regex
``$`` accepts) is refused like any other stray character."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from builder.build import BuildOptions, _check_options, image_name
from builder.dockerfile import DockerfileContext, render_dockerfile
from builder.errors import AssetNotAllowed, ManifestError, RequirementsError, TemplateError
from builder.fetch import asset_filename, check_filename
from builder.manifest import parse_manifest
from builder.wheelhouse import _wheel_files

SHA = "a" * 64


def manifest(**overrides):
    data = {
        "name": "irisapp",
        "driverProgram": "driver",
        "targetRuntime": {"runtimeType": "Python"},
        "assets": [{"id": "driver", "url": "score.py", "sha256": SHA}],
        "models": [{"name": "iris", "url": "model.pkl", "id": "cc6a9e84", "sha256": SHA}],
        "modelIds": ["cc6a9e84"],
    }
    data.update(overrides)
    return data


def test_the_valid_manifest_parses():
    assert parse_manifest(manifest()).name == "irisapp"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "irisapp\n"}, "name"),
        ({"driverProgram": "driver\n", "assets": [{"id": "driver\n", "url": "score.py"}]}, "assets[0].id"),
        ({"driverProgram": "driver\n"}, "driverProgram"),
        ({"assets": [{"id": "driver", "url": "score.py", "sha256": SHA + "\n"}]}, "assets[0].sha256"),
        ({"models": [{"name": "iris\n", "url": "model.pkl", "id": "cc6a9e84"}]}, "models[0].name"),
        ({"models": [{"name": "iris", "url": "model.pkl", "id": "cc6a9e84\n"}], "modelIds": ["cc6a9e84\n"]},
         "models[0].id"),
        ({"models": [{"name": "iris", "url": "model.pkl", "id": "cc6a9e84", "sha256": SHA + "\n"}]},
         "models[0].sha256"),
    ],
)
def test_manifest_values_with_a_trailing_newline_are_refused(overrides, field):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest(**overrides))
    assert caught.value.field == field
    assert "is not allowed" in str(caught.value)


def test_image_names_with_a_trailing_newline_are_refused():
    assert image_name("IrisApp") == "irisapp"
    with pytest.raises(ManifestError, match="not a valid image name"):
        image_name("irisapp\n")


@pytest.mark.parametrize(
    "options, field",
    [
        (BuildOptions(tag="v1\n"), "--tag"),
        (BuildOptions(push="127.0.0.1:5000\n"), "--push"),
        (BuildOptions(push="127.0.0.1:5000/team\n"), "--push"),
    ],
)
def test_build_options_with_a_trailing_newline_are_refused(options, field):
    with pytest.raises(ManifestError) as caught:
        _check_options(options)
    assert caught.value.field == field


def test_build_options_without_the_newline_pass():
    _check_options(BuildOptions(tag="v1", push="127.0.0.1:5000/team"))


CONTEXT = DockerfileContext(moma_version="0.1.0", runtime_type="Python", base_image="python:3.11-slim",
                            uv_wheel="uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl", driver="score.py")


def test_image_references_with_a_trailing_newline_are_refused():
    with pytest.raises(TemplateError, match="not a valid image reference"):
        render_dockerfile(replace(CONTEXT, base_image="python:3.11-slim\n"))


def test_label_keys_with_a_trailing_newline_are_refused():
    with pytest.raises(TemplateError, match="not a valid label key"):
        render_dockerfile(replace(CONTEXT, labels=(("moma.team\n", "x"),)))


def test_file_names_with_a_trailing_newline_are_refused():
    with pytest.raises(AssetNotAllowed, match="not a usable file name"):
        check_filename("score.py\n")
    with pytest.raises(AssetNotAllowed, match="not a usable file name"):
        asset_filename("https://example.org/score.py%0A")


def test_wheel_file_names_with_a_newline_are_refused(tmp_path: Path):
    (tmp_path / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"")
    assert _wheel_files(tmp_path) == ("six-1.16.0-py2.py3-none-any.whl",)
    (tmp_path / "six-1.17.0-py2.py3-none-any\n.whl").write_bytes(b"")
    with pytest.raises(RequirementsError, match="unexpected file name"):
        _wheel_files(tmp_path)
