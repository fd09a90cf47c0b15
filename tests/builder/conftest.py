"""Fixtures the builder's fetch tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.asset_server import Server, running_server


@pytest.fixture
def server() -> Iterator[Server]:
    with running_server() as state:
        yield state


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory
