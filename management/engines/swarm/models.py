"""What the swarm engine reads of a service and of its tasks, by name, over the API's
dicts (as docker-py's ``models/services.py`` does over ``attrs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from runtime import contract

from .. import LABEL_GENERATION
from .definition import LABEL_REVISION, Definition

ACTIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")


class SwarmService:
    """One swarm service (a docker-py ``Service``) as swarm last described it."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def id(self) -> str:
        return str(self.model.id)

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def definition(self) -> Definition:
        return Definition(self.model.attrs["Spec"])

    @property
    def version(self) -> int:
        """What an update must name: swarm refuses one made from an older read."""
        return int(self.model.attrs["Version"]["Index"])

    @property
    def update_state(self) -> str | None:
        return (self.model.attrs.get("UpdateStatus") or {}).get("State")

    @property
    def update_message(self) -> str:
        return (self.model.attrs.get("UpdateStatus") or {}).get("Message", "")

    @property
    def published_port(self) -> int | None:
        """The port swarm's routing mesh publishes the runtime's port on (ingress mode)."""
        for port in (self.model.attrs.get("Endpoint") or {}).get("Ports") or []:
            if port.get("TargetPort") == contract.PORT and port.get("PublishedPort"):
                return int(port["PublishedPort"])
        return None

    def logs(self, tail: int) -> str:
        return b"".join(self.model.logs(stdout=True, stderr=True, tail=tail, follow=False)).decode(errors="replace")


@dataclass(frozen=True)
class Task:
    """One task of a service (an item of the low-level task list)."""

    raw: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw["ID"])

    @property
    def state(self) -> str:
        return str(self.raw["Status"]["State"])

    @property
    def error(self) -> str | None:
        """Swarm's own word on why the task failed."""
        return self.raw["Status"].get("Err")

    @property
    def container_id(self) -> str | None:
        return (self.raw["Status"].get("ContainerStatus") or {}).get("ContainerID")

    @property
    def revision(self) -> str | None:
        return self._label(LABEL_REVISION)

    @property
    def generation(self) -> int:
        return int(self._label(LABEL_GENERATION) or 0)

    @property
    def running(self) -> bool:
        return self.state == "running" and self.raw.get("DesiredState") == "running"

    @property
    def active(self) -> bool:
        """Running, or on its way to."""
        return self.state in ACTIVE

    def _label(self, key: str) -> str | None:
        return ((self.raw.get("Spec") or {}).get("ContainerSpec", {}).get("Labels") or {}).get(key)


def newest_first(tasks: Iterable[Task]) -> list[Task]:
    return sorted(tasks, key=lambda task: task.raw.get("UpdatedAt") or "", reverse=True)
