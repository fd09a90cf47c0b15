"""bench/ imports anything of ours except tests/: what both need lives in bench/ (the
tests may import anything)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _imported(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    return names


def test_bench_imports_nothing_of_tests():
    sources = sorted(source for source in BENCH.rglob("*.py")  # not the peers' venvs the bench installs
                     if ".venvs" not in source.relative_to(BENCH).parts)
    assert BENCH / "bench_service.py" in sources
    found = {source.relative_to(BENCH).as_posix(): sorted(name for name in _imported(source)
                                                          if name.split(".")[0] == "tests")
             for source in sources}
    assert {source: names for source, names in found.items() if names} == {}
