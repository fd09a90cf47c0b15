"""What one worker's local-mode Spark may use: cores and driver memory.

Cores: the container's CPU quota (``cgroups.py``) shared among the gunicorn workers, each
worker running its own JVM. Memory: the engines set the memory reservation as the
container's memory limit, so the JVM heap is a fraction of the cgroup limit, again
shared among the workers; the rest is left to the JVM's own overhead (metaspace, code
cache, threads) and to Python. Without a limit Spark's default heap applies.

Overrides: ``SPARK_MASTER`` (e.g. ``local[4]``), ``SPARK_DRIVER_MEMORY`` (e.g. ``2g``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

from .cgroups import CGROUP_ROOT, available_cpus, cgroup_memory_limit
from .errors import ConfigError

MiB = 1024 * 1024
HEAP_FRACTION = 0.5
MIN_HEAP_MIB = 256


@dataclasses.dataclass(frozen=True)
class SparkResources:
    master: str  # local[N]
    driver_memory: str | None  # e.g. "512m"; None: Spark's default


def plan(cpus: float, memory_limit: int | None, workers: int) -> SparkResources:
    """Cores and heap for one of ``workers`` JVMs in a container of ``cpus`` and ``memory_limit``."""
    workers = max(1, workers)
    cores = max(1, math.ceil(cpus / workers - 1e-9))
    memory = None
    if memory_limit is not None:
        heap_mib = max(MIN_HEAP_MIB, int(memory_limit * HEAP_FRACTION / workers) // MiB)
        memory = f"{heap_mib}m"
    return SparkResources(f"local[{cores}]", memory)


def resources(environ: Mapping[str, str] | None = None, root: str = CGROUP_ROOT) -> SparkResources:
    env = os.environ if environ is None else environ
    raw_workers = (env.get("WORKERS") or "1").strip()
    try:
        workers = int(raw_workers)
    except ValueError:
        raise ConfigError(f"WORKERS must be an integer, got {raw_workers!r}") from None
    planned = plan(available_cpus(root), cgroup_memory_limit(root), workers)
    master = (env.get("SPARK_MASTER") or "").strip() or planned.master
    memory = (env.get("SPARK_DRIVER_MEMORY") or "").strip() or planned.driver_memory
    return SparkResources(master, memory)
