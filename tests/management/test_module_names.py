"""No module of ours takes the name of a library we import: inside the package, a
module named ``requests`` or ``docker`` reads as the library to anyone who meets
``from .requests import ...`` or ``import docker``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "management"


def test_no_module_shadows_an_installed_library():
    # what is importable: a wheel may list a top-level name it does not ship (azure-identity: "images")
    libraries = {name for name in importlib.metadata.packages_distributions()
                 if importlib.util.find_spec(name) is not None} - {"management", "builder", "runtime", "tests",
                                                                    "bench", "templates"}
    ours = {path.relative_to(PACKAGE).as_posix(): path.stem for path in PACKAGE.rglob("*.py")}
    ours |= {path.relative_to(PACKAGE).as_posix(): path.name for path in PACKAGE.rglob("*") if path.is_dir()}

    assert "requests" in libraries and "docker" in libraries
    assert {where: name for where, name in ours.items() if name in libraries} == {}
