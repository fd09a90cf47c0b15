"""Several Docker hosts on one machine, for multi-host tests: network namespaces joined
by veth links to a switch, each running a dockerd of its own, joined into one swarm.

    python3 scripts/netns_cluster.py up [--hosts 3] [--image python:3.11-slim]... [--insecure-registry ADDR]
    python3 scripts/netns_cluster.py down NAME          # or --all: every cluster of this script
    python3 scripts/netns_cluster.py probe              # up, what this kernel carries, down

``up`` prints the cluster as JSON (also kept in ``/run/moma-netns/NAME/cluster.json``).
Needs root, ``ip``, ``nsenter``, ``unshare``, ``setsid``, ``dockerd`` and the ``docker`` client.

Layout of cluster NAME on subnet 10.77.K.0/24 (K: the first one free on this machine):

    root namespace   NAME-r 10.77.K.254 ──┐
    netns NAME-sw    bridge br0 ──────────┴── r, h1, h2, ...    (the switch)
    netns NAME-h1    eth0 10.77.K.1, default route via .254     (host 1, swarm manager)
    netns NAME-h2    eth0 10.77.K.2                             (host 2, swarm worker) ...

The switch is a namespace of its own so that bridged frames never cross the root
namespace's FORWARD chain (whose policy the machine's dockerd sets to DROP). Each host's
dockerd runs in the host's network namespace and in mount and UTS namespaces of its
own: host name NAME-hI (swarm node names differ), a sysfs of its own network namespace
with the machine's cgroup hierarchies bound back in, and a resolv.conf naming .254,
where no DNS server answers, so that lookups of public registries fail at once. It has
its own data root, exec root, socket, pid file, cgroup parent and bridge, and writes its
iptables rules into its own namespace: the machine's dockerd and its rules are never
touched. Swarm overlay networks take their subnets from 10.200.0.0/16.

``down`` leaves the swarm, removes the containers, stops each dockerd (SIGKILL for what
is left in the host's namespace or cgroups after 20 s), deletes the namespaces (the
root end of the veth goes with the switch) and the directories. It is safe to run on a
cluster half made or already gone.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

PREFIX = "mnc"  # every cluster is named mnc<K>
RUN_DIR = Path("/run/moma-netns")  # exec roots and sockets: short paths (unix socket names are ≤ 107 bytes)
DATA_DIR = Path("/var/tmp/moma-netns")  # data roots: image layers
SUBNET = "10.77.{k}.0/24"
OVERLAY_POOL = "10.200.0.0/16"
READY_SECONDS = 60.0
STOP_SECONDS = 20.0


class ClusterError(Exception):
    """A step of bringing a cluster up failed; the message says which and why."""


@dataclass
class Host:
    name: str  # also its network namespace and host name
    address: str
    run_dir: str
    data_dir: str

    @property
    def socket(self) -> str:
        return f"{self.run_dir}/docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> str:
        return f"{self.run_dir}/dockerd.pid"

    @property
    def log(self) -> str:
        return f"{self.data_dir}/dockerd.log"

    def docker(self, *args: str, timeout: float = 120, check: bool = True,
               stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        """The ``docker`` client against this host's engine."""
        return _run(["docker", "-H", self.docker_host, *args], timeout=timeout, check=check, stdin=stdin)

    def netns_exec(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command in this host's network namespace (the machine's mounts: no ``ip netns exec``,
        which remounts /sys and hides the cgroup hierarchies)."""
        return _run(["nsenter", f"--net=/run/netns/{self.name}", *args], timeout=timeout, check=check)


@dataclass
class Cluster:
    name: str
    subnet: str
    gateway: str  # the root namespace's address on the switch
    hosts: list[Host] = field(default_factory=list)
    swarm: bool = False

    @property
    def switch(self) -> str:
        return f"{self.name}-sw"

    @property
    def root_link(self) -> str:
        return f"{self.name}-r"

    @property
    def run_dir(self) -> Path:
        return RUN_DIR / self.name

    @property
    def data_dir(self) -> Path:
        return DATA_DIR / self.name

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "cluster.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, name: str) -> "Cluster":
        raw = json.loads((RUN_DIR / name / "cluster.json").read_text())
        return cls(**{**raw, "hosts": [Host(**host) for host in raw["hosts"]]})


# --- up ------------------------------------------------------------------------------

def up(hosts: int = 3, images: Sequence[str] = ("python:3.11-slim",), swarm: bool = True,
       insecure_registries: Sequence[str] = ()) -> Cluster:
    """A cluster of ``hosts`` hosts with ``images`` loaded into each engine, joined into one
    swarm unless ``swarm`` is False. On any failure what was made is torn down."""
    _check_tools()
    cluster = _new_cluster(hosts)
    try:
        cluster.save()
        _make_switch(cluster)
        for host in cluster.hosts:
            _make_host_namespace(cluster, host)
            _start_dockerd(cluster, host, insecure_registries)
        for host in cluster.hosts:
            _wait_for_engine(host)
        _load_images(cluster, images)
        if swarm:
            _join_swarm(cluster)
        cluster.save()
        return cluster
    except BaseException:
        down(cluster.name)
        raise


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise ClusterError("network namespaces and extra dockerds need root")
    tools = ("ip", "nsenter", "unshare", "setsid", "dockerd", "docker")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise ClusterError(f"missing tools: {', '.join(missing)}")


def _new_cluster(hosts: int) -> Cluster:
    """The first subnet 10.77.K.0/24 no interface of the root namespace is on and no
    cluster of ours has taken."""
    taken = {ipaddress.ip_interface(address).network
             for address in _run(["ip", "-4", "-o", "addr", "show"]).stdout.split() if "/" in address
             and _is_address(address)}
    for k in range(1, 255):
        subnet = ipaddress.ip_network(SUBNET.format(k=k))
        name = f"{PREFIX}{k}"
        if subnet in taken or (RUN_DIR / name).exists():
            continue
        addresses = list(subnet.hosts())
        cluster = Cluster(name=name, subnet=str(subnet), gateway=str(addresses[-1]))
        for index in range(1, hosts + 1):
            host_name = f"{name}-h{index}"
            cluster.hosts.append(Host(host_name, str(addresses[index - 1]), str(cluster.run_dir / f"h{index}"),
                                      str(cluster.data_dir / f"h{index}")))
        return cluster
    raise ClusterError("no free subnet 10.77.K.0/24 left")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def _make_switch(cluster: Cluster) -> None:
    sw = cluster.switch
    _run(["ip", "netns", "add", sw])
    _run(["ip", "-n", sw, "link", "set", "lo", "up"])
    _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
    _run(["ip", "-n", sw, "link", "set", "br0", "up"])
    _run(["ip", "link", "add", cluster.root_link, "type", "veth", "peer", "name", "r", "netns", sw])
    _run(["ip", "-n", sw, "link", "set", "r", "master", "br0", "up"])
    prefix = ipaddress.ip_network(cluster.subnet).prefixlen
    _run(["ip", "addr", "add", f"{cluster.gateway}/{prefix}", "dev", cluster.root_link])
    _run(["ip", "link", "set", cluster.root_link, "up"])


def _make_host_namespace(cluster: Cluster, host: Host) -> None:
    port = host.name.rsplit("-", 1)[1]  # h1, h2...: the host's port on the switch
    prefix = ipaddress.ip_network(cluster.subnet).prefixlen
    _run(["ip", "netns", "add", host.name])
    _run(["ip", "-n", host.name, "link", "set", "lo", "up"])
    _run(["ip", "-n", host.name, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", cluster.switch])
    _run(["ip", "-n", cluster.switch, "link", "set", port, "master", "br0", "up"])
    _run(["ip", "-n", host.name, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0"])
    _run(["ip", "-n", host.name, "link", "set", "eth0", "up"])
    _run(["ip", "-n", host.name, "route", "add", "default", "via", cluster.gateway])


def _start_dockerd(cluster: Cluster, host: Host, insecure_registries: Sequence[str]) -> None:
    run_dir, data_dir = Path(host.run_dir), Path(host.data_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "cgroup").mkdir(exist_ok=True)
    (data_dir / "resolv.conf").write_text(f"nameserver {cluster.gateway}\n")
    (data_dir / "daemon.json").write_text(json.dumps({"insecure-registries": list(insecure_registries)}) + "\n")
    index = int(host.name.rsplit("h", 1)[1])
    dockerd = [
        "dockerd", "--config-file", str(data_dir / "daemon.json"), "--data-root", str(data_dir / "docker"),
        "--exec-root", str(run_dir), "--pidfile", host.pidfile, "-H", host.docker_host,
        "--bip", f"172.31.{index}.1/24", "--default-address-pool", "base=172.30.0.0/16,size=24",
        "--cgroup-parent", host.name,
    ]
    script = "\n".join([
        "set -e",
        f"hostname {shlex.quote(host.name)}",
        # A sysfs of this network namespace (libnetwork reads and writes bridge settings
        # there), with the machine's cgroup hierarchies bound back underneath
        f"mount --rbind /sys/fs/cgroup {shlex.quote(str(data_dir / 'cgroup'))}",
        "mount -t sysfs sysfs /sys",
        f"mount --rbind {shlex.quote(str(data_dir / 'cgroup'))} /sys/fs/cgroup",
        f"mount --bind {shlex.quote(str(data_dir / 'resolv.conf'))} /etc/resolv.conf",
        "exec " + shlex.join(dockerd),
    ])
    with open(host.log, "ab") as log:  # setsid --fork: dockerd is nobody's child here, and outlives this process
        subprocess.run(["setsid", "--fork", "nsenter", f"--net=/run/netns/{host.name}", "unshare", "--mount",
                        "--uts", "--propagation", "private", "sh", "-c", script],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=30)


def _wait_for_engine(host: Host) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if host.docker("version", "--format", "{{.Server.Version}}", timeout=10, check=False).returncode == 0:
            return
        time.sleep(0.5)
    tail = Path(host.log).read_text(errors="replace").splitlines()[-15:] if Path(host.log).exists() else []
    raise ClusterError(f"dockerd of {host.name} did not answer within {READY_SECONDS:.0f} s:\n" + "\n".join(tail))


def _load_images(cluster: Cluster, images: Sequence[str]) -> None:
    """``docker save`` once from the machine's engine, ``docker load`` into every host."""
    if not images:
        return
    archive = cluster.data_dir / "images.tar"
    _run(["docker", "save", "-o", str(archive), *images], timeout=600)
    try:
        for host in cluster.hosts:
            host.docker("load", "-q", "-i", str(archive), timeout=600)
    finally:
        archive.unlink(missing_ok=True)


