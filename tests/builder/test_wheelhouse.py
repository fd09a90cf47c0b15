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


SECRET = "s3cr3t-operator-value-7d1f"


@pytest.mark.slow
@pytest.mark.parametrize(
    "requirement",
    [
        "six @ https://127.0.0.1:9/${MOMA_TEST_SECRET}/six-1.16.0-py2.py3-none-any.whl",
        'six==1.16.0; python_version == "${MOMA_TEST_SECRET}"',
        "six==${MOMA_TEST_SECRET}",
    ],
    ids=["direct-reference", "marker", "version"],
)
def test_the_real_resolver_never_expands_the_environment(requirement: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Past the parser (which refuses '$'), pip itself must not see the server's environment
    nor read the requirements from a file it would expand."""
    monkeypatch.setenv("MOMA_TEST_SECRET", SECRET)
    lines: list[str] = []
    try:
        Wheelhouse(tmp_path).wheels_for([requirement], "3.11", lines.append)
    except RequirementsError as exc:
        lines.append(str(exc))
    assert lines, "pip said nothing"
    assert not [line for line in lines if SECRET in line]


def test_host_tools_get_only_the_allowed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The wheelhouse runs its python with the tool environment: a stand-in that prints it."""
    monkeypatch.setenv("MOMA_TEST_SECRET", SECRET)
    monkeypatch.setenv("MOMA_DATABASE_URL", f"postgresql://moma:{SECRET}@db/moma")
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.example.org/simple")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    printer = tmp_path / "python"
    printer.write_text("#!/bin/sh\nenv\nexit 3\n")
    printer.chmod(0o755)
    lines: list[str] = []
    with pytest.raises(RequirementsError):
        Wheelhouse(tmp_path / "house", python=str(printer)).wheels_for(["six==1.16.0"], "3.11", lines.append)
    environment = dict(line.strip().split("=", 1) for line in lines if "=" in line and not line.startswith("Python"))
    assert not [line for line in lines if SECRET in line]
    assert environment["PIP_INDEX_URL"] == "https://index.example.org/simple"
    assert environment["HTTPS_PROXY"] == "http://proxy.example.org:3128"
    assert environment["PATH"]
    assert environment["HOME"] != str(Path.home()) and not Path(environment["HOME"]).exists()
    assert "MOMA_DATABASE_URL" not in environment and "MOMA_TEST_SECRET" not in environment
