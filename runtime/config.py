"""Settings of the scoring runtime: defaults, then the environment, then a test config.

Keys are the environment variable names (``MOMA_DRIVER``, ``MAX_QUEUE``, ...), so a
test passes ``create_app({"MOMA_DRIVER": "ok.py"})`` with the same names an image
sets. Every variable is documented in ``runtime/README.md``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import tempfile
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

DEFAULT_SCHEMA = "service_schema.json"
RUNTIME_TYPES = ("Python", "SparkPython")
INSTANCE_ID = "MOMA_INSTANCE_ID"


def parse_int(name: str, raw: Any, default: int, minimum: int = 0) -> int:
    """An integer setting; empty or missing means ``default``."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_float(name: str, raw: Any, default: float) -> float:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return value


def parse_bool(name: str, raw: Any, default: bool) -> bool:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    app_root: str
    driver: str
    schema: str | None
    keys_file: str | None
    max_concurrent: int  # 0 = no admission limit
    max_queue: int
    max_queue_wait_ms: int
    scoring_timeout_ms: int  # 0 = no timeout: run() is called inline
    state_dir: str
    keys_check_interval_s: float = 1.0
    max_body_bytes: int = 100 * 1024 * 1024
    instance: str = ""  # names this container in /metrics and logs (MOMA_INSTANCE, else the host name)
    instance_id: str = ""  # tells it apart in /readyz and /livez without naming it (MOMA_INSTANCE_ID)
    runtime_type: str = "Python"  # MOMA_RUNTIME_TYPE: SparkPython starts a SparkSession per worker
    service_name: str | None = None  # MOMA_SERVICE_NAME (set by the engines): an OIP model name

    @property
    def driver_path(self) -> str:
        return os.path.join(self.app_root, self.driver)

    @property
    def schema_path(self) -> str | None:
        return None if self.schema is None else os.path.join(self.app_root, self.schema)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> "Settings":
        merged: dict[str, Any] = dict(os.environ if environ is None else environ)
        merged.update(overrides or {})

        app_root = os.path.abspath(merged.get("MOMA_APP_ROOT") or os.getcwd())
        driver = merged.get("MOMA_DRIVER") or "score.py"
        schema = merged.get("MOMA_SCHEMA") or None
        if schema is None and os.path.isfile(os.path.join(app_root, DEFAULT_SCHEMA)):
            schema = DEFAULT_SCHEMA
        runtime_type = (merged.get("MOMA_RUNTIME_TYPE") or "Python").strip()
        if runtime_type not in RUNTIME_TYPES:
            raise ConfigError(f"MOMA_RUNTIME_TYPE must be one of {', '.join(RUNTIME_TYPES)}, "
                              f"got {runtime_type!r}")
        max_concurrent = parse_int("MAX_CONCURRENT_REQUESTS",
                                   merged.get("MAX_CONCURRENT_REQUESTS"), 0)
        return cls(
            app_root=app_root,
            driver=driver,
            schema=schema,
            keys_file=merged.get("MOMA_KEYS_FILE") or None,
            max_concurrent=max_concurrent,
            max_queue=parse_int("MAX_QUEUE", merged.get("MAX_QUEUE"), 2 * max_concurrent),
            max_queue_wait_ms=parse_int("MAX_QUEUE_WAIT_MS", merged.get("MAX_QUEUE_WAIT_MS"), 500),
            scoring_timeout_ms=parse_int("SCORING_TIMEOUT_MS", merged.get("SCORING_TIMEOUT_MS"), 0),
            state_dir=merged.get("MOMA_STATE_DIR") or tempfile.gettempdir(),
            keys_check_interval_s=parse_float("MOMA_KEYS_CHECK_INTERVAL_S",
                                              merged.get("MOMA_KEYS_CHECK_INTERVAL_S"), 1.0),
            max_body_bytes=parse_int("MOMA_MAX_BODY_BYTES", merged.get("MOMA_MAX_BODY_BYTES"),
                                     100 * 1024 * 1024, minimum=1),
            instance=merged.get("MOMA_INSTANCE") or socket.gethostname(),
            instance_id=merged.get(INSTANCE_ID) or secrets.token_hex(8),
            runtime_type=runtime_type,
            service_name=(merged.get("MOMA_SERVICE_NAME") or "").strip() or None,
        )
