"""Host-side wheelhouse: every Python package an image installs is resolved and
downloaded (or built) on the host, so ``docker build`` needs no network.

A wheel set is resolved once per distinct requirement list and kept under
``$MOMA_HOME/wheelhouse/sets/<key>``; later builds with the same requirements reuse it
without touching the network, which also pins what an unpinned requirement resolved to.
pip runs in the stripped :func:`~builder.environment.tool_environment`, with its cache
under ``$MOMA_HOME/wheelhouse/pip-cache`` unless the operator set ``PIP_CACHE_DIR``.
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
from typing import Callable, Sequence

from packaging.utils import parse_wheel_filename

from .errors import RequirementsError
from .processes import run_streaming

LineSink = Callable[[str], None]
INSTALLER = "pip==26.3"
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_COMPLETE = ".complete"


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

    def wheels_for(self, requirements: Sequence[str], python_version: str, log: LineSink) -> WheelSet:
        key = _key(requirements, python_version)
        target = self.root / "sets" / key
        if not (target / _COMPLETE).exists():
            self._resolve(requirements, python_version, target, log)
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

    def _resolve(self, requirements: Sequence[str], python_version: str, target: Path, log: LineSink) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".resolving-"))
        try:
            wheels = work / "wheels"
            log(f"Python packages: resolving {len(requirements)} requirements on the host")
            self._pip(self._wheel_command(requirements, wheels, python_version), log)
            (wheels / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements), encoding="utf-8")
            (wheels / _COMPLETE).write_text(json.dumps({"requirements": list(requirements)}), encoding="utf-8")
            try:
                os.rename(wheels, target)
            except OSError:
                if not (target / _COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _wheel_command(self, requirements: Sequence[str], wheels: Path, python_version: str) -> list[str]:
        """Requirements go on the command line, never in a file: pip expands ``${VAR}``
        in requirement files (and only there)."""
        host_version = f"{sys.version_info.major}.{sys.version_info.minor}"
        if python_version == host_version:
            return ["wheel", "--prefer-binary", "--wheel-dir", str(wheels), "--", *requirements]
        # Another interpreter in the image: only binary wheels can be chosen for it here.
        return ["download", "--only-binary=:all:", "--python-version", python_version,
                "--implementation", "cp", "--platform", "manylinux2014_x86_64",
                "--platform", "manylinux_2_28_x86_64", "--platform", "linux_x86_64",
                "--dest", str(wheels), "--", *requirements]

    def _pip(self, arguments: list[str], log: LineSink) -> None:
        subcommand, *options = arguments
        command = [self.python, "-m", "pip", subcommand, "--disable-pip-version-check", "--no-input",
                   "--progress-bar", "off", *options]
        code, output = run_streaming(command, log, hide=_pip_noise, indent="  ",
                                     defaults={"PIP_CACHE_DIR": str(self.root / "pip-cache")})
        if code != 0:
            raise RequirementsError(_pip_failure(output))


def _pip_noise(line: str) -> bool:
    return "is ignored: it is neither a file nor a directory" in line


def _key(requirements: Sequence[str], python_version: str) -> str:
    payload = json.dumps({"python": python_version, "requirements": sorted(requirements)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


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
