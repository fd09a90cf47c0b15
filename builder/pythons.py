"""Which Python an image gets for the Python a conda file asks for.

The runtime needs Python 3.11 or later, so no image can have the Pythons of 2017
(3.5, 3.6) or any other 3.x before 3.11: a file asking for one builds on the nearest
supported Python, 3.11, and the build log and the image's labels say so (both versions
are recorded). Python 2 is refused (a Python 2 driver does not run on Python 3), and
so is a version Python never had.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from .errors import RequirementsError

DEFAULT_PYTHON = "3.11"
OLDEST_SUPPORTED = (3, 11)  # the runtime's own minimum
NEWEST_KNOWN = (3, 15)
KNOWN = tuple([(2, minor) for minor in range(8)] + [(3, minor) for minor in range(NEWEST_KNOWN[1] + 1)])
_PATCHES = range(40)  # a minor fits a specifier set when one of its patch releases does


@dataclass(frozen=True)
class PythonChoice:
    used: str  # the minor version the image has: "3.11"
    requested: str = ""  # what the environment file asked for, as written ("3.5.2"); '' when nothing
    moved: bool = False  # the image cannot have what was asked for, it gets the nearest supported

    def note(self, source: str) -> str | None:
        if not self.moved:
            return None
        return (f"WARNING: {source} asks for Python {self.requested}, which no image can have today "
                f"(moma's runtime needs Python {_text(OLDEST_SUPPORTED)} or later): building on Python {self.used}, "
                f"the nearest supported; labels moma.python-requested and moma.python record both. Code written "
                f"for Python {self.requested} may need changes.")


def choose_python(alternatives: tuple[str, ...], requested: str, where: str) -> PythonChoice:
    """``alternatives`` are PEP 440 specifier sets (any of them may hold), ``requested`` the
    version as written; () asks for nothing in particular."""
    if not [part for part in alternatives if part]:
        return PythonChoice(DEFAULT_PYTHON, requested)
    specifiers = tuple(SpecifierSet(part) for part in alternatives)
    fits = [minor for minor in KNOWN if _fits(minor, specifiers)]
    supported = [minor for minor in fits if minor >= OLDEST_SUPPORTED]
    if _minor(DEFAULT_PYTHON) in supported:
        used = _minor(DEFAULT_PYTHON)
    elif supported:
        used = min(supported)
    elif [minor for minor in fits if minor[0] == 3]:
        used = OLDEST_SUPPORTED
    elif fits:
        raise RequirementsError(
            f"{where}: 'python{_shown(requested)}' asks for Python 2, and a Python 2 driver does not run on "
            f"moma's runtime (Python {_text(OLDEST_SUPPORTED)} or later); port the driver to Python 3 and ask "
            f"for python={DEFAULT_PYTHON}")
    else:
        raise RequirementsError(
            f"{where}: 'python{_shown(requested)}' is no Python version there has been (known: 2.0 to 2.7, "
            f"3.0 to {_text(NEWEST_KNOWN)}); ask for python={DEFAULT_PYTHON}")
    return PythonChoice(_text(used), requested, moved=used not in fits)


def _fits(minor: tuple[int, int], specifiers: tuple[SpecifierSet, ...]) -> bool:
    return any(specifier.contains(f"{minor[0]}.{minor[1]}.{patch}", prereleases=True)
               for specifier in specifiers for patch in _PATCHES)


def _minor(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _text(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


def _shown(requested: str) -> str:
    return f"={requested}" if requested[:1].isdigit() else requested
