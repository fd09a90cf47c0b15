"""The runtime README's file table is the map a new maintainer reads first: every module
and package of runtime/ is in it, and everything in it exists."""

from __future__ import annotations

import re
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
ROW = re.compile(r"\| `([\w/.]+)` \|")


def table_entries() -> set[str]:
    text = (RUNTIME / "README.md").read_text()
    table = text[text.index("| file | what |"):]
    table = table[:table.index("\n\n")]
    return set(ROW.findall(table))


def tree_entries() -> set[str]:
    """Top-level modules and packages, and the files of the packages the table lists
    file by file (a package's README row is enough for the others)."""
    entries = set()
    for path in RUNTIME.iterdir():
        if path.suffix == ".py" and path.name != "__init__.py":
            entries.add(path.name)
        elif path.is_dir() and (path / "__init__.py").exists():
            entries.add(f"{path.name}/")
    for package in ("server", "oip"):
        entries |= {f"{package}/{path.name}" for path in (RUNTIME / package).glob("*.py") if path.name != "__init__.py"}
    return entries


def test_the_table_lists_every_module_and_names_nothing_gone() -> None:
    listed, present = table_entries(), tree_entries()
    assert len(listed) > 20
    assert present - listed == set(), "in runtime/ but not in its README's table"
    assert {entry for entry in listed if not (RUNTIME / entry).exists()} == set(), "in the table, not in runtime/"
