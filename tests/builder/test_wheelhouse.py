from pathlib import Path

import pytest

from builder.errors import RequirementsError
from builder.wheelhouse import Wheelhouse, WheelSet, _key, _pip_failure


def test_key_ignores_order_but_not_content():
    assert _key(["a", "b"], "3.11") == _key(["b", "a"], "3.11")
    assert _key(["a"], "3.11") != _key(["a"], "3.12")
    assert _key(["a==1"], "3.11") != _key(["a==2"], "3.11")


def test_pins_use_canonical_names(tmp_path: Path):
    wheels = WheelSet(tmp_path, ("scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                                 "Flask-3.1.3-py3-none-any.whl"), "k")
    assert wheels.pins() == ["flask==3.1.3", "scikit-learn==1.9.1"]


@pytest.mark.parametrize(
    "output, expected",
    [
        (["ERROR: Could not find a version", "ERROR: No matching distribution found for nosuchpkg==1"],
         "no distribution found on the package index for: nosuchpkg==1"),
        (["x", "ERROR: ResolutionImpossible: ..."], "conflict"),
        (["something else broke"], "resolving Python packages failed:\nsomething else broke"),
    ],
)
def test_pip_failures_are_explained(output, expected):
    assert expected in _pip_failure(output)


@pytest.mark.slow
def test_an_unknown_package_is_named_and_nothing_is_kept(tmp_path: Path):
    house = Wheelhouse(tmp_path)
    with pytest.raises(RequirementsError, match="no distribution found on the package index for: moma-no-such-package-x"):
        house.wheels_for(["moma-no-such-package-xyz==0.0.1"], "3.11", lambda line: None)
    assert [p.name for p in (tmp_path / "sets").iterdir()] == []


@pytest.mark.slow
def test_a_wheel_set_is_resolved_once_then_reused(tmp_path: Path):
    house = Wheelhouse(tmp_path)
    lines: list[str] = []
    first = house.wheels_for(["six==1.16.0"], "3.11", lines.append)
    assert first.wheels == ("six-1.16.0-py2.py3-none-any.whl",)
    lines.clear()
    second = house.wheels_for(["six==1.16.0"], "3.11", lines.append)
    assert second == first
    assert lines == [f"Python packages: reusing wheel set {first.key[:12]} (1 requirements)"]
