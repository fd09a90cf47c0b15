from pathlib import Path

import pytest

from builder.errors import RequirementsError
from builder.wheelhouse import LocalWheel, Wheelhouse, WheelSet, _key, _pip_failure

from .fixture_wheels import make_wheel


def test_key_ignores_order_but_not_content():
    assert _key(["a", "b"], "3.11") == _key(["b", "a"], "3.11")
    assert _key(["a"], "3.11") != _key(["a"], "3.12")
    assert _key(["a==1"], "3.11") != _key(["a==2"], "3.11")


def test_key_covers_binary_only_names_and_wheel_files_by_content():
    import hashlib
    import json

    plain = _key(["a"], "3.11")
    assert plain == hashlib.sha256(json.dumps({"python": "3.11", "requirements": ["a"]}, sort_keys=True)
                                   .encode()).hexdigest(), "earlier wheel sets keep their keys"
    assert _key(["a"], "3.11", binary_only=["a"]) != plain
    one = LocalWheel(Path("/x/w-1.0-py3-none-any.whl"), "1" * 64)
    elsewhere = LocalWheel(Path("/y/w-1.0-py3-none-any.whl"), "1" * 64)
    changed = LocalWheel(Path("/x/w-1.0-py3-none-any.whl"), "2" * 64)
    assert _key(["a"], "3.11", local_wheels=[one]) == _key(["a"], "3.11", local_wheels=[elsewhere])
    assert _key(["a"], "3.11", local_wheels=[one]) != _key(["a"], "3.11", local_wheels=[changed])


def test_conda_packages_are_resolved_as_wheels_only(tmp_path: Path):
    from builder.wheelhouse import _host_python, _Request

    wheel = LocalWheel(tmp_path / "w-1.0-py3-none-any.whl", "1" * 64)
    request = _Request(("numpy==1.11.*", "joblib"), _host_python(), ("numpy",), (wheel,), {})
    command = Wheelhouse(tmp_path)._wheel_command(request, tmp_path / "out")
    assert command[:3] == ["wheel", "--prefer-binary", "--only-binary=numpy"]
    assert command[-4:] == ["--", str(wheel.path), "numpy==1.11.*", "joblib"]
    other = Wheelhouse(tmp_path)._wheel_command(_Request(("joblib",), "3.12", (), (), {}), tmp_path / "out")
    assert other[:2] == ["download", "--only-binary=:all:"] and other[-2:] == ["--", "joblib"]


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
    with pytest.raises(RequirementsError) as caught:
        house.wheels_for(["moma-no-such-package-xyz==0.0.1"], "3.11", lambda line: None)
    assert str(caught.value) == (
        "moma-no-such-package-xyz==0.0.1: no distribution found: the package index has no package named "
        "'moma-no-such-package-xyz' (or only files of it for other Pythons and platforms than Python 3.11 on "
        "Linux x86_64)")
    assert [p.name for p in (tmp_path / "sets").iterdir()] == []


@pytest.mark.slow
def test_a_conda_pin_with_no_wheel_names_the_package_the_pin_and_the_newest_that_installs(tmp_path: Path):
    from packaging.version import Version

    with pytest.raises(RequirementsError) as caught:
        Wheelhouse(tmp_path).wheels_for(["numpy==1.11.*"], "3.11", lambda line: None, binary_only=["numpy"],
                                        origins={"numpy==1.11.*": "numpy=1.11"})
    message = str(caught.value)
    prefix = ("numpy==1.11.* (conda 'numpy=1.11'): no version of numpy that matches has a file for Python 3.11 "
              "on Linux x86_64; the newest that would install is ")
    assert message.startswith(prefix), message
    newest = message[len(prefix):].split(":")[0]
    assert Version(newest) >= Version("2.4.6") and not Version(newest).is_prerelease


@pytest.mark.slow
def test_a_package_with_only_source_archives_is_not_built_when_conda_names_it(tmp_path: Path):
    with pytest.raises(RequirementsError) as caught:
        Wheelhouse(tmp_path).wheels_for(["sklearn"], "3.11", lambda line: None, binary_only=["sklearn"])
    assert str(caught.value) == ("sklearn: the package index has 'sklearn', but no file of it for Python 3.11 "
                                 "on Linux x86_64")


@pytest.mark.slow
def test_wheel_files_are_part_of_the_set_and_their_dependencies_resolved(tmp_path: Path):
    import hashlib

    wheel = make_wheel(tmp_path, "iris-labels", "1.0", {"iris_labels/__init__.py": "NAMES = ['setosa']\n"},
                       requires=("six==1.16.0",))
    local = LocalWheel(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    lines: list[str] = []
    wheels = Wheelhouse(tmp_path / "house").wheels_for(["iris-labels==1.0"], "3.11", lines.append,
                                                        local_wheels=[local])
    assert wheels.wheels == ("iris_labels-1.0-py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl")
    assert "Python packages: resolving 1 requirements and 1 wheel files on the host" in lines


@pytest.mark.slow
def test_a_wheel_file_for_another_python_is_explained(tmp_path: Path):
    import hashlib

    wheel = make_wheel(tmp_path, "old-thing", "1.0", {"old_thing.py": ""}, tag="cp35-cp35m-linux_x86_64")
    local = LocalWheel(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    with pytest.raises(RequirementsError) as caught:
        Wheelhouse(tmp_path / "house").wheels_for([], "3.11", lambda line: None, local_wheels=[local])
    assert str(caught.value) == ("the wheel asset old_thing-1.0-cp35-cp35m-linux_x86_64.whl does not fit the "
                                 "image: it is not for Python 3.11 on Linux x86_64")


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
