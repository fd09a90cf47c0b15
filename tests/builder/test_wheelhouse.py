import sys
from pathlib import Path

import pytest

from builder.errors import RequirementsError
from builder.wheelhouse import LocalWheel, Wheelhouse, WheelSet, _key, _uv_failure

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


def stand_in_uv(directory: Path, exit_code: int = 3) -> Path:
    """An executable in uv's place that prints its arguments, its input and its environment."""
    script = directory / "uv"
    script.write_text("#!/bin/sh\nfor a in \"$@\"; do echo \"arg: $a\"; done\n"
                      "while read -r line; do echo \"in: $line\"; done\n"
                      f"env | sed 's/^/env: /'\nexit {exit_code}\n")
    script.chmod(0o755)
    return script


def test_conda_packages_are_resolved_as_wheels_only(tmp_path: Path):
    wheel = make_wheel(tmp_path, "w", "1.0", {"w.py": ""})
    lines: list[str] = []
    with pytest.raises(RequirementsError):
        Wheelhouse(tmp_path / "house", uv=str(stand_in_uv(tmp_path))).wheels_for(
            ["numpy==1.11.*", "joblib"], _host(), lines.append, binary_only=["numpy"],
            local_wheels=[LocalWheel(wheel, "1" * 64)])
    arguments = [line.strip()[5:] for line in lines if line.strip().startswith("arg: ")]
    assert arguments[:7] == ["--no-config", "--system-certs", "--color", "never", "--no-progress", "pip", "compile"]
    assert arguments[arguments.index("--only-binary") + 1] == "numpy" and arguments.count("--only-binary") == 1
    assert "--python" in arguments and "--python-platform" not in arguments
    assert [line.strip()[4:] for line in lines if line.strip().startswith("in: ")] == [
        "numpy==1.11.*", "joblib", str(wheel)], "requirements and wheel files on its input, one a line"


def test_another_python_gets_only_wheels_for_its_platform(tmp_path: Path):
    lines: list[str] = []
    with pytest.raises(RequirementsError):
        Wheelhouse(tmp_path / "house", uv=str(stand_in_uv(tmp_path))).wheels_for(["joblib"], "3.12", lines.append)
    arguments = " ".join(line.strip()[5:] for line in lines if line.strip().startswith("arg: "))
    assert "--python-version 3.12 --python-platform x86_64-manylinux_2_28 --only-binary :all:" in arguments


def _host() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"


