"""Azurite (the storage emulator) for the tests of what services get from the
operator's storage account."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator["Azurite"]:  # noqa: F821
    from tests.runtime.test_datacollection_blob import Azurite

    server = Azurite(tmp_path_factory.mktemp("azurite-services")).start()
    yield server
    server.stop()
