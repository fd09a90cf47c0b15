"""The table ``builder/conda-to-pypi.yml``: which PyPI project a conda package is, which
conda packages have none, which packages are the 2017 Azure ML SDK, and which package
indexes of 2017 files are retired. Names compare as PyPI compares them (PEP 503)."""

from __future__ import annotations

import functools
import importlib.resources
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

TABLE_LOCATION = "builder/conda-to-pypi.yml"
SDK_2017_PREFIXES = ("azureml-", "azure-ml-")
RUNTIME_PROVIDES = "`from azureml.datacollector import ModelDataCollector` (its azureml.datacollector shim)"


@dataclass(frozen=True)
class NameTable:
    renamed: Mapping[str, str]  # canonical conda name -> PyPI name
    no_pypi: tuple[str, ...]  # canonical names; a trailing '*' matches every name with that beginning
    sdk_2017: frozenset[str]  # canonical names
    retired_indexes: frozenset[str]  # host + path, see _index_key

    def pypi_name(self, conda_name: str) -> str | None:
        """The PyPI project of a conda package, or None when it has no counterpart."""
        name = canonicalize_name(conda_name)
        if name in self.renamed:
            return self.renamed[name]
        for entry in self.no_pypi:
            if name == entry or (entry.endswith("*") and name.startswith(entry[:-1])):
                return None
        return conda_name

    def is_2017_sdk(self, requirement: Requirement) -> bool:
        """One of the named 2017 SDK packages, or an azureml / azureml-* / azure-ml-* package
        pinned to a 0.x version (every one of that era was)."""
        name = canonicalize_name(requirement.name)
        if name in self.sdk_2017:
            return True
        if not (name == "azureml" or name.startswith(SDK_2017_PREFIXES)):
            return False
        pins = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        return any(_major(pin) == 0 for pin in pins)

    def is_retired_index(self, url: str) -> bool:
        return _index_key(url) in self.retired_indexes


@functools.cache
def name_table() -> NameTable:
    text = importlib.resources.files("builder").joinpath("conda-to-pypi.yml").read_text(encoding="utf-8")
    return parse_table(yaml.safe_load(text))


def parse_table(data: dict[str, Any]) -> NameTable:
    return NameTable(
        renamed={canonicalize_name(conda): str(pypi) for conda, pypi in data["renamed"].items()},
        no_pypi=tuple(_pattern(str(entry)) for entry in data["no_pypi"]),
        sdk_2017=frozenset(canonicalize_name(str(name)) for name in data["sdk_2017"]),
        retired_indexes=frozenset(_index_key(str(url)) for url in data["retired_indexes"]),
    )


def _pattern(entry: str) -> str:
    return canonicalize_name(entry[:-1]) + "*" if entry.endswith("*") else canonicalize_name(entry)


def _index_key(url: str) -> str:
    """``pypi.org/simple`` for http(s)://pypi.org/simple/: scheme and trailing '/' do not matter."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment or parts.username or parts.password:
        return ""
    return f"{(parts.hostname or '').lower()}{parts.path.rstrip('/')}"


def _major(version: str) -> int | None:
    try:
        return Version(version.rstrip(".*")).major
    except InvalidVersion:
        return None
