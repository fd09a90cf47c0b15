"""The multi-host harness itself: hosts that are swarm nodes with engines of their own,
what this kernel lets a multi-node swarm do, and a teardown that leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from scripts import netns_cluster
from scripts.netns_cluster import Cluster

from .conftest import make_cluster

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def kernel_has_ipvs() -> bool:
    return Path("/proc/net/ip_vs").exists()


def test_every_host_is_a_swarm_node_with_an_engine_of_its_own(cluster: Cluster):
    manager = cluster.hosts[0]
    nodes = manager.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
    assert sorted(filter(None, nodes)) == [f"{host.name} Ready" for host in cluster.hosts]
    roots = set()
    for host in cluster.hosts:
        info = json.loads(host.docker("info", "--format", "{{json .}}").stdout)
        assert info["Swarm"]["NodeAddr"] == host.address
        roots.add(info["DockerRootDir"])
        assert host.docker("image", "inspect", "python:3.11-slim", check=False).returncode == 0
    machine = json.loads(subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True,
                                        text=True, check=True).stdout)
    assert len(roots) == len(cluster.hosts) and machine["DockerRootDir"] not in roots
    assert machine["Swarm"]["NodeAddr"] not in {host.address for host in cluster.hosts}


def test_the_machines_iptables_rules_are_left_alone(cluster: Cluster):
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert cluster.subnet.rsplit(".", 1)[0] not in rules and cluster.name not in rules


def test_the_probe_says_what_this_kernel_carries(cluster: Cluster):
    findings = {finding.what: finding for finding in netns_cluster.probe(cluster)}
    works = {what: finding.works for what, finding in findings.items()}
    print("\n".join(f"{finding.works!s:5} {what}: {finding.detail}" for what, finding in findings.items()))
    assert works["overlay (VXLAN) between nodes: a container on node 1 to a task on node 2"]
    assert works["host-mode published port on every node (from the root namespace)"]
    assert works["DNS round robin (tasks.<service> resolves to every task)"]
    assert findings["DNS round robin (tasks.<service> resolves to every task)"].detail.count(",") == 2
    ipvs = kernel_has_ipvs()
    assert works["service VIP answers (IPVS)"] is ipvs
    assert works["ingress routing mesh (published port, from the root namespace)"] is ipvs
    assert works["IPVS in the kernel (dockerd's own words)"] is ipvs


def test_down_leaves_nothing_even_after_dockerd_was_killed():
    small = make_cluster(1, images=["python:3.11-slim"], swarm=False)
    host = small.hosts[0]
    try:
        host.docker("run", "-d", "--name", "left-running", "python:3.11-slim", "sleep", "600")
        pid = int(host.docker("inspect", "-f", "{{.State.Pid}}", "left-running").stdout)
        os.kill(int(Path(host.pidfile).read_text()), signal.SIGKILL)
        assert Path(f"/proc/{pid}").exists()
    finally:
        netns_cluster.down(small.name)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert small.name not in namespaces
    assert subprocess.run(["ip", "link", "show", small.root_link], capture_output=True).returncode != 0
    assert not small.run_dir.exists() and not small.data_dir.exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{host.name}"))