def _join_swarm(cluster: Cluster) -> None:
    manager, *workers = cluster.hosts
    manager.docker("swarm", "init", "--advertise-addr", manager.address, "--listen-addr", f"{manager.address}:2377",
                   "--default-addr-pool", OVERLAY_POOL)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for worker in workers:
        worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.address,
                      f"{manager.address}:2377")
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        states = manager.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
        if sum(line.endswith(" Ready") for line in states) == len(cluster.hosts):
            cluster.swarm = True
            return
        time.sleep(0.5)
    raise ClusterError(f"swarm nodes not all Ready within {READY_SECONDS:.0f} s: {states}")


# --- down ----------------------------------------------------------------------------

def down(name: str) -> None:
    """Tear cluster ``name`` down, whatever state it is in."""
    try:
        cluster = Cluster.load(name)
    except (OSError, ValueError):
        cluster = Cluster(name=name, subnet="", gateway="")
    hosts = cluster.hosts or [_bare_host(cluster, netns) for netns in _namespaces() if netns.startswith(f"{name}-h")]
    for host in hosts:
        _empty_engine(host)
    for host in hosts:
        _stop_dockerd(host)
    for host in hosts:
        _remove_cgroups(host.name)
        _run(["ip", "netns", "del", host.name], check=False)
    _run(["ip", "netns", "del", cluster.switch], check=False)
    _run(["ip", "link", "del", cluster.root_link], check=False)
    shutil.rmtree(cluster.data_dir, ignore_errors=True)
    shutil.rmtree(cluster.run_dir, ignore_errors=True)


