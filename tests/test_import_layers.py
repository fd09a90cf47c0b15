"""What each top-level package may import of the others (the "may import" lines of
the READMEs): ``runtime/`` nothing of ours (it ships inside images; its own stdlib-only
checks are in tests/runtime); ``builder/`` nothing but the image contract
(``runtime.contract``); ``management/`` ``builder/`` and the image contract."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("builder", "management", "runtime", "templates", "tests", "bench")
ALLOWED = {
    "builder": {"builder", "runtime.contract", "templates"},
    "management": {"management", "builder", "runtime.contract"},
}


def imported_modules(source: Path) -> Iterator[tuple[str, int]]:
    """Every absolute import in ``source`` as the dotted names it brings in, with its line;
    ``from runtime import contract`` counts as ``runtime.contract``."""
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module in OURS:
                for alias in node.names:
                    yield f"{node.module}.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno


def allowed(name: str, permitted: set[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in permitted)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_its_readme_allows(package):
    wrong = [f"{source.relative_to(REPO)}:{line} imports {name}"
             for source in sorted((REPO / package).rglob("*.py"))
             for name, line in imported_modules(source)
             if name.split(".")[0] in OURS and not allowed(name, ALLOWED[package])]
    assert not wrong, wrong


def test_the_image_contract_imports_only_the_standard_library():
    names = {name.split(".")[0] for name, _ in imported_modules(REPO / "runtime" / "contract.py")}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


def test_the_check_sees_a_forbidden_import(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from runtime import config, contract\nimport management.engines\n")
    names = [name for name, _ in imported_modules(source)]
    assert names == ["runtime.config", "runtime.contract", "management.engines"]
    assert [allowed(name, ALLOWED["builder"]) for name in names] == [False, True, False]
