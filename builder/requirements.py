"""Python dependencies of an image: a pip requirements file and a conda environment file.

Only plain requirement specifiers are accepted. Option lines (``-r``, ``-e``,
``--index-url``, ``--find-links`` ...) are refused because they would let a manifest
redirect the host-side resolver to other indexes or local paths. A ``$`` anywhere is
refused too: pip expands ``${VAR}`` from its environment in requirement files, shells
and Dockerfiles expand ``$VAR``, and no tenant text may pull the operator's environment
into a build (a literal ``$`` has no use in a requirement). From a conda file we
take the Python version and the ``pip:`` list; packages conda itself would install are
refused by name, since images install from PyPI only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from .errors import RequirementsError

DEFAULT_PYTHON = "3.11"


@dataclass(frozen=True)
class PythonDependencies:
    python_version: str
    requirements: tuple[str, ...]

    def merged_with(self, other: "PythonDependencies") -> "PythonDependencies":
        return PythonDependencies(self.python_version, _dedupe(self.requirements + other.requirements))


def parse_pip_requirements(text: str, source: str = "requirements.txt") -> tuple[str, ...]:
    """Normalised requirement strings, one per specifier, in file order."""
    requirements: list[str] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            raise RequirementsError(
                f"{source} line {number}: option lines such as {line.split()[0]!r} are not supported; "
                "list plain requirements (name, version specifiers, markers) only"
            )
        requirements.append(_requirement(line, f"{source} line {number}"))
    return _dedupe(tuple(requirements))


def requirement_name(line: str) -> str:
    """The canonical project name of a requirement string (``Foo_Bar>=1`` -> ``foo-bar``)."""
    return canonicalize_name(Requirement(line).name)


def parse_conda_env(text: str, source: str = "conda.yml") -> PythonDependencies:
    """The Python version and pip requirements of a conda environment file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RequirementsError(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RequirementsError(f"{source}: a conda environment file is a mapping with 'dependencies'")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise RequirementsError(f"{source}: 'dependencies' must be a list")

    python_version = DEFAULT_PYTHON
    pip_requirements: list[str] = []
    conda_only: list[str] = []
    for index, entry in enumerate(dependencies):
        where = f"{source} dependencies[{index}]"
        if isinstance(entry, dict):
            pip_requirements.extend(_pip_section(entry, where))
            continue
        if not isinstance(entry, (str, int, float)):
            raise RequirementsError(f"{where}: expected a package spec or a 'pip:' list")
        name, version = _conda_spec(str(entry))
        if name == "python":
            python_version = _python_minor(version, where)
        elif name != "pip":
            conda_only.append(str(entry))
    if conda_only:
        raise RequirementsError(
            f"{source}: conda packages are not supported, images install from PyPI only: "
            f"{', '.join(conda_only)}. Move them under 'pip:' with their PyPI names "
            "(for example 'scikit-learn==1.5.2' instead of 'scikit-learn=1.5.2')."
        )
    return PythonDependencies(python_version, _dedupe(tuple(pip_requirements)))


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


def _requirement(text: str, where: str) -> str:
    if "$" in text:
        raise RequirementsError(f"{where}: {text!r} contains '$': requirements are never expanded from "
                                "environment variables here; write the value itself")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(f"{where}: {text!r} is not a valid requirement: {exc}") from exc
    if requirement.url and not requirement.url.startswith("https://"):
        raise RequirementsError(f"{where}: direct references must be https:// URLs, got {requirement.url!r}")
    return str(requirement)


def _pip_section(entry: dict[str, Any], where: str) -> list[str]:
    if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
        raise RequirementsError(f"{where}: only a 'pip:' list may appear as a mapping")
    requirements = []
    for index, item in enumerate(entry["pip"]):
        line = str(item).strip()
        if line.startswith("-"):
            raise RequirementsError(f"{where}.pip[{index}]: option lines such as {line.split()[0]!r} are not supported")
        requirements.append(_requirement(line, f"{where}.pip[{index}]"))
    return requirements


def _conda_spec(spec: str) -> tuple[str, str]:
    """Split ``name=1.2``, ``name==1.2``, ``name>=1.2``, ``name 1.2`` and ``channel::name``."""
    spec = spec.strip().split("::")[-1]
    for index, char in enumerate(spec):
        if char in "=<>!~ ":
            return spec[:index].strip().lower(), spec[index:].strip()
    return spec.lower(), ""


def _python_minor(version: str, where: str) -> str:
    """``3.6`` / ``=3.6`` / ``3.6.*`` pin a minor version; a range keeps the default if it fits."""
    version = version.strip()
    if not version:
        return DEFAULT_PYTHON
    if version[0] in "<>!~":
        try:
            if SpecifierSet(version.replace(" ", "")).contains(f"{DEFAULT_PYTHON}.0"):
                return DEFAULT_PYTHON
        except InvalidSpecifier as exc:
            raise RequirementsError(f"{where}: cannot read a Python version from 'python{version}'") from exc
        raise RequirementsError(f"{where}: 'python{version}' excludes Python {DEFAULT_PYTHON}; pin a minor version")
    digits = version.lstrip("=").split(".")
    if len(digits) < 2 or not digits[0].isdigit() or not digits[1].rstrip("*").isdigit():
        raise RequirementsError(f"{where}: cannot read a Python version from 'python={version}'")
    return f"{digits[0]}.{digits[1].rstrip('*')}"


def _dedupe(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