def down_all() -> list[str]:
    """Every cluster of this script on this machine, torn down; their names."""
    names = {path.name for root in (RUN_DIR, DATA_DIR) if root.exists() for path in root.iterdir()}
    names |= {netns.rsplit("-", 1)[0] for netns in _namespaces() if netns.startswith(PREFIX)}
    for name in sorted(names):
        down(name)
    return sorted(names)


def _bare_host(cluster: Cluster, netns: str) -> Host:
    suffix = netns.rsplit("-", 1)[1]
    return Host(netns, "", str(cluster.run_dir / suffix), str(cluster.data_dir / suffix))


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines() if line]


def _empty_engine(host: Host) -> None:
    """Leave the swarm (nothing reschedules) and remove the containers, if the engine answers."""
    if not Path(host.socket).exists():
        return
    if host.docker("info", timeout=10, check=False).returncode:
        return
    host.docker("swarm", "leave", "--force", timeout=60, check=False)
    ids = host.docker("ps", "-aq", timeout=30, check=False).stdout.split()
    if ids:
        host.docker("rm", "-f", *ids, timeout=120, check=False)


def _stop_dockerd(host: Host) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(Path(host.pidfile).read_text()), signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and _pids(host.name):
        time.sleep(0.2)
    for pid in _pids(host.name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and _pids(host.name):
        time.sleep(0.2)


def _pids(netns: str) -> set[int]:
    """Every process of a host: in its network namespace (dockerd, containerd, shims) or in
    its cgroups (containers, which have namespaces of their own)."""
    pids = {int(pid) for pid in _run(["ip", "netns", "pids", netns], check=False).stdout.split()}
    for directory in _cgroup_dirs(netns):
        with contextlib.suppress(OSError):
            pids |= {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def _cgroup_dirs(parent: str) -> Iterator[Path]:
    """The cgroup directories under ``parent`` in every hierarchy, deepest first."""
    root = Path("/sys/fs/cgroup")
    for top in [root / parent, *root.glob(f"*/{parent}")]:
        if top.is_dir():
            yield from sorted((path for path in top.rglob("*") if path.is_dir()), key=lambda p: -len(p.parts))
            yield top


def _remove_cgroups(parent: str) -> None:
    for directory in _cgroup_dirs(parent):
        with contextlib.suppress(OSError):
            directory.rmdir()


# --- probe ---------------------------------------------------------------------------

@dataclass
class Finding:
    what: str
    works: bool
    detail: str


def probe(cluster: Cluster, image: str = "python:3.11-slim") -> list[Finding]:
    """What a multi-node swarm can do on this kernel: overlay (VXLAN) between nodes, DNS
    round robin, the service VIP and the ingress routing mesh (both IPVS), and ports
    published in host mode. Leaves nothing behind in the cluster."""
    manager, second = cluster.hosts[0], cluster.hosts[1]
    findings = [Finding("nodes Ready", cluster.swarm, f"{len(cluster.hosts)} nodes")]
    manager.docker("network", "create", "-d", "overlay", "--attachable", "probe-net")
    server = ["python3", "-m", "http.server", "8000"]
    try:
        manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "probe-host",
                       "--replicas", str(len(cluster.hosts)), "--replicas-max-per-node", "1", "--network", "probe-net",
                       "--publish", "published=18088,target=8000,mode=host", image, *server)
        manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", "probe-ingress",
                       "--replicas", "1", "--publish", "published=18089,target=8000", image, *server)
        _wait_for_tasks(manager, "probe-host", len(cluster.hosts))
        _wait_for_tasks(manager, "probe-ingress", 1)
        findings.append(_http("host-mode published port on every node (from the root namespace)",
                              [f"http://{host.address}:18088/" for host in cluster.hosts]))
        findings.append(_http("ingress routing mesh (published port, from the root namespace)",
                              [f"http://{host.address}:18089/" for host in cluster.hosts]))
        task_address = _overlay_address(second, "probe-host", "probe-net")
        findings += _from_container(manager, image, "probe-net", task_address)
    finally:
        manager.docker("service", "rm", "probe-host", "probe-ingress", check=False)
        _wait_until_gone(cluster)
        manager.docker("network", "rm", "probe-net", check=False)
    findings.append(_ipvs_log(manager))
    return findings


