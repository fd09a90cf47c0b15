"""Builder settings: defaults, then ``MOMA_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

GiB = 1024**3


@dataclass(frozen=True)
class BuilderConfig:
    home: Path = field(default_factory=lambda: Path.home() / ".moma")
    # The base image per Python minor version; "{version}" is replaced by e.g. "3.11".
    base_image_template: str = "python:{version}-slim"
    # SparkPython images start from Python plus a headless Java 17 (no official image of that).
    spark_base_image_template: str = "moma/spark-python:{version}-java17"
    debian_mirror: str = "http://deb.debian.org/debian"
    file_roots: tuple[Path, ...] = ()
    max_asset_bytes: int = 10 * GiB
    max_unpacked_bytes: int = 10 * GiB
    max_archive_members: int = 100_000
    max_inflation_ratio: int = 100  # archive bombs: uncompressed : compressed, past the grace size
    inflation_grace_bytes: int = 1024**2
    allow_link_local: bool = False
    download_deadline_seconds: int = 1800  # one asset's HTTP download, retries included
    download_min_bytes_per_second: int = 16 * 1024

    @property
    def wheelhouse_dir(self) -> Path:
        return self.home / "wheelhouse"

    @property
    def build_log_dir(self) -> Path:
        return self.home / "logs" / "builds"

    def base_image(self, python_version: str, runtime_type: str = "Python") -> str:
        template = self.spark_base_image_template if runtime_type == "SparkPython" else self.base_image_template
        return template.format(version=python_version)

    def with_file_roots(self, *roots: Path) -> "BuilderConfig":
        return replace(self, file_roots=tuple(dict.fromkeys(self.file_roots + roots)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "BuilderConfig":
        env = os.environ if env is None else env
        config = cls()
        overrides: dict[str, Any] = {}  # the fields of BuilderConfig, each of its own type
        if env.get("MOMA_HOME"):
            overrides["home"] = Path(env["MOMA_HOME"]).expanduser()
        if env.get("MOMA_BASE_IMAGE_TEMPLATE"):
            overrides["base_image_template"] = env["MOMA_BASE_IMAGE_TEMPLATE"]
        if env.get("MOMA_SPARK_BASE_IMAGE_TEMPLATE"):
            overrides["spark_base_image_template"] = env["MOMA_SPARK_BASE_IMAGE_TEMPLATE"]
        if env.get("MOMA_DEBIAN_MIRROR"):
            overrides["debian_mirror"] = env["MOMA_DEBIAN_MIRROR"]
        if env.get("MOMA_FILE_ROOTS"):
            overrides["file_roots"] = tuple(
                Path(root).expanduser().resolve() for root in env["MOMA_FILE_ROOTS"].split(os.pathsep) if root
            )
        for key, name in (
            ("max_asset_bytes", "MOMA_MAX_ASSET_BYTES"),
            ("max_unpacked_bytes", "MOMA_MAX_UNPACKED_BYTES"),
            ("max_archive_members", "MOMA_MAX_ARCHIVE_MEMBERS"),
            ("max_inflation_ratio", "MOMA_MAX_INFLATION_RATIO"),
            ("inflation_grace_bytes", "MOMA_INFLATION_GRACE_BYTES"),
            ("download_deadline_seconds", "MOMA_DOWNLOAD_DEADLINE_SECONDS"),
            ("download_min_bytes_per_second", "MOMA_DOWNLOAD_MIN_BYTES_PER_SECOND"),
        ):
            if env.get(name):
                overrides[key] = _positive_int(name, env[name])
        if env.get("MOMA_ALLOW_LINK_LOCAL"):
            overrides["allow_link_local"] = env["MOMA_ALLOW_LINK_LOCAL"].lower() in ("1", "true", "yes")
        return replace(config, **overrides)


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number
