"""One entry of a conda file's ``dependencies`` (a conda match spec) read as PyPI reads
versions (PEP 440).

What is understood, as conda itself reads it:

==========================  ==========================  ====================================
conda                       PyPI                        why
==========================  ==========================  ====================================
``numpy``                   ``numpy``                   any version
``numpy=1.11``              ``numpy==1.11.*``           ``=`` is conda's fuzzy match
``numpy==1.11``             ``numpy==1.11``             exact
``numpy 1.11`` / ``1.11*``  ``==1.11`` / ``==1.11.*``   a bare version is exact, ``*`` fuzzy
``numpy>=1.8,<2``           ``numpy>=1.8,<2``           ranges read the same
``numpy=1.11=py35_0``       ``numpy==1.11``             a build string pins the version
``sdk=0.1.0a11``            ``sdk==0.1.0a11``           PEP 440 has no wildcard after a
                                                        pre-release: exact
``conda-forge::numpy``      ``numpy``                   the channel says nothing to PyPI
``numpy 1.11|1.12``         ``numpy==1.12``             PyPI has no "or": the alternative
                                                        admitting the newest versions
==========================  ==========================  ====================================

Bracket options (``numpy[version='>=1.8']``) and parentheses are refused with a message
saying how to write the entry instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import Version

from .errors import RequirementsError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_CHANNEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_SPACED_OPERATOR = re.compile(r"\s*([=<>!~,|]+)\s*")
_WITH_BUILD = re.compile(r"(?P<op>==?)?(?P<version>[^=<>!~,|\s]+)=(?P<build>[^=<>!~,|\s]+)")
_CONSTRAINT = re.compile(r"(?P<op>==|!=|>=|<=|~=|>|<|=)?(?P<version>[^=<>!~]+)")
_UPPER_BOUNDS = ("<", "<=", "==", "===", "~=")
_WILDCARD_CEILING = ".99999"


@dataclass(frozen=True)
class CondaSpec:
    text: str  # as written in the file
    channel: str  # '' when none
    name: str
    version: str  # conda's version part, operators unspaced, build string dropped ('' means any)
    alternatives: tuple[str, ...]  # PEP 440 specifier sets, one per '|' alternative; () means any version

    @property
    def requested_version(self) -> str:
        """The version as a person would quote it: ``3.5.2`` for ``=3.5.2`` and ``==3.5.2``."""
        bare = self.version.lstrip("=")
        return self.version if any(char in bare for char in "<>!~,|") else bare


def parse_conda_spec(text: str, where: str) -> CondaSpec:
    text = text.strip()
    if "[" in text or "(" in text:
        raise RequirementsError(f"{where}: {text!r}: bracket options and parentheses of conda specs are not "
                                "supported; write the package as 'name', 'name=1.2' or 'name>=1.2,<2'")
    channel, _, rest = text.rpartition("::")
    rest = rest.strip()
    name_match = _NAME.match(rest)
    if not name_match:
        raise RequirementsError(f"{where}: {text!r} is not a conda package spec (name, then an optional version)")
    name = name_match.group(0)
    version, build = _split_build(_SPACED_OPERATOR.sub(r"\1", rest[len(name):].strip()), text, where)
    if build and version.startswith("=") and not version.startswith("=="):
        version = "=" + version  # conda: '=1.2=py35_0' is exactly 1.2, not any 1.2.x
    return CondaSpec(text=text, channel=channel, name=name.lower(), version=version,
                     alternatives=_alternatives(version, text, where))


def is_public_channel(channel: str) -> bool:
    """A channel named by name (``conda-forge``, ``pytorch``, ``conda-forge/label/dev``);
    URLs and paths point at a private package source."""
    return bool(_CHANNEL.fullmatch(channel))


def choose_alternative(spec: CondaSpec) -> str:
    """The one specifier set to install: PyPI has no "or" of versions, so of conda's '|'
    alternatives the one admitting the newest versions."""
    if not spec.alternatives:
        return ""
    return max(spec.alternatives, key=_newest_admitted)


def _split_build(version: str, text: str, where: str) -> tuple[str, str]:
    """``=1.2=py35_0`` and ``1.2 py35_0``: the version and the build string."""
    with_build = _WITH_BUILD.fullmatch(version)
    if with_build:
        return (with_build["op"] or "") + with_build["version"], with_build["build"]
    parts = version.split()
    if len(parts) > 2:
        raise RequirementsError(f"{where}: {text!r} is not a conda package spec (name, version, build)")
    return (parts[0], parts[1]) if len(parts) == 2 else (version, "")


def _alternatives(version: str, text: str, where: str) -> tuple[str, ...]:
    if version in ("", "*", "=*"):
        return ()
    return tuple(_and_set(alternative, text, where) for alternative in version.split("|"))


def _and_set(alternative: str, text: str, where: str) -> str:
    constraints = []
    for constraint in alternative.split(","):
        if constraint in ("", "*"):
            continue
        match = _CONSTRAINT.fullmatch(constraint)
        if not match:
            raise _unreadable(constraint, text, where)
        constraints.append(_constraint(match["op"], match["version"], text, where))
    return ",".join(constraints)


def _constraint(op: str | None, version: str, text: str, where: str) -> str:
    wildcard = version.endswith("*")
    base = version.rstrip("*").rstrip(".")
    if op is None:
        specifier = f"=={base}.*" if wildcard else f"=={base}"
    elif op == "=":
        specifier = f"=={base}.*"
    elif op in ("==", "!="):
        specifier = f"{op}{base}.*" if wildcard else f"{op}{base}"
    else:
        specifier = f"{op}{base}"
    if specifier.endswith(".*") and not _valid(specifier) and _valid(specifier[:-2]):
        specifier = specifier[:-2]  # '=1.0a1': PEP 440 has no wildcard after a pre-release, exact it is
    if not _valid(specifier):
        raise _unreadable((op or "") + version, text, where)
    return specifier


def _valid(specifier: str) -> bool:
    try:
        Specifier(specifier)
    except InvalidSpecifier:
        return False
    return True


def _unreadable(constraint: str, text: str, where: str) -> RequirementsError:
    return RequirementsError(f"{where}: {text!r}: cannot read the version {constraint!r} (conda writes "
                             "'=1.2' for any 1.2.x, '==1.2' for exactly 1.2, '>=1.2,<2' for a range)")


def _newest_admitted(alternative: str) -> tuple[int, Version]:
    """Unbounded above beats any bound; otherwise the highest upper bound wins."""
    bounds = [spec for spec in SpecifierSet(alternative) if spec.operator in _UPPER_BOUNDS]
    if not bounds:
        return (1, Version("0"))
    return (0, max(_ceiling(spec) for spec in bounds))


def _ceiling(spec: Specifier) -> Version:
    if spec.version.endswith(".*"):
        return Version(spec.version[:-2] + _WILDCARD_CEILING)
    return Version(spec.version)
