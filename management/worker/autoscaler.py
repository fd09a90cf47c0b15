"""The autoscaler: how many replicas a service on a swarm compute should run.

The worker's reconciler calls :meth:`Autoscaler.observe` for each live service whose
``autoScaler.autoscaleEnabled`` is true; at most once per ``refreshPeriodInSeconds``
it reads the load from the runtime's ``/metrics`` and scales the service.

The rule (:func:`decide`, plain inputs, no I/O):

- *load* = the sum over the service's replicas of ``moma_scoring_in_flight +
  moma_queue_depth`` (requests in ``run()`` and requests waiting for a slot);
- one replica should carry ``capacity × targetUtilization / 100`` of it, where
  capacity is ``maxConcurrentRequestsPerContainer`` — **1 when it is unset** (the
  runtime then admits without limit, so there is no better measure of a container's
  capacity than one request at a time);
- wanted = ceil(load / that), clamped to [minReplicas, maxReplicas];
- more than running → scale up at once, to the wanted number;
- fewer → scale down by one replica, and only after the load has asked for fewer in
  ``down_after`` consecutive periods (each further step waits as long again), so a
  lull between bursts does not flap the service;
- a replica count outside the bounds (bounds changed) is brought inside at once.

Sampling (:class:`MetricsSampler`): connections through the published port are
spread over the replicas by the engine, so /metrics is asked with fresh connections
until every running replica's ``moma_instance`` has answered (or a bounded number of
tries); a replica not reached is counted at the mean of those that were.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import requests

from ..engines import Endpoint, Engine, EngineError

log = logging.getLogger("moma.worker")

DOWN_AFTER_PERIODS = 3


@dataclass(frozen=True)
class Policy:
    min_replicas: int
    max_replicas: int
    target_utilization: float  # percent of a replica's capacity
    capacity: int  # concurrent requests per replica
    refresh_seconds: float

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "Policy":
        """From a service's settings in the API's shape (``autoScaler`` and
        ``maxConcurrentRequestsPerContainer``)."""
        scaler = settings.get("autoScaler") or {}
        low = max(1, int(scaler.get("minReplicas") or 1))
        return cls(min_replicas=low, max_replicas=max(low, int(scaler.get("maxReplicas") or low)),
                   target_utilization=float(scaler.get("targetUtilization") or 70),
                   capacity=max(1, int(settings.get("maxConcurrentRequestsPerContainer") or 1)),
                   refresh_seconds=max(0.1, float(scaler.get("refreshPeriodInSeconds") or 1)))

    @property
    def load_per_replica(self) -> float:
        return self.capacity * self.target_utilization / 100.0


@dataclass(frozen=True)
class Decision:
    replicas: int
    load: float
    wanted: int  # what the load alone asks for, within the bounds
    low_periods: int  # consecutive periods the load has asked for fewer replicas
    reason: str


def decide(policy: Policy, current: int, load: float, low_periods: int = 0,
           down_after: int = DOWN_AFTER_PERIODS) -> Decision:
    """How many replicas to run, from the current count, the load now, and how many
    periods in a row before this one the load asked for fewer."""
    wanted = math.ceil(load / policy.load_per_replica - 1e-9) if load > 0 else 0
    wanted = min(policy.max_replicas, max(policy.min_replicas, wanted))
    if current < policy.min_replicas or current > policy.max_replicas:
        bounded = min(policy.max_replicas, max(policy.min_replicas, current))
        return Decision(bounded, load, wanted, 0, f"{current} replicas is outside [{policy.min_replicas}, "
                                                  f"{policy.max_replicas}]")
    if wanted > current:
        return Decision(wanted, load, wanted, 0, f"load {load:g} needs {wanted} replicas")
    if wanted < current:
        if low_periods + 1 >= down_after:
            return Decision(current - 1, load, wanted, 0,
                            f"load {load:g} has needed {wanted} replicas for {low_periods + 1} periods")
        return Decision(current, load, wanted, low_periods + 1, "waiting for the load to stay low")
    return Decision(current, load, wanted, 0, "steady")


@dataclass(frozen=True)
class InstanceLoad:
    instance: str
    in_flight: float
    queued: float

    @property
    def load(self) -> float:
        return self.in_flight + self.queued


_SAMPLE = re.compile(r'^(moma_instance\{instance="(?P<instance>(?:[^"\\]|\\.)*)"\}|moma_scoring_in_flight|'
                     r'moma_queue_depth)(?:\{\})?\s+(?P<value>\S+)', re.MULTILINE)


def parse_metrics(text: str) -> InstanceLoad | None:
    """The instance and its load from one /metrics answer; None when it has no instance."""
    instance, in_flight, queued = None, 0.0, 0.0
    for match in _SAMPLE.finditer(text):
        name = match.group(1)
        if name.startswith("moma_instance"):
            instance = match.group("instance")
        elif name == "moma_scoring_in_flight":
            in_flight = float(match.group("value"))
        else:
            queued = float(match.group("value"))
    return None if instance is None else InstanceLoad(instance, in_flight, queued)


class Sampler(Protocol):
    def sample(self, endpoint: Endpoint, key: str, replicas: int) -> list[InstanceLoad]: ...


class MetricsSampler:
    """Reads /metrics through the published port until each replica has answered."""

    def __init__(self, timeout: float = 2.0, tries_per_replica: int = 4) -> None:
        self.timeout = timeout
        self.tries_per_replica = tries_per_replica

    def sample(self, endpoint: Endpoint, key: str, replicas: int) -> list[InstanceLoad]:
        seen: dict[str, InstanceLoad] = {}
        for _ in range(max(1, replicas) * self.tries_per_replica + 2):
            try:
                answer = requests.get(f"{endpoint.base_url}/metrics", timeout=self.timeout,
                                      headers={"Authorization": f"Bearer {key}", "Connection": "close"})
            except requests.RequestException as exc:
                log.debug("autoscaler: /metrics at %s: %s", endpoint.base_url, exc)
                continue
            if answer.status_code != 200:
                log.warning("autoscaler: /metrics at %s answered %d", endpoint.base_url, answer.status_code)
                continue
            sample = parse_metrics(answer.text)
            if sample is not None:
                seen.setdefault(sample.instance, sample)
            if len(seen) >= replicas:
                break
        return list(seen.values())


def total_load(samples: list[InstanceLoad], replicas: int) -> float:
    """Load of the whole service: the replicas not sampled count at the mean."""
    if not samples:
        return 0.0
    measured = sum(sample.load for sample in samples)
    return measured * max(replicas, len(samples)) / len(samples)


class Autoscaler:
    """Per-service memory (last run, low periods) and the scaling itself; ``record``
    is told every replica count it sets (the worker stores it on the service)."""

    def __init__(self, record: Callable[[str, int], None] = lambda service_id, replicas: None,
                 sampler: Sampler | None = None, clock: Callable[[], float] = time.monotonic,
                 down_after: int = DOWN_AFTER_PERIODS) -> None:
        self.record = record
        self.sampler = sampler or MetricsSampler()
        self.clock = clock
        self.down_after = down_after
        self._last_run: dict[str, float] = {}
        self._low_periods: dict[str, int] = {}
        self._lock = threading.Lock()

    def observe(self, service_id: str, engine: Engine, settings: dict[str, Any], key: str) -> Decision | None:
        """Scale the service if its load asks for it; None when it is not yet time, or
        the engine cannot say where the service is, or no replica answered."""
        policy = Policy.from_settings(settings)
        now = self.clock()
        with self._lock:
            if now - self._last_run.get(service_id, -math.inf) < policy.refresh_seconds:
                return None
            self._last_run[service_id] = now
        status = engine.status(service_id)
        if not status.present or status.endpoint is None:
            return None
        samples = self.sampler.sample(status.endpoint, key, max(1, status.running))
        if not samples:
            log.warning("autoscaler: no replica of %s answered /metrics", service_id)
            return None
        decision = decide(policy, status.desired, total_load(samples, status.running),
                          self._low_periods.get(service_id, 0), self.down_after)
        self._low_periods[service_id] = decision.low_periods
        if decision.replicas != status.desired:
            try:
                engine.scale(service_id, decision.replicas)
            except EngineError as exc:
                log.warning("autoscaler: scaling %s to %d failed: %s", service_id, decision.replicas, exc.message)
                return None
            log.info("autoscaler: %s %d → %d replicas (%s)", service_id, status.desired, decision.replicas,
                     decision.reason)
            self.record(service_id, decision.replicas)
        return decision

    def forget(self, service_id: str) -> None:
        """The service is gone or no longer autoscaled."""
        with self._lock:
            self._last_run.pop(service_id, None)
            self._low_periods.pop(service_id, None)
