"""Host-side wheelhouse: every Python package an image installs is resolved and
downloaded (or built) on the host, so ``docker build`` needs no network.

A wheel set is resolved once per distinct requirement list and kept under
``$MOMA_HOME/wheelhouse/sets/<key>``, with uv's lock of it (``pylock.toml``); later
builds with the same requirements reuse it without touching the network, which also pins
what an unpinned requirement resolved to.

uv resolves (``uv pip compile`` to a PEP 751 lock, for the image's Python and platform);
the locked files are then fetched, each checked against the sha256 of the lock
(:mod:`builder.locked_files`, :mod:`builder.fetch`), and a package that has only a source
archive is built into a wheel by ``uv build`` (only for the host's own Python:
for another one only wheels can be chosen). See :mod:`builder.uv_tool` for how uv runs.

Besides requirements, a resolution takes local wheel files (the manifest's ``.whl``
assets, installed as they are, their dependencies from the index) and names that may be
taken only as wheels (the conda packages). When nothing fits a requirement, the error
says whether the index has no such package or only no version that fits the image's
Python, and then the newest version that would install.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from .errors import RequirementsError
from .fetch import FetchPolicy, fetch
from .locked_files import LockedFile, locked_files
from .uv_tool import UvTool, uv_version

LineSink = Callable[[str], None]
OTHER_PLATFORM = "x86_64-manylinux_2_28"  # uv's name for what another Python's wheels may need
_OTHER_PLATFORM_TAGS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)), "manylinux2014_x86_64",
                        "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_NOT_FOUND = re.compile(r"Because (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry")
_NO_FILE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:[<>=!~][^ ]*)? ha(?:s|ve) no (?:usable wheels|wheels "
                      r"with a matching|source distribution)")
_COMPLETE = ".complete"
LOCK_FILE = "pylock.toml"
# The lock's files are on the index uv was configured with, or are direct references uv
# fetched itself to resolve them: the address checks of assets add nothing here, and a
# name lookup per file costs time. file:// URLs come from the operator's find-links.
LOCKED_FILES = FetchPolicy(allow_link_local=True, allowed_roots=(Path("/"),))


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


@dataclass(frozen=True)
class _Target:
    """The Python an image gets, as uv options and as wheel tags in order of preference."""

    python_version: str
    options: tuple[str, ...]
    tags: tuple[Tag, ...]
    host: bool

    def description(self) -> str:
        return f"Python {self.python_version} on Linux x86_64"


class Wheelhouse:
    def __init__(self, root: Path, python: str = sys.executable, uv: str | None = None) -> None:
        """``python`` is the host's interpreter (the one moma runs on), ``uv`` the uv
        executable (default: the one installed with moma)."""
        self.root = root
        self.python = python
        self._uv_binary = uv
        self._uv: UvTool | None = None

    @property
    def uv(self) -> UvTool:
        if self._uv is None:
            self._uv = UvTool(self.root / "uv-cache", self._uv_binary)
        return self._uv

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
        """The uv wheel (the version the builder runs) that installs the wheel set inside the image."""
        version = uv_version()
        directory = self.root / "installer"
        found = sorted(directory.glob(f"uv-{version}-*.whl")) if directory.exists() else []
        if found:
            return found[-1]
        log(f"fetching installer uv=={version}")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".fetching-") as work:
            target = _target(_host_python())  # any Python's: uv's wheel is for every one
            lock = Path(work) / LOCK_FILE
            code, output = self._compile([f"uv=={version}"], target, (":all:",), lock, log)
            if code != 0:
                raise RequirementsError(_uv_failure(output))
            (item,) = locked_files(lock.read_text(encoding="utf-8"), target.tags)
            with _index_session() as session:
                self._fetch(item, directory, session)
        return self.installer(log)

    def _resolve(self, request: "_Request", target_dir: Path, log: LineSink) -> None:
        target_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target_dir.parent, prefix=".resolving-"))
        try:
            wheels = work / "wheels"
            wheels.mkdir()
            extra = f" and {len(request.local_wheels)} wheel files" if request.local_wheels else ""
            log(f"Python packages: resolving {len(request.requirements)} requirements{extra} on the host")
            target = _target(request.python_version, self.python if request.python_version == _host_python() else None)
            for wheel in request.local_wheels:
                _check_fits(wheel.path.name, target)
            lock = wheels / LOCK_FILE
            binary = request.binary_only if target.host else (":all:",)
            code, output = self._compile([*request.requirements, *(str(w.path) for w in request.local_wheels)],
                                         target, binary, lock, log)
            if code != 0:
                raise RequirementsError(self._explain_failure(output, request, target))
            self._fetch_locked(locked_files(lock.read_text(encoding="utf-8"), target.tags), wheels, work, log)
            (wheels / "requirements.txt").write_text("".join(f"{line}\n" for line in request.requirements),
                                                     encoding="utf-8")
            (wheels / _COMPLETE).write_text(json.dumps(request.description()), encoding="utf-8")
            try:
                os.rename(wheels, target_dir)
            except OSError:
                if not (target_dir / _COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _compile(self, lines: Sequence[str], target: _Target, binary_only: Sequence[str], lock: Path,
                 log: LineSink) -> tuple[int, list[str]]:
        """``uv pip compile`` of ``lines`` (read from its input) into a PEP 751 lock."""
        binary = [option for name in binary_only for option in ("--only-binary", name)]
        return self.uv.run(["pip", "compile", "-", "--format", "pylock.toml", "--output-file", str(lock),
                            "--no-header", "--quiet", *target.options, *binary], log, input_lines=lines)

    def _fetch_locked(self, files: list[LockedFile], wheels: Path, work: Path, log: LineSink) -> None:
        """Every locked file into ``wheels``, one after the other over one kept-alive
        connection (faster than opening many, and one name lookup); source archives are
        built into wheels afterwards."""
        sources = work / "sources"
        sources.mkdir()
        log(f"  fetching {len(files)} files")
        with _index_session() as session:
            for item in files:
                self._fetch(item, wheels if item.is_wheel else sources, session)
        for source in sorted(sources.iterdir()):
            log(f"  building a wheel of {source.name}")
            code, output = self.uv.run(["build", "--wheel", "--python", self.python, "--out-dir", str(wheels),
                                        str(source)], log)
            if code != 0:
                raise RequirementsError(f"building a wheel of {source.name} failed:\n" + "\n".join(output[-15:]))

    def _fetch(self, item: LockedFile, directory: Path, session: requests.Session) -> None:
        destination = directory / item.filename
        if item.path is not None:
            shutil.copyfile(item.path, destination)
            return
        assert item.url is not None
        fetch(item.url, destination, policy=LOCKED_FILES, sha256=item.sha256, session=session)

    def _explain_failure(self, output: list[str], request: "_Request", target: _Target) -> str:
        """What uv's failure means for this request, in one message."""
        text = "\n".join(output)
        missing = _NOT_FOUND.search(text)
        if missing:
            name = canonicalize_name(missing["name"])
            return (f"{_shown(request, name)}: no distribution found: the package index has no package named "
                    f"{name!r} (or only files of it for other Pythons and platforms than {target.description()})")
        unfit = _NO_FILE.search(text)
        if not unfit:
            return _uv_failure(output)
        name = canonicalize_name(unfit["name"])
        newest = self._newest_installable(name, request, target)
        if newest is not None:
            return (f"{_shown(request, name)}: no version of {name} that matches has a file for "
                    f"{target.description()}; the newest that would install is {newest}: pin that one, or leave "
                    "the version out")
        return f"{_shown(request, name)}: the package index has {name!r}, but no file of it for {target.description()}"

    def _newest_installable(self, name: str, request: "_Request", target: _Target) -> str | None:
        """The version of ``name`` that would install alone, on the same terms."""
        binary = ((name,) if name in {canonicalize_name(n) for n in request.binary_only} else ()) \
            if target.host else (":all:",)
        with tempfile.TemporaryDirectory(prefix="moma-newest-") as work:
            lock = Path(work) / LOCK_FILE
            code, _ = self._compile([name], target, binary, lock, lambda line: None)
            if code != 0:
                return None
            versions = [item.package.split("==", 1)[1] for item in locked_files(lock.read_text(), target.tags)
                        if canonicalize_name(item.package.split("==", 1)[0]) == name]
        return versions[0] if versions else None


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


