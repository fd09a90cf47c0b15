"""Python dependencies of an image: a pip requirements file (and the ``pip:`` list of a
conda file, read the same way; the conda file itself is ``builder/conda.py``).

Only plain requirement specifiers are accepted. Option lines (``-r``, ``-e``,
``--index-url``, ``--find-links`` ...) are refused because they would let a manifest
redirect the host-side resolver to other indexes or local paths; a package from another
source comes as a wheel asset of the manifest instead. A ``$`` anywhere is refused too:
pip expands ``${VAR}`` from its environment in requirement files, shells and Dockerfiles
expand ``$VAR``, and no tenant text may pull the operator's environment into a build (a
literal ``$`` has no use in a requirement).

Files of 2017 projects carry the Azure ML SDK of that year and the index it came from;
both are left out with a warning (see ``builder/conda-to-pypi.yml``), not refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .conda_names import RUNTIME_PROVIDES, name_table
from .errors import RequirementsError
from .pythons import DEFAULT_PYTHON

__all__ = ["DEFAULT_PYTHON", "PythonDependencies", "UserRequirements", "parse_pip_requirements",
           "pip_dependencies", "refuse_dollar", "requirement_name"]

INDEX_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "--no-index", "--trusted-host")
WHEEL_ADVICE = ("a package from another source comes as a wheel: add the .whl file to the manifest as an asset "
                "(moma manifest create -d package.whl, or an 'assets' entry of a manifest file) and moma installs "
                "it into the image")
_FILE_NAME = re.compile(r".+\.(?:whl|zip|tar|tar\.gz|tgz|tar\.bz2|tar\.xz)", re.IGNORECASE)


@dataclass(frozen=True)
class PythonDependencies:
    python_version: str  # the minor version the image gets
    requirements: tuple[str, ...]
    python_requested: str = ""  # what the environment file asked for, as written; '' when nothing
    binary_only: tuple[str, ...] = ()  # names pip may take only as wheels: the conda packages
    notes: tuple[str, ...] = ()  # lines the build log must show: translations, what was left out
    origins: tuple[tuple[str, str], ...] = ()  # (requirement, the conda spec it was written as)

    def merged_with(self, other: "PythonDependencies") -> "PythonDependencies":
        return PythonDependencies(
            self.python_version, _dedupe(self.requirements + other.requirements), self.python_requested,
            _dedupe(self.binary_only + other.binary_only), _dedupe(self.notes + other.notes),
            tuple(dict.fromkeys(self.origins + other.origins)))


def parse_pip_requirements(text: str, source: str = "requirements.txt") -> tuple[str, ...]:
    """Normalised requirement strings, one per specifier, in file order; no option lines."""
    requirements: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{source} line {number}"
        if line.startswith("-"):
            raise RequirementsError(_option_refusal(line, where))
        requirements.append(_requirement(line, where))
    return _dedupe(tuple(requirements))


def pip_dependencies(text: str, source: str = "requirements.txt",
                     wheel_assets: frozenset[str] = frozenset()) -> PythonDependencies:
    """A user's requirements file: as :func:`parse_pip_requirements`, with the 2017 SDK and
    its index left out (and said so), and lines naming a wheel asset's file taken as that asset."""
    lines = UserRequirements(wheel_assets)
    for number, line in _logical_lines(text):
        lines.add(line, f"{source} line {number}")
    return PythonDependencies(DEFAULT_PYTHON, lines.kept(), notes=lines.notes(source))


def requirement_name(line: str) -> str:
    """The canonical project name of a requirement string (``Foo_Bar>=1`` -> ``foo-bar``)."""
    return canonicalize_name(Requirement(line).name)


@dataclass
class UserRequirements:
    """The lines of a user's requirement list, sorted into what installs and what is left out."""

    wheel_assets: frozenset[str] = frozenset()
    requirements: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # the 2017 SDK
    dropped_indexes: list[str] = field(default_factory=list)

    def add(self, line: str, where: str) -> None:
        if line.startswith("-"):
            if _is_retired_index_option(line):
                self.dropped_indexes.append(line)
                return
            raise RequirementsError(_option_refusal(line, where))
        if line in self.wheel_assets:
            return  # the asset is installed as it is
        requirement = _requirement(line, where)
        if name_table().is_2017_sdk(Requirement(requirement)):
            self.left_out.append(line)
        else:
            self.requirements.append(requirement)

    def kept(self) -> tuple[str, ...]:
        return _dedupe(tuple(self.requirements))

    def notes(self, source: str) -> tuple[str, ...]:
        notes = []
        if self.left_out:
            notes.append(f"WARNING: {source}: left out {', '.join(self.left_out)}: the 2017 Azure ML SDK, which "
                         f"no longer installs; the runtime provides what scoring used of it, {RUNTIME_PROVIDES}")
        if self.dropped_indexes:
            notes.append(f"WARNING: {source}: ignored {'; '.join(self.dropped_indexes)}: the 2017 Azure ML index "
                         "is gone and PyPI is where packages come from anyway")
        return tuple(notes)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines without comments, with backslash continuations joined, numbered from 1."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        line = line.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append((start, line))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def refuse_dollar(text: str, where: str) -> None:
    if "$" in text:
        raise RequirementsError(f"{where}: {text!r} contains '$': requirements are never expanded from "
                                "environment variables here; write the value itself")


def _requirement(text: str, where: str) -> str:
    refuse_dollar(text, where)
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(f"{where}: {text!r} is not a valid requirement: {exc}") from exc
    if requirement.url and not requirement.url.startswith("https://"):
        raise RequirementsError(f"{where}: direct references must be https:// URLs, got {requirement.url!r}")
    if requirement.name == text and _FILE_NAME.fullmatch(text):  # pip would look for that file in its directory
        raise RequirementsError(f"{where}: {text!r} names a package file, and no asset of the manifest is that "
                                f"file; {WHEEL_ADVICE}")
    return str(requirement)


def _option_refusal(line: str, where: str) -> str:
    option = line.split()[0].split("=", 1)[0]
    if option in INDEX_OPTIONS or option[:2] in ("-i", "-f"):  # '-ihttps://...' is '-i https://...' to pip
        return (f"{where}: {option!r}: images install only from the package index the moma server is "
                f"configured with; {WHEEL_ADVICE}")
    return (f"{where}: option lines such as {option!r} are not supported; list plain requirements "
            "(name, version specifiers, markers) only")


def _is_retired_index_option(line: str) -> bool:
    """``--index-url URL`` / ``--extra-index-url=URL`` / ``-i URL`` naming a retired 2017 index."""
    words = line.replace("=", " ", 1).split() if line.startswith("--") else line.split()
    return (len(words) == 2 and words[0] in ("-i", "--index-url", "--extra-index-url")
            and name_table().is_retired_index(words[1]))


def _dedupe(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
