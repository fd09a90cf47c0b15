"""Host-side wheelhouse: every Python package an image installs is resolved and
downloaded (or built) on the host, so ``docker build`` needs no network.

A wheel set is resolved once per distinct requirement list and kept under
``$MOMA_HOME/wheelhouse/sets/<key>``; later builds with the same requirements reuse it
without touching the network, which also pins what an unpinned requirement resolved to.
pip runs in the stripped :func:`~builder.environment.tool_environment`, with its cache
under ``$MOMA_HOME/wheelhouse/pip-cache`` unless the operator set ``PIP_CACHE_DIR``.

Besides requirements, a resolution takes local wheel files (the manifest's ``.whl``
assets, installed as they are, their dependencies from the index) and names pip may take
only as wheels (the conda packages). When pip finds nothing for a requirement, the error
says whether the index has no such package or only no version that fits the image's
Python, and then the newest version that would install.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .errors import RequirementsError
from .processes import run_streaming

LineSink = Callable[[str], None]
INSTALLER = "pip==26.3"
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (?P<requirement>.+?)"
                         r"(?: \(from [^()]*\))? \(from versions: (?P<versions>[^()]*)\)")
_UNFIT_WHEEL = re.compile(r"(?P<wheel>\S+\.whl) is not a supported wheel on this platform")
_COMPLETE = ".complete"


@dataclass(frozen=True)
class LocalWheel:
    """A wheel file on this host, under its own wheel file name."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class WheelSet:
    directory: Path
    wheels: tuple[str, ...]
    key: str

    def pins(self) -> list[str]:
        """``name==version`` of every wheel, from the file names."""
        pins = []
        for wheel in self.wheels:
            name, version, _, _ = parse_wheel_filename(wheel)
            pins.append(f"{name}=={version}")
        return sorted(pins)


