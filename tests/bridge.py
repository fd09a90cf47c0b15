"""The address containers on Docker's default bridge reach this machine by."""

from __future__ import annotations

from typing import Any

from tests.conftest import TEST_RUN_LABEL

BASE_IMAGE = "python:3.11-slim"  # bootstrapped on every machine the Docker tests run on


def bridge_gateway(docker_client: Any, test_run_id: str) -> str:
    """As the engine hands it to a container: the bridge network's IPAM config names no
    ``Gateway`` on some engines (a fresh dockerd 20.10 lists only the subnet), and the
    bridge may have any address of the subnet."""
    probe = docker_client.containers.run(BASE_IMAGE, ["sleep", "60"], detach=True, network="bridge",
                                         labels={TEST_RUN_LABEL: test_run_id})
    try:
        probe.reload()
        return probe.attrs["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    finally:
        probe.remove(force=True)
