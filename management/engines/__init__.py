"""Where services run. Service logic talks only to the :class:`Engine` protocol, handing
it a :class:`Workload`; ``local`` (containers on one Docker engine) and ``swarm`` (Docker
Swarm services) implement it over the Docker SDK, and one contract test suite runs
against both. Containers are run by the image contract (``runtime/contract.py``).

Nothing above this package imports ``docker``: engine failures leave as EngineError,
mapped from the SDK's errors in one place (``docker_errors.py``).

EngineError                  the engine could not do what was asked (it said why)
└── EngineUnavailable   503  no engine answers at the compute's address
    └── EngineTimeout   504  the engine did not answer in time
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import MomaError

LABEL_SERVICE = "moma.service-id"
LABEL_ACCOUNT = "moma.account"
LABEL_GENERATION = "moma.generation"
LABEL_ROLE = "moma.role"
LABEL_INSTALLATION = "moma.installation"  # engines label all they create with it and see only their own
LABEL_IMAGE = "moma.image"  # the image reference a service named; its containers run the image it resolved to
_INSTANCE_ID_KEY = secrets.token_bytes(16)  # per process: no id can be derived from a name


class EngineError(MomaError):
    """The engine could not do what was asked; ``logs`` holds the last lines of the
    container(s) concerned when they explain it."""

    code = "EngineError"

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


class EngineUnavailable(EngineError):
    status = 503
    code = "EngineUnavailable"


class EngineTimeout(EngineUnavailable):
    status = 504
    code = "EngineTimeout"


@dataclass(frozen=True)
class Limits:
    """What every scoring container gets whatever its service asks: a cap on processes
    and threads (a fork bomb stops there), and a memory limit when the service reserves
    none."""

    pids: int | None = None
    memory: int | None = None  # bytes

    def memory_for(self, workload: "Workload") -> int | None:
        return workload.memory or self.memory


@dataclass(frozen=True)
class Workload:
    """Everything an engine needs to run one generation of a service, in our own terms."""

    service_id: str
    name: str  # container / swarm service name
    image: str  # local reference (or registry reference for swarm on several nodes)
    generation: int
    replicas: int = 1
    cpu: float | None = None  # cores
    memory: int | None = None  # bytes
    env: dict[str, str] = field(default_factory=dict)  # the service's part (environment.service_environment)
    key_hashes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # keep this published port when set
    ready_seconds: float = 120.0
    data_dir: Path | None = None  # host directory for collected model data; engines that can mount it

    @property
    def instance(self) -> str:
        return f"{self.name}-g{self.generation}"

    @property
    def instance_id(self) -> str:
        """What the container's /readyz calls it (``MOMA_INSTANCE_ID``): opaque, since
        that route answers anybody and must not name the account or the service."""
        return hmac.new(_INSTANCE_ID_KEY, self.instance.encode(), "sha256").hexdigest()[:16]


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class EngineStatus:
    present: bool  # the engine knows the service at all
    running: int = 0  # replicas running
    desired: int = 0
    generation: int | None = None
    endpoint: Endpoint | None = None
    message: str = ""


class Engine(Protocol):
    def deploy(self, workload: Workload) -> Endpoint:
        """Create or update the service and return once the new generation answers
        ``/readyz`` on the endpoint; the previous generation serves until then."""

    def remove(self, service_id: str) -> None:
        """Remove everything of the service; no error when nothing is left."""

    def status(self, service_id: str) -> EngineStatus: ...

    def logs(self, service_id: str, tail: int = 50) -> str: ...

    def scale(self, service_id: str, replicas: int) -> None: ...

    def set_keys(self, service_id: str, key_hashes: tuple[str, ...], generation: int) -> None:
        """Make the running service accept exactly these key hashes."""

    def service_ids(self) -> set[str]:
        """Ids of every service this engine runs for this installation (to find orphans)."""

    def close(self) -> None:
        """Let go of the connections to the engine."""


def keys_dir(services_dir: Path, service_id: str) -> Path:
    return services_dir / service_id / "keys"


def data_dir(services_dir: Path, service_id: str) -> Path:
    return services_dir / service_id / "data"
