"""A scoring container's environment, every variable of it, in one place (the names are
the image contract's, ``runtime/contract.py``).

Two parts: what the service's settings tell the runtime (:func:`service_environment`,
the same in every container of a generation, carried by :attr:`Workload.env`), and what
the engine tells each container about where it runs (:func:`container_environment`
with a :class:`Placement`). The engine's part always wins: a service cannot name its
containers, move their keys file or their port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime import contract

from ..quantities import parse_cpu
from ..service_telemetry import Destination

# Set by the engine alone, whatever the service's part holds.
ENGINE_VARIABLES = frozenset({
    contract.ENV_KEYS_FILE, contract.ENV_INSTANCE, contract.ENV_INSTANCE_ID, contract.ENV_PORT, contract.ENV_BIND,
    contract.ENV_REUSE_PORT, contract.ENV_DC_LOCAL_DIR})


def service_environment(settings: Mapping[str, Any], *, service_name: str, image_id: str,
                        storage_url: str | None = None, telemetry: Destination | None = None,
                        service_id: str | None = None) -> dict[str, str]:
    """What the runtime reads of the service's settings (the API's shape), the names its
    collected rows are filed under, for blob storage the SAS URL on the service's own
    container (never the account's connection string), and where its telemetry goes
    (``service_telemetry.destination``; nothing of it when off)."""
    env = {contract.ENV_APP_INSIGHTS_ENABLED: _flag(settings.get("appInsightsEnabled"))}
    if settings.get("maxConcurrentRequestsPerContainer"):
        env[contract.ENV_MAX_CONCURRENT_REQUESTS] = str(settings["maxConcurrentRequestsPerContainer"])
    collection = settings.get("dataCollection") or {}
    env[contract.ENV_DC_STORAGE_ENABLED] = _flag(collection.get("storageEnabled"))
    reservation = settings.get("containerResourceReservation") or {}
    if "cpu" in reservation:
        cores = parse_cpu(reservation["cpu"]).to_integral_value(rounding="ROUND_CEILING")
        env[contract.ENV_WORKERS] = str(max(1, int(cores)))
    env.update({contract.ENV_SERVICE_NAME: service_name, contract.ENV_IMAGE_ID: image_id})
    if storage_url is not None:
        env[contract.ENV_DC_STORAGE] = storage_url
    if telemetry is not None and settings.get("appInsightsEnabled"):
        env.update(_telemetry_environment(telemetry, service_id))
    return env


def _telemetry_environment(telemetry: Destination, service_id: str | None) -> dict[str, str]:
    values = {contract.ENV_OTLP_ENDPOINT: telemetry.otlp_endpoint, contract.ENV_OTLP_HEADERS: telemetry.otlp_headers,
              contract.ENV_APPINSIGHTS_CONNECTION_STRING: telemetry.connection_string,
              contract.ENV_TELEMETRY_REQUEST_BODY: "true" if telemetry.request_body else "",
              contract.ENV_TRACES_SAMPLER: telemetry.sampler,
              contract.ENV_SERVICE_ID: service_id or ""}
    return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class Placement:
    """Where one container runs, as its engine tells it."""

    instance: str | None = None  # its name; None: the runtime names itself after the host
    instance_id: str | None = None  # what /readyz calls it; None: a random id of its own
    port: int | None = None  # None: the contract's port
    bind: str | None = None  # the address to listen on; None: every address
    reuse_port: bool = False  # other containers listen on the same port (SO_REUSEPORT)
    local_sink: bool = False  # collected rows go to the data directory the engine mounts


def container_environment(service_env: Mapping[str, str], placement: Placement) -> dict[str, str]:
    """The whole environment of a container: the service's part, then the engine's."""
    env = {key: value for key, value in service_env.items() if key not in ENGINE_VARIABLES}
    env[contract.ENV_KEYS_FILE] = contract.KEYS_FILE
    optional = {contract.ENV_PORT: None if placement.port is None else str(placement.port),
                contract.ENV_BIND: placement.bind,
                contract.ENV_REUSE_PORT: "true" if placement.reuse_port else None,
                contract.ENV_INSTANCE: placement.instance,
                contract.ENV_INSTANCE_ID: placement.instance_id,
                contract.ENV_DC_LOCAL_DIR: contract.DATA_MOUNT if placement.local_sink else None}
    env.update({key: value for key, value in optional.items() if value is not None})
    return env


def _flag(value: Any) -> str:
    return str(bool(value)).lower()
