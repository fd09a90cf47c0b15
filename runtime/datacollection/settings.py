"""Data collection settings, from the environment (every variable is in runtime/README.md).

The original's switches keep their names and meaning: ``AML_MODEL_DC_STORAGE_ENABLED``
turns storage on, ``AML_MODEL_DC_STORAGE`` is an Azure Storage connection string (or,
a moma addition, the URL of one blob container with a SAS),
``AML_MODEL_DC_DEBUG`` prints rows. moma's additions use the same prefix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from ..config import parse_bool, parse_float, parse_int
from ..errors import ConfigError

CSV, JSONL = "csv", "jsonl"


def _names(raw: Any) -> frozenset[str]:
    return frozenset(part.strip() for part in str(raw or "").split(",") if part.strip())


def _rate(raw: Any) -> float:
    if raw is None or str(raw).strip() == "":
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"AML_MODEL_DC_SAMPLE_RATE must be a number, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"AML_MODEL_DC_SAMPLE_RATE must be between 0 and 1, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class CollectionSettings:
    storage_enabled: bool = False
    connection_string: str | None = None  # the blob sink when set (and storage enabled): or a container SAS URL
    local_dir: str | None = None          # the local sink when set (and storage enabled)
    debug: bool = False                   # print rows to stdout
    auto: bool = True                     # capture every scored request's input and output
    format: str = CSV
    sample_rate: float = 1.0
    drop_fields: frozenset[str] = frozenset()
    hash_fields: frozenset[str] = frozenset()
    hash_salt: str = ""
    max_row_bytes: int = 1024 * 1024
    queue_bytes: int = 32 * 1024 * 1024    # per worker, and again per sink while it is down
    batch_bytes: int = 1024 * 1024         # wake the drainer early at this much
    flush_interval_s: float = 2.0
    shutdown_timeout_s: float = 5.0
    model_name: str | None = None          # which model of model_config_map.json auto rows use
    service_name: str = "unknown"
    image_id: str = ""

    @property
    def storage(self) -> bool:
        """Rows go to storage (a local directory and/or blob storage)."""
        return self.storage_enabled and bool(self.connection_string or self.local_dir)

    @property
    def active(self) -> bool:
        """Anything to do at all; otherwise ``collect()`` is a no-op."""
        return self.storage or self.debug

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> "CollectionSettings":
        env = os.environ if environ is None else environ
        fmt = (env.get("AML_MODEL_DC_FORMAT") or CSV).strip().lower()
        if fmt not in (CSV, JSONL):
            raise ConfigError(f"AML_MODEL_DC_FORMAT must be csv or jsonl, got {fmt!r}")
        return cls(
            storage_enabled=parse_bool("AML_MODEL_DC_STORAGE_ENABLED",
                                       env.get("AML_MODEL_DC_STORAGE_ENABLED"), False),
            connection_string=(env.get("AML_MODEL_DC_STORAGE") or "").strip() or None,
            local_dir=(env.get("AML_MODEL_DC_LOCAL_DIR") or "").strip() or None,
            debug=parse_bool("AML_MODEL_DC_DEBUG", env.get("AML_MODEL_DC_DEBUG"), False),
            auto=parse_bool("AML_MODEL_DC_AUTO", env.get("AML_MODEL_DC_AUTO"), True),
            format=fmt,
            sample_rate=_rate(env.get("AML_MODEL_DC_SAMPLE_RATE")),
            drop_fields=_names(env.get("AML_MODEL_DC_DROP_FIELDS")),
            hash_fields=_names(env.get("AML_MODEL_DC_HASH_FIELDS")),
            hash_salt=env.get("AML_MODEL_DC_HASH_SALT") or "",
            max_row_bytes=parse_int("AML_MODEL_DC_MAX_ROW_BYTES",
                                    env.get("AML_MODEL_DC_MAX_ROW_BYTES"), 1024 * 1024, 64),
            queue_bytes=parse_int("AML_MODEL_DC_QUEUE_BYTES", env.get("AML_MODEL_DC_QUEUE_BYTES"),
                                  32 * 1024 * 1024, 1024),
            batch_bytes=parse_int("AML_MODEL_DC_BATCH_BYTES", env.get("AML_MODEL_DC_BATCH_BYTES"),
                                  1024 * 1024, 1),
            flush_interval_s=parse_float("AML_MODEL_DC_FLUSH_INTERVAL_S",
                                         env.get("AML_MODEL_DC_FLUSH_INTERVAL_S"), 2.0),
            shutdown_timeout_s=parse_float("AML_MODEL_DC_SHUTDOWN_TIMEOUT_S",
                                           env.get("AML_MODEL_DC_SHUTDOWN_TIMEOUT_S"), 5.0),
            model_name=(env.get("AML_MODEL_DC_MODEL_NAME") or "").strip() or None,
            service_name=(env.get("MOMA_SERVICE_NAME") or "").strip() or "unknown",
            image_id=(env.get("MOMA_IMAGE_ID") or "").strip(),
        )
