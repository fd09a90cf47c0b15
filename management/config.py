"""Settings of the management service: defaults, then ``MOMA_*`` environment, then
what a caller (a test, a CLI flag) passes."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from builder.config import BuilderConfig

SUPPORTED_API_VERSIONS = ("2017-09-01-preview", "2018-04-01-preview")


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".moma")
    database_url: str = ""  # default: SQLite in home
    auth: bool = True
    max_body_bytes: int = 1024 * 1024
    max_artifact_bytes: int = 10 * 1024**3
    registry: str = ""  # push images here when set, e.g. 127.0.0.1:5000
    image_labels: str = ""  # extra labels on every image built: "key=value,key2=value2"
    worker_lease_seconds: float = 30.0
    worker_poll_seconds: float = 1.0
    worker_max_attempts: int = 3
    # Operations one worker runs at once: image builds, and service operations in a
    # lane of their own (they never wait behind builds)
    worker_build_slots: int = 2
    worker_service_slots: int = 4
    # Operations of one account running at once, on all workers together
    account_build_slots: int = 1
    account_service_slots: int = 2
    secret_key_path: str = ""  # default: $MOMA_HOME/secret.key
    reconcile_seconds: float = 5.0
    service_ready_seconds: float = 120.0  # a service not ready by then is Failed
    scoring_host: str = "127.0.0.1"  # where published scoring ports are bound and announced
    engine_deadline_seconds: float = 5.0  # an API request's engine call (e.g. service logs) answers within this
    docker_timeout_seconds: float = 120.0  # one Docker call of the worker (deploy, reconcile) at most
    service_pids_limit: int = 2048  # processes + threads per scoring container (0: no limit)
    service_default_memory: str = "2Gi"  # memory limit of a scoring container whose service sets none (0: none)
    # Azure Storage connection string (with the account key): services with
    # dataCollection.storageEnabled write there, each into a container of its own, instead
    # of a local directory; the account must be reachable from containers, which get only
    # a SAS on their container (see collection_storage.py), renewed before it expires
    data_collection_storage: str = ""
    data_collection_sas_seconds: float = 7 * 24 * 3600

    # The API's address as its clients reach it, e.g. https://moma.example: absolute links
    # (nextLink, imageBuildLogUri) start with it. Empty: host-relative links. Links never
    # come from a request's Host header. `moma serve` defaults it from its bind address.
    public_url: str = ""

    def __post_init__(self) -> None:
        if self.public_url:
            _check_public_url(self.public_url)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'moma.db'}"

    @property
    def artifact_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def secret_key_file(self) -> Path:
        return Path(self.secret_key_path) if self.secret_key_path else self.home / "secret.key"

    @property
    def services_dir(self) -> Path:
        return self.home / "services"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    def extra_image_labels(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.image_labels.split(",") if item.strip())
        return {key.strip(): value for key, _, value in pairs}

    def builder_config(self) -> BuilderConfig:
        return replace(BuilderConfig.from_env(), home=self.home)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(f"MOMA_{item.name.upper()}")
            if raw:
                values[item.name] = _convert(item.name, raw, cls.__dataclass_fields__[item.name].type)
        unknown = set(overrides) - {item.name for item in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**(values | overrides))

    def as_env(self) -> dict[str, str]:
        """The environment that makes ``Settings.load()`` in another process return these settings."""
        return {f"MOMA_{item.name.upper()}": str(getattr(self, item.name)) for item in fields(self)}


def _check_public_url(url: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if (parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname
            or "@" in parts.netloc or "?" in url or "#" in url or any(ord(c) < 0x21 or ord(c) == 0x7f for c in url)):
        raise ValueError(f"MOMA_PUBLIC_URL={url!r} is not http(s)://host[:port][/path] (no user, query or fragment)")


def _convert(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if "Path" in kind:
            return Path(raw).expanduser()
        if "bool" in kind:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if "float" in kind:
            return float(raw)
        if "int" in kind:
            return int(raw)
    except ValueError:
        raise ValueError(f"MOMA_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