class Wheelhouse:
    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python

    def wheels_for(self, requirements: Sequence[str], python_version: str, log: LineSink, *,
                   binary_only: Sequence[str] = (), local_wheels: Sequence[LocalWheel] = (),
                   origins: Mapping[str, str] | None = None) -> WheelSet:
        """``origins`` maps a requirement to what its file said (a conda spec), for errors."""
        key = _key(requirements, python_version, binary_only, local_wheels)
        target = self.root / "sets" / key
        if not (target / _COMPLETE).exists():
            request = _Request(tuple(requirements), python_version, tuple(sorted(binary_only)), tuple(local_wheels),
                               dict(origins or {}))
            self._resolve(request, target, log)
        else:
            log(f"Python packages: reusing wheel set {key[:12]} ({len(requirements)} requirements)")
        return WheelSet(target, _wheel_files(target), key)

    def installer(self, log: LineSink) -> Path:
        """The pip wheel that installs the wheel set inside the image."""
        directory = self.root / "installer"
        found = sorted(directory.glob("pip-*.whl")) if directory.exists() else []
        if found:
            return found[-1]
        directory.mkdir(parents=True, exist_ok=True)
        log(f"fetching installer {INSTALLER}")
        self._pip(["download", "--no-deps", "--only-binary=:all:", "--dest", str(directory), INSTALLER], log)
        found = sorted(directory.glob("pip-*.whl"))
        if not found:
            raise RequirementsError(f"could not fetch {INSTALLER}")
        return found[-1]

    def _resolve(self, request: "_Request", target: Path, log: LineSink) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".resolving-"))
        try:
            wheels = work / "wheels"
            extra = f" and {len(request.local_wheels)} wheel files" if request.local_wheels else ""
            log(f"Python packages: resolving {len(request.requirements)} requirements{extra} on the host")
            code, output = self._run_pip(self._wheel_command(request, wheels), log)
            if code != 0:
                raise RequirementsError(self._explain_failure(output, request))
            (wheels / "requirements.txt").write_text("".join(f"{line}\n" for line in request.requirements),
                                                     encoding="utf-8")
            (wheels / _COMPLETE).write_text(json.dumps(request.description()), encoding="utf-8")
            try:
                os.rename(wheels, target)
            except OSError:
                if not (target / _COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _wheel_command(self, request: "_Request", wheels: Path) -> list[str]:
        """Requirements go on the command line, never in a file: pip expands ``${VAR}``
        in requirement files (and only there)."""
        packages = ["--", *(str(wheel.path) for wheel in request.local_wheels), *request.requirements]
        if request.python_version == _host_python():
            binary = [f"--only-binary={','.join(request.binary_only)}"] if request.binary_only else []
            return ["wheel", "--prefer-binary", *binary, "--wheel-dir", str(wheels), *packages]
        # Another interpreter in the image: only binary wheels can be chosen for it here.
        return ["download", "--only-binary=:all:", *_target_options(request.python_version),
                "--dest", str(wheels), *packages]

    def _pip(self, arguments: list[str], log: LineSink) -> None:
        code, output = self._run_pip(arguments, log)
        if code != 0:
            raise RequirementsError(_pip_failure(output))

    def _run_pip(self, arguments: list[str], log: LineSink) -> tuple[int, list[str]]:
        subcommand, *options = arguments
        progress = ["--progress-bar", "off"] if subcommand in ("download", "wheel") else []
        command = [self.python, "-m", "pip", subcommand, "--disable-pip-version-check", "--no-input", *progress,
                   *options]
        return run_streaming(command, log, hide=_pip_noise, indent="  ",
                             defaults={"PIP_CACHE_DIR": str(self.root / "pip-cache")})

    def _explain_failure(self, output: list[str], request: "_Request") -> str:
        """What pip's failure means for this request, in one message."""
        text = "\n".join(output)
        unfit = _UNFIT_WHEEL.search(text)
        if unfit:
            return (f"the wheel asset {Path(unfit['wheel']).name} does not fit the image: it is not for "
                    f"{_target(request)}")
        not_found = [match for line in output if (match := _NO_VERSION.search(line))]
        if not not_found:
            return _pip_failure(output)
        requirement, versions = not_found[0]["requirement"].strip(), not_found[0]["versions"].strip()
        origin = request.origins.get(requirement)
        shown = f"{requirement} (conda '{origin}')" if origin and origin != requirement else requirement
        name = _project(requirement)
        newest = _newest(versions.split(", ")) if versions != "none" else None
        if newest is not None:
            return (f"{shown}: no version of {name} that matches has a file for {_target(request)}; the newest "
                    f"that would install is {newest}: pin that one, or leave the version out")
        if not self._on_index(name):
            return (f"{shown}: no distribution found: the package index has no package named {name!r} (or only "
                    f"files of it for other Pythons and platforms than {_target(request)})")
        return f"{shown}: the package index has {name!r}, but no file of it for {_target(request)}"

    def _on_index(self, name: str) -> bool:
        """Whether the index has any version of the project that this host could install,
        source archives and pre-releases included (``pip index versions``)."""
        code, _ = self._run_pip(["index", "versions", "--pre", "--", name], lambda line: None)
        return code == 0


def _pip_noise(line: str) -> bool:
    return "is ignored: it is neither a file nor a directory" in line


@dataclass(frozen=True)
class _Request:
    requirements: tuple[str, ...]
    python_version: str
    binary_only: tuple[str, ...]
    local_wheels: tuple[LocalWheel, ...]
    origins: dict[str, str]

    def description(self) -> dict[str, object]:
        return {"requirements": list(self.requirements), "binaryOnly": list(self.binary_only),
                "wheelFiles": {wheel.path.name: wheel.sha256 for wheel in self.local_wheels}}


def _key(requirements: Sequence[str], python_version: str, binary_only: Sequence[str] = (),
         local_wheels: Sequence[LocalWheel] = ()) -> str:
    identity: dict[str, object] = {"python": python_version, "requirements": sorted(requirements)}
    if binary_only or local_wheels:  # absent otherwise, so earlier wheel sets keep their keys
        identity["binaryOnly"] = sorted(binary_only)
        identity["wheelFiles"] = sorted((wheel.path.name, wheel.sha256) for wheel in local_wheels)
    payload = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _target_options(python_version: str) -> list[str]:
    return ["--python-version", python_version, "--implementation", "cp", "--platform", "manylinux2014_x86_64",
            "--platform", "manylinux_2_28_x86_64", "--platform", "linux_x86_64"]


def _target(request: _Request) -> str:
    return f"Python {request.python_version} on Linux x86_64"


def _newest(versions: list[str]) -> str | None:
    """The newest final release, else the newest of any kind."""
    parsed = []
    for text in versions:
        try:
            parsed.append(Version(text))
        except InvalidVersion:
            continue
    finals = [version for version in parsed if not version.is_prerelease]
    chosen = max(finals or parsed, default=None)
    return str(chosen) if chosen is not None else None


def _project(requirement: str) -> str:
    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return requirement.split(";")[0].strip()


def _wheel_files(directory: Path) -> tuple[str, ...]:
    names = sorted(p.name for p in directory.glob("*.whl"))
    for name in names:
        if not _WHEEL_NAME.fullmatch(name):
            raise RequirementsError(f"unexpected file name in wheel set {directory}: {name!r}")
    return tuple(names)


def _pip_failure(output: list[str]) -> str:
    text = "\n".join(output)
    missing = _NO_MATCH.findall(text)
    if missing:
        return f"no distribution found on the package index for: {', '.join(dict.fromkeys(missing))}"
    if "ResolutionImpossible" in text or "conflict" in text.lower():
        tail = "\n".join(output[-15:])
        return f"the requirements conflict with each other or with the runtime's pins:\n{tail}"
    tail = "\n".join(output[-15:])
    return f"resolving Python packages failed:\n{tail}"
