"""A conda environment file (``condaEnvFile``) read as what a moma image installs from PyPI.

- ``python``: the image's Python (:mod:`builder.pythons`; 3.5 / 3.6 build on 3.11).
- conda packages: installed from PyPI under their PyPI name (``builder/conda-to-pypi.yml``)
  with conda's version syntax read as PyPI's (:mod:`builder.conda_specs`), as wheels only
  (a conda package is binary: pip never builds one from source here). Packages with no
  PyPI counterpart (``mkl``, ``cudatoolkit``...) are refused, all named in one error.
- the ``pip:`` list: as a requirements file (:class:`builder.requirements.UserRequirements`).
- the 2017 Azure ML SDK, wherever it appears, is left out with a warning.
- channels given as URLs or paths (a private package source) are refused; named channels
  (``defaults``, ``conda-forge``...) say nothing to PyPI and are ignored.
"""

from __future__ import annotations

from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conda_names import TABLE_LOCATION, name_table
from .conda_specs import CondaSpec, choose_alternative, is_public_channel, parse_conda_spec
from .errors import RequirementsError
from .pythons import DEFAULT_PYTHON, PythonChoice, choose_python
from .requirements import WHEEL_ADVICE, PythonDependencies, UserRequirements, refuse_dollar


def parse_conda_env(text: str, source: str = "conda.yml",
                    wheel_assets: frozenset[str] = frozenset()) -> PythonDependencies:
    """The Python version and the PyPI requirements of a conda environment file."""
    dependencies = _dependencies(_load(text, source), source)
    _check_channels(dependencies.get("channels"), source)
    python = PythonChoice(DEFAULT_PYTHON)
    conda: list[CondaSpec] = []
    user = UserRequirements(wheel_assets)
    for index, entry in enumerate(dependencies["dependencies"]):
        where = f"{source} dependencies[{index}]"
        if isinstance(entry, dict):
            _pip_section(entry, where, user)
            continue
        if not isinstance(entry, (str, int, float)):
            raise RequirementsError(f"{where}: expected a package spec or a 'pip:' list")
        refuse_dollar(str(entry), where)
        spec = parse_conda_spec(str(entry), where)
        if spec.channel and not is_public_channel(spec.channel):
            raise RequirementsError(_private_channel(spec.channel, where))
        if spec.name == "python":
            python = choose_python(spec.alternatives, spec.requested_version, where)
        elif spec.name != "pip":
            conda.append(spec)
    translated = _translate(conda, user, source)
    moved = python.note(source)
    chosen = PythonDependencies(python.used, (), python.requested, notes=(moved,) if moved else ())
    pip_list = PythonDependencies(python.used, user.kept(), notes=user.notes(source))
    return chosen.merged_with(translated).merged_with(pip_list)


def _load(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RequirementsError(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RequirementsError(f"{source}: a conda environment file is a mapping with 'dependencies'")
    return data


def _dependencies(data: dict[str, Any], source: str) -> dict[str, Any]:
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise RequirementsError(f"{source}: 'dependencies' must be a list")
    return {**data, "dependencies": dependencies}


def _check_channels(channels: Any, source: str) -> None:
    if channels is None:
        return
    if not isinstance(channels, list):
        raise RequirementsError(f"{source}: 'channels' must be a list")
    for index, channel in enumerate(channels):
        if not is_public_channel(str(channel)):
            raise RequirementsError(_private_channel(str(channel), f"{source} channels[{index}]"))


def _private_channel(channel: str, where: str) -> str:
    return (f"{where}: channel {channel!r} is a URL or a path, a private package source; images install from "
            f"PyPI only (public channels may be named by name, as 'conda-forge'); {WHEEL_ADVICE}")


def _pip_section(entry: dict[str, Any], where: str, user: UserRequirements) -> None:
    if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
        raise RequirementsError(f"{where}: only a 'pip:' list may appear as a mapping")
    for index, item in enumerate(entry["pip"]):
        user.add(str(item).strip(), f"{where}.pip[{index}]")


def _translate(conda: list[CondaSpec], user: UserRequirements, source: str) -> PythonDependencies:
    """The conda packages as PyPI requirements, binary only; the SDK among them joins the
    pip list's in ``user.left_out``."""
    table = name_table()
    requirements: list[str] = []
    origins: list[tuple[str, str]] = []
    notes: list[str] = []
    no_pypi: list[str] = []
    for spec in conda:
        pypi_name = table.pypi_name(spec.name)
        if pypi_name is None:
            no_pypi.append(spec.text)
            continue
        requirement = f"{pypi_name}{choose_alternative(spec)}"
        if table.is_2017_sdk(Requirement(requirement)):
            user.left_out.append(spec.text)
            continue
        requirements.append(requirement)
        origins.append((requirement, spec.text))
        if len(spec.alternatives) > 1:
            notes.append(f"{source}: '{spec.text}': PyPI has no 'or' of versions; took '{requirement}', the "
                         "alternative admitting the newest versions")
    if no_pypi:
        raise RequirementsError(
            f"{source}: these conda packages have no PyPI counterpart, and images install from PyPI only: "
            f"{', '.join(no_pypi)}. Leave them out (the PyPI wheels carry the libraries they need). "
            f"The conda-to-PyPI table is {TABLE_LOCATION}: a package known on PyPI under another name "
            "goes in its 'renamed' section, or under 'pip:' with its PyPI name.")
    if requirements:
        shown = [requirement if requirement == text else f"{requirement} (conda '{text}')"
                 for requirement, text in origins]
        notes.insert(0, f"{source}: conda packages installed from PyPI, as wheels: {', '.join(shown)}")
    binary_only = tuple(dict.fromkeys(canonicalize_name(Requirement(line).name) for line in requirements))
    return PythonDependencies(DEFAULT_PYTHON, tuple(requirements), binary_only=binary_only, notes=tuple(notes),
                              origins=tuple(origins))