def _wait_for_tasks(manager: Host, service: str, count: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        states = manager.docker("service", "ps", service, "--filter", "desired-state=running",
                                "--format", "{{.CurrentState}}").stdout.splitlines()
        if sum(state.startswith("Running") for state in states) >= count:
            return
        time.sleep(0.5)
    errors = manager.docker("service", "ps", service, "--no-trunc", "--format", "{{.Node}} {{.Error}}").stdout
    raise ClusterError(f"{service}: {count} tasks not running within {READY_SECONDS:.0f} s: {errors}")


def _wait_until_gone(cluster: Cluster) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if not any(host.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name",
                               check=False).stdout.strip() for host in cluster.hosts):
            return
        time.sleep(0.5)


def _http(what: str, urls: list[str]) -> Finding:
    import urllib.request

    results = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                results.append((url, True, str(answer.status)))
        except OSError as exc:
            results.append((url, False, repr(getattr(exc, "reason", exc))))
    return Finding(what, all(ok for _, ok, _ in results), "; ".join(f"{url} → {text}" for url, _, text in results))


def _overlay_address(host: Host, service: str, network: str) -> str:
    container = host.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}").stdout.split()[0]
    template = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % network
    return host.docker("inspect", "-f", template, container).stdout.strip()


_CONTAINER_CHECKS = """
import json, socket, sys, urllib.request
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return [True, str(answer.status)]
    except OSError as exc:
        return [False, repr(getattr(exc, "reason", exc))]
def resolve(name):
    try:
        return [True, ",".join(sorted(socket.gethostbyname_ex(name)[2]))]
    except OSError as exc:
        return [False, repr(exc)]
print(json.dumps({"overlay": get(f"http://{sys.argv[1]}:8000/"), "dnsrr": resolve("tasks.probe-host"),
                  "vip_name": resolve("probe-host"), "vip": get("http://probe-host:8000/")}))
"""


