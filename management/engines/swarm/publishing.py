"""How a swarm service's port is published: through the routing mesh (``ingress``) or
on the node's own network (``host``, for kernels without IPVS), and which port."""

from __future__ import annotations

import gzip
import logging
import os
import re
import socket
from pathlib import Path

from ..clients import is_loopback
from ..docker_host import MIGRATE_SYSCTL, sysctl
from .definition import PUBLISH_HOST, PUBLISH_INGRESS

log = logging.getLogger("moma.engines")
AUTO = "auto"


def choose_publish(publish: str, local: bool) -> str:
    """``auto``: ingress, unless the engine runs here and this kernel has no IPVS (the
    routing mesh needs it: without it a published port accepts nothing). Warns about
    what host mode lacks on this node."""
    if publish == AUTO:
        publish = PUBLISH_HOST if local and kernel_has_ipvs() is False else PUBLISH_INGRESS
        if publish == PUBLISH_HOST:
            log.warning("this kernel has no IPVS, which swarm's routing mesh needs: swarm services publish their "
                        "port on the node's network (SO_REUSEPORT) instead of the ingress network")
    if publish not in (PUBLISH_INGRESS, PUBLISH_HOST):
        raise ValueError(f"publish must be {PUBLISH_INGRESS}, {PUBLISH_HOST} or {AUTO}, got {publish!r}")
    if publish == PUBLISH_HOST and local and sysctl(MIGRATE_SYSCTL) == "0":
        log.warning("%s is 0 on this node: connections queued on a replica's socket when it stops are reset "
                    "(a few failed requests per update under load); `sysctl -w %s=1` moves them to the other "
                    "replicas", MIGRATE_SYSCTL, MIGRATE_SYSCTL)
    return publish


def bind_address(scoring_host: str) -> str:
    """Where host-mode tasks listen: loopback only when services are announced there."""
    return "127.0.0.1" if is_loopback(scoring_host) else "0.0.0.0"


def port_free(address: str, port: int) -> bool:
    """Whether a listener could bind the port; connections of a stopped replica left in
    TIME_WAIT do not count (the runtime binds with SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def free_port(address: str) -> int:
    """A port nothing on this machine listens on now."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def kernel_has_ipvs() -> bool | None:
    """Whether this machine's kernel has IPVS (None: cannot tell)."""
    if Path("/proc/net/ip_vs").exists():
        return True
    if (Path("/lib/modules") / os.uname().release / "kernel/net/netfilter/ipvs").is_dir():
        return True
    try:
        with gzip.open("/proc/config.gz", "rt") as config:
            text = config.read()
    except OSError:
        return None
    if re.search(r"^CONFIG_IP_VS=[ym]$", text, re.MULTILINE):
        return True
    return False if "# CONFIG_IP_VS is not set" in text else None