def test_pins_use_canonical_names(tmp_path: Path):
    wheels = WheelSet(tmp_path, ("scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                                 "Flask-3.1.3-py3-none-any.whl"), "k")
    assert wheels.pins() == ["flask==3.1.3", "scikit-learn==1.9.1"]


@pytest.mark.parametrize(
    "output, expected",
    [
        (["error: No solution found when resolving dependencies",
          "  cause: Because you require six==1.16.0 and six==1.15.0, we can conclude that your requirements are "
          "unsatisfiable."],
         "the requirements conflict with each other or with the runtime's pins:\nerror: No solution"),
        (["something else broke"], "resolving Python packages failed:\nsomething else broke"),
    ],
)
def test_uv_failures_are_explained(output, expected):
    assert _uv_failure(output).startswith(expected)


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


@pytest.mark.slow
def test_a_package_with_only_a_source_archive_is_built_into_a_wheel_on_the_host(tmp_path: Path):
    lines: list[str] = []
    wheels = Wheelhouse(tmp_path).wheels_for(["docopt==0.6.2"], _host(), lines.append)
    assert wheels.wheels == ("docopt-0.6.2-py2.py3-none-any.whl",)
    assert "  building a wheel of docopt-0.6.2.tar.gz" in lines
    assert (wheels.directory / "pylock.toml").read_text().count("[[packages]]") == 1, "the lock is kept"


SECRET = "s3cr3t-operator-value-7d1f"


@pytest.mark.slow
@pytest.mark.parametrize(
    "requirement",
    [
        "six @ https://127.0.0.1:9/${UV_TEST_SECRET}/six-1.16.0-py2.py3-none-any.whl",
        'six==1.16.0; python_version == "${UV_TEST_SECRET}"',
        "six==${UV_TEST_SECRET}",
        "six @ https://127.0.0.1:9/$UV_TEST_SECRET/six-1.16.0-py2.py3-none-any.whl",
        "six @ https://127.0.0.1:9/${MOMA_TEST_SECRET}/six-1.16.0-py2.py3-none-any.whl",
    ],
    ids=["direct-reference", "marker", "version", "bare-variable", "server-variable"],
)
def test_the_real_resolver_never_expands_the_environment(requirement: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Past the parser (which refuses '$'), uv itself must not expand a variable: not the
    server's (stripped from its environment), and not the operator's uv settings, which it
    gets (an index URL with a token in it, say) and would expand in a requirement even on
    its command line (next test)."""
    monkeypatch.setenv("MOMA_TEST_SECRET", SECRET)
    monkeypatch.setenv("UV_TEST_SECRET", SECRET)
    lines: list[str] = []
    try:
        Wheelhouse(tmp_path).wheels_for([requirement], "3.11", lines.append)
    except RequirementsError as exc:
        lines.append(str(exc))
    assert lines, "uv said nothing"
    assert not [line for line in lines if SECRET in line]


@pytest.mark.slow
def test_uv_expands_the_environment_in_requirements_on_its_command_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """Why no '$' may reach uv in any form: a direct reference given as an argument is
    fetched from the URL with the variable's value in it."""
    import subprocess

    from builder.uv_tool import uv_binary

    monkeypatch.setenv("MOMA_TEST_SECRET", SECRET)
    result = subprocess.run(
        [uv_binary(), "--no-config", "pip", "install", "--dry-run", "--python", sys.executable, "--cache-dir",
         str(tmp_path / "cache"), "six @ file:///nonexistent/${MOMA_TEST_SECRET}/six-1.16.0-py2.py3-none-any.whl"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and f"/nonexistent/{SECRET}/six" in result.stderr, result.stderr


def test_host_tools_get_only_the_allowed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The wheelhouse runs uv with the tool environment: a stand-in that prints it."""
    monkeypatch.setenv("MOMA_TEST_SECRET", SECRET)
    monkeypatch.setenv("MOMA_DATABASE_URL", f"postgresql://moma:{SECRET}@db/moma")
    monkeypatch.setenv("UV_INDEX_URL", "https://index.example.org/simple")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example.org/simple")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    lines: list[str] = []
    with pytest.raises(RequirementsError):
        Wheelhouse(tmp_path / "house", uv=str(stand_in_uv(tmp_path))).wheels_for(["six==1.16.0"], "3.11",
                                                                                 lines.append)
    environment = dict(line.strip()[5:].split("=", 1) for line in lines if line.strip().startswith("env: "))
    assert not [line for line in lines if SECRET in line]
    assert environment["UV_INDEX_URL"] == "https://index.example.org/simple"
    assert environment["UV_CACHE_DIR"] == str(tmp_path / "house" / "uv-cache")
    assert environment["HTTPS_PROXY"] == "http://proxy.example.org:3128"
    assert environment["PATH"]
    assert environment["HOME"] != str(Path.home()) and not Path(environment["HOME"]).exists()
    assert "MOMA_DATABASE_URL" not in environment and "MOMA_TEST_SECRET" not in environment
    assert "PIP_INDEX_URL" not in environment, "pip is not run any more: its settings stay behind"


def test_the_operators_uv_config_is_handed_over_and_nothing_else_is_discovered(tmp_path: Path):
    from builder.environment import tool_environment

    home = tmp_path / "home"
    (home / ".config" / "uv").mkdir(parents=True)
    (home / ".config" / "uv" / "uv.toml").write_text('index-url = "https://index.example.org/simple"\n')
    with tool_environment({"HOME": str(home), "PATH": "/usr/bin"}) as environment:
        assert environment["UV_CONFIG_FILE"] == str(home / ".config" / "uv" / "uv.toml")
    with tool_environment({"HOME": str(home), "UV_CONFIG_FILE": "/srv/uv.toml"}) as environment:
        assert environment["UV_CONFIG_FILE"] == "/srv/uv.toml"