def _from_container(manager: Host, image: str, network: str, task_address: str) -> list[Finding]:
    """From a container on the manager, attached to the overlay: a task on another node by
    its overlay address, the service's DNS names, and its VIP."""
    done = manager.docker("run", "--rm", "--network", network, image, "python3", "-c", _CONTAINER_CHECKS,
                          task_address)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        Finding("overlay (VXLAN) between nodes: a container on node 1 to a task on node 2", *seen["overlay"]),
        Finding("DNS round robin (tasks.<service> resolves to every task)", *seen["dnsrr"]),
        Finding("service VIP resolves (swarm DNS)", *seen["vip_name"]),
        Finding("service VIP answers (IPVS)", *seen["vip"]),
    ]


def _ipvs_log(host: Host) -> Finding:
    lines = [line for line in Path(host.log).read_text(errors="replace").splitlines() if "ipvs" in line.lower()]
    return Finding("IPVS in the kernel (dockerd's own words)", not lines, lines[0] if lines else "no IPVS complaint")


# --- helpers and command line --------------------------------------------------------

def _run(args: Sequence[str], timeout: float = 60, check: bool = True,
         stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, stdin=stdin)
    if check and done.returncode:
        raise ClusterError(f"{shlex.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="make a cluster; print it as JSON")
    start.add_argument("--hosts", type=int, default=3)
    start.add_argument("--image", action="append", dest="images", help="image to load into every host "
                       "(repeatable; default python:3.11-slim)")
    start.add_argument("--no-swarm", action="store_true")
    start.add_argument("--insecure-registry", action="append", default=[], metavar="HOST:PORT")
    stop = commands.add_parser("down", help="tear a cluster down")
    stop.add_argument("name", nargs="?")
    stop.add_argument("--all", action="store_true", help="every cluster this script made on this machine")
    check = commands.add_parser("probe", help="make a 2-host swarm, say what works, tear it down")
    check.add_argument("--image", default="python:3.11-slim")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cluster = up(args.hosts, args.images or ["python:3.11-slim"], not args.no_swarm, args.insecure_registry)
            print(json.dumps(asdict(cluster), indent=2))
        elif args.command == "down":
            if not args.all and not args.name:
                parser.error("down needs a cluster name or --all")
            print("\n".join(down_all()) if args.all else down(args.name) or args.name)
        else:
            return _print_probe(args.image)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_probe(image: str) -> int:
    cluster = up(2, [image])
    try:
        findings = probe(cluster, image)
    finally:
        down(cluster.name)
    kernel = os.uname().release
    print(f"kernel {kernel}, cluster {cluster.name} ({cluster.subnet}), 2 hosts")
    for finding in findings:
        print(f"{'works' if finding.works else 'FAILS':5}  {finding.what}: {finding.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
