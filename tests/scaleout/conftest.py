"""Several Docker hosts on this machine (``scripts/netns_cluster.py``): network
namespaces with a dockerd each, joined into one swarm. Needs root; without it (or
without the tools) the tests skip, except in CI, where that is a failure. The cluster
is torn down at session end whatever the tests did."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from scripts import netns_cluster
from scripts.netns_cluster import Cluster, ClusterError


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def make_cluster(hosts: int, **options) -> Cluster:
    try:
        return netns_cluster.up(hosts, **options)
    except ClusterError as exc:
        if "need root" in str(exc) or "missing tools" in str(exc):
            _missing(str(exc))
        raise


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Three hosts in one swarm, python:3.11-slim loaded into each."""
    made = make_cluster(3)
    try:
        yield made
    finally:
        netns_cluster.down(made.name)


# PostgreSQL and Azurite (blob storage) of the session, for API replicas and workers
from tests.management.conftest import azurite, postgres_admin_url, postgres_database  # noqa: E402, F401
