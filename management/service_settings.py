"""A service's desired settings: a create or update body, checked against the compute it
runs on, with defaults filled in, in the API's own shape (what GET returns).

The autoscaler's documented defaults are min 1, max 10, refresh 1 s, target 70 %. It is
on by default where it can run (a swarm compute, no ``numReplicas`` given) and off on
``local``, which runs one container per service: the original CLI's minimal body (an
empty ``autoScaler``) is accepted everywhere.
"""

from __future__ import annotations

from typing import Any

from .errors import Detail, ValidationFailed
from .quantities import parse_cpu, parse_memory

AUTOSCALER_DEFAULTS = {"minReplicas": 1, "maxReplicas": 10, "refreshPeriodInSeconds": 1, "targetUtilization": 70}
SETTINGS_KEYS = ("numReplicas", "autoScaler", "containerResourceReservation", "maxConcurrentRequestsPerContainer",
                 "appInsightsEnabled", "dataCollection")


def desired_settings(body: dict[str, Any], compute_kind: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``body`` over ``previous`` (an update changes only what it names) and check it."""
    merged = {key: value for key, value in (previous or {}).items()}
    for key in SETTINGS_KEYS:
        if key in body:
            merged[key] = body[key]
    if "numReplicas" in body and "autoScaler" not in body and previous:
        merged["autoScaler"] = {**merged.get("autoScaler", {}), "autoscaleEnabled": False}
    problems: list[Detail] = []
    settings = {
        "numReplicas": merged.get("numReplicas"),
        "autoScaler": _autoscaler(merged, body, compute_kind, problems),
        "containerResourceReservation": _reservation(merged.get("containerResourceReservation") or {}, problems),
        "maxConcurrentRequestsPerContainer": merged.get("maxConcurrentRequestsPerContainer"),
        "appInsightsEnabled": bool(merged.get("appInsightsEnabled", False)),
        "dataCollection": _data_collection(merged.get("dataCollection") or {}, problems),
    }
    _check_replicas(settings, compute_kind, problems)
    if problems:
        raise ValidationFailed(problems[0].message, problems)
    return {key: value for key, value in settings.items() if value is not None}


def replicas_of(settings: dict[str, Any]) -> int:
    """How many replicas to start with: numReplicas, else the autoscaler's minimum (at least 1)."""
    if settings.get("autoScaler", {}).get("autoscaleEnabled"):
        return max(1, int(settings["autoScaler"]["minReplicas"]))
    replicas = settings.get("numReplicas")
    return 1 if replicas is None else int(replicas)


def _autoscaler(merged: dict[str, Any], body: dict[str, Any], compute_kind: str,
                problems: list[Detail]) -> dict[str, Any]:
    given = merged.get("autoScaler") or {}
    enabled = given.get("autoscaleEnabled")
    if enabled is None:
        enabled = compute_kind == "swarm" and merged.get("numReplicas") is None
    autoscaler = {"autoscaleEnabled": bool(enabled), **{k: given.get(k, v) for k, v in AUTOSCALER_DEFAULTS.items()}}
    if autoscaler["minReplicas"] > autoscaler["maxReplicas"]:
        problems.append(Detail("InvalidField", f"autoScaler.minReplicas ({autoscaler['minReplicas']}) is more than "
                                               f"autoScaler.maxReplicas ({autoscaler['maxReplicas']})"))
    if autoscaler["autoscaleEnabled"] and merged.get("numReplicas") is not None:
        problems.append(Detail("InvalidField", "numReplicas cannot be given while the autoscaler is enabled; "
                                               "set autoScaler.autoscaleEnabled to false or drop numReplicas"))
    return autoscaler


def _reservation(reservation: dict[str, Any], problems: list[Detail]) -> dict[str, str] | None:
    for key, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
        if key in reservation:
            try:
                parse(str(reservation[key]))
            except ValueError as exc:
                problems.append(Detail("InvalidField", f"containerResourceReservation.{key}: {exc}"))
    return {key: str(value) for key, value in reservation.items()} or None


def _data_collection(collection: dict[str, Any], problems: list[Detail]) -> dict[str, bool]:
    if collection.get("eventHubEnabled"):
        problems.append(Detail("NotSupported", "dataCollection.eventHubEnabled: sending model data to an event hub "
                                               "is not supported; use storageEnabled"))
    return {"storageEnabled": bool(collection.get("storageEnabled", False)),
            "eventHubEnabled": bool(collection.get("eventHubEnabled", False))}


def _check_replicas(settings: dict[str, Any], compute_kind: str, problems: list[Detail]) -> None:
    if settings.get("numReplicas") == 0:
        problems.append(Detail("InvalidField", "numReplicas 0 would leave nothing to answer; delete the service "
                                               "instead"))
    if compute_kind != "local":
        return
    if settings["autoScaler"]["autoscaleEnabled"]:
        problems.append(Detail("NeedsSwarm", "autoscaling needs a swarm compute (moma compute add --type swarm); "
                                             "the local compute runs one container per service"))
    if (settings.get("numReplicas") or 1) > 1:
        problems.append(Detail("NeedsSwarm", f"numReplicas {settings['numReplicas']} needs a swarm compute "
                                             "(moma compute add --type swarm); the local compute runs one container"))
