"""What the container may use, from its cgroup (v2, else v1): CPUs (else the affinity
mask) and memory."""

from __future__ import annotations

import math
import os

CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge page-aligned number


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` ("max 100000" or "150000 100000") -> CPUs, None if unlimited."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` -> CPUs, None if unlimited."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def _own_v2_path(root: str) -> str | None:
    """The process's cgroup v2 directory from /proc/self/cgroup ("0::/some/path")."""
    text = _read("/proc/self/cgroup") or ""
    for line in text.splitlines():
        if line.startswith("0::"):
            return os.path.join(root, line[3:].lstrip("/"))
    return None


def _v2_files(root: str, name: str) -> list[str]:
    """Where a cgroup v2 file of this process may be: its own cgroup's directory (when
    ``root`` is the real one), then ``root`` itself (a container's namespaced view)."""
    own = _own_v2_path(root) if root == CGROUP_ROOT else None
    return ([os.path.join(own, name)] if own else []) + [os.path.join(root, name)]


def cgroup_cpu_limit(root: str = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs, or None when there is none (or no cgroup files)."""
    for path in _v2_files(root, "cpu.max"):
        text = _read(path)
        if text is not None:
            return parse_cpu_max(text)
    for directory in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota = _read(os.path.join(root, directory, "cpu.cfs_quota_us"))
        period = _read(os.path.join(root, directory, "cpu.cfs_period_us"))
        if quota is not None and period is not None:
            return parse_cfs(quota, period)
    return None


def available_cpus(root: str = CGROUP_ROOT) -> float:
    try:
        count = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        count = float(os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    return min(count, limit) if limit is not None else count


def default_workers(cpus: float) -> int:
    """One worker per CPU of quota, rounded up (scoring is CPU-bound; the GIL is per process)."""
    return max(1, math.ceil(cpus - 1e-9))


def parse_memory_limit(text: str) -> int | None:
    """cgroup ``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) -> bytes, None if unlimited."""
    text = text.strip()
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED else None


def cgroup_memory_limit(root: str = CGROUP_ROOT) -> int | None:
    """The memory limit of this process's cgroup in bytes, or None."""
    for path in _v2_files(root, "memory.max") + [os.path.join(root, "memory", "memory.limit_in_bytes")]:
        text = _read(path)
        if text is not None:
            return parse_memory_limit(text)
    return None
