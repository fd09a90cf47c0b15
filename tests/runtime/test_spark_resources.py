"""Cores and heap of one worker's local Spark, from cgroup files written in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import cgroup_memory_limit, parse_memory_limit
from runtime.errors import ConfigError
from runtime.spark_resources import SparkResources, plan, resources

GiB = 1024**3


@pytest.mark.parametrize(("text", "expected"), [
    ("max\n", None), ("1073741824\n", GiB), ("9223372036854771712\n", None), ("", None), ("x", None)])
def test_parse_memory_limit(text, expected):
    assert parse_memory_limit(text) == expected


def test_cgroup_v2_and_v1_limits(tmp_path: Path):
    (tmp_path / "memory.max").write_text("2147483648\n")
    assert cgroup_memory_limit(str(tmp_path)) == 2 * GiB
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("536870912\n")
    assert cgroup_memory_limit(str(v1)) == GiB // 2
    assert cgroup_memory_limit(str(tmp_path / "none")) is None


@pytest.mark.parametrize(("cpus", "memory", "workers", "expected"), [
    (2.0, 2 * GiB, 1, SparkResources("local[2]", "1024m")),
    (1.5, GiB, 1, SparkResources("local[2]", "512m")),
    (4.0, 2 * GiB, 2, SparkResources("local[2]", "512m")),
    (0.5, 256 * 1024**2, 1, SparkResources("local[1]", "256m")),  # never below 256 MiB
    (8.0, None, 1, SparkResources("local[8]", None)),
])
def test_plan_shares_cpus_and_memory_among_workers(cpus, memory, workers, expected):
    assert plan(cpus, memory, workers) == expected


def test_environment_overrides(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    (tmp_path / "memory.max").write_text(f"{4 * GiB}\n")
    assert resources({}, str(tmp_path)).driver_memory == "2048m"
    assert resources({"SPARK_MASTER": "local[1]", "SPARK_DRIVER_MEMORY": "3g"}, str(tmp_path)) == \
        SparkResources("local[1]", "3g")
    with pytest.raises(ConfigError, match="WORKERS"):
        resources({"WORKERS": "two"}, str(tmp_path))