def _index_session() -> requests.Session:
    """A session that trusts the platform's certificate store, as uv does (``--system-certs``)
    and pip did: a package index behind the operator's own CA works for both.
    ``REQUESTS_CA_BUNDLE``, when the operator set it, still wins."""
    session = requests.Session()
    system_bundle = ssl.get_default_verify_paths().cafile
    if system_bundle is not None:
        session.verify = system_bundle
    return session


def _host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _target(python_version: str, host_python: str | None = None) -> _Target:
    """The host's own interpreter when it is the image's Python (``host_python``), so
    its tags are the image's and source archives can be built; else only wheels for
    Linux x86_64 that Python can take."""
    if host_python is not None:
        return _Target(python_version, ("--python", host_python), tuple(sys_tags()), True)
    version = tuple(int(part) for part in python_version.split("."))
    interpreter = f"cp{version[0]}{version[1]}"
    tags = (*cpython_tags(version, platforms=_OTHER_PLATFORM_TAGS),
            *compatible_tags(version, interpreter, platforms=_OTHER_PLATFORM_TAGS))
    return _Target(python_version, ("--python-version", python_version, "--python-platform", OTHER_PLATFORM), tags,
                   False)


def _check_fits(wheel: str, target: _Target) -> None:
    _, _, _, tags = parse_wheel_filename(wheel)
    if not set(tags) & set(target.tags):
        raise RequirementsError(f"the wheel asset {wheel} does not fit the image: it is not for "
                                f"{target.description()}")


def _shown(request: _Request, name: str) -> str:
    """The requirement naming ``name`` as the request has it, with the conda spec it came from."""
    for requirement in request.requirements:
        if _project(requirement) == name:
            origin = request.origins.get(requirement)
            return f"{requirement} (conda '{origin}')" if origin and origin != requirement else requirement
    return name


def _project(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return canonicalize_name(requirement.split(";")[0].strip())


def _wheel_files(directory: Path) -> tuple[str, ...]:
    names = sorted(p.name for p in directory.glob("*.whl"))
    for name in names:
        if not _WHEEL_NAME.fullmatch(name):
            raise RequirementsError(f"unexpected file name in wheel set {directory}: {name!r}")
    return tuple(names)


def _uv_failure(output: list[str]) -> str:
    tail = "\n".join(output[-15:])
    if "requirements are unsatisfiable" in "\n".join(output):
        return f"the requirements conflict with each other or with the runtime's pins:\n{tail}"
    return f"resolving Python packages failed:\n{tail}"
