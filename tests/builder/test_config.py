from pathlib import Path

import pytest

from builder.build import Builder
from builder.config import BuilderConfig
from builder.unpack import UnpackLimits


def test_archive_limits_come_from_the_environment(tmp_path: Path):
    config = BuilderConfig.from_env({"MOMA_HOME": str(tmp_path), "MOMA_MAX_INFLATION_RATIO": "20",
                                     "MOMA_INFLATION_GRACE_BYTES": "4096", "MOMA_MAX_ARCHIVE_MEMBERS": "7"})
    assert Builder(config)._unpack_limits() == UnpackLimits(max_total_bytes=config.max_unpacked_bytes, max_members=7,
                                                            max_inflation_ratio=20, inflation_grace_bytes=4096)


def test_archive_limits_default_to_100_to_1_past_1_mib(tmp_path: Path):
    limits = Builder(BuilderConfig.from_env({"MOMA_HOME": str(tmp_path)}))._unpack_limits()
    assert (limits.max_inflation_ratio, limits.inflation_grace_bytes) == (100, 1024 * 1024)


@pytest.mark.parametrize("value", ["0", "-1", "ten"])
def test_a_bad_ratio_is_refused_by_name(value: str):
    with pytest.raises(ValueError, match=f"MOMA_MAX_INFLATION_RATIO must be a positive integer, got '{value}'"):
        BuilderConfig.from_env({"MOMA_MAX_INFLATION_RATIO": value})
