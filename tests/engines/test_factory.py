"""From settings to engines: the container limits every engine applies."""

from __future__ import annotations

import pytest

from management.config import Settings
from management.engines import Limits
from management.engines.factory import container_limits


def test_container_limits_come_from_the_settings():
    assert container_limits(Settings()) == Limits(pids=2048, memory=2 * 1024**3)
    loaded = Settings.load({"MOMA_SERVICE_PIDS_LIMIT": "300", "MOMA_SERVICE_DEFAULT_MEMORY": "512Mi"})
    assert container_limits(loaded) == Limits(pids=300, memory=512 * 1024**2)
    assert container_limits(Settings(service_pids_limit=0, service_default_memory="0")) == Limits()


def test_a_bad_default_memory_fails_at_start():
    with pytest.raises(ValueError, match="not a Kubernetes memory quantity"):
        container_limits(Settings(service_default_memory="2GB"))
