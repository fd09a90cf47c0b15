"""The autoscaler's rule and its sampling, with plain inputs and hand-written fakes
(no Docker): the real thing on a swarm is in ``test_autoscaler_swarm.py``."""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from management.engines import Endpoint, EngineError, EngineStatus
from management.worker.autoscaler import (
    Autoscaler,
    InstanceLoad,
    MetricsSampler,
    Policy,
    decide,
    parse_metrics,
    total_load,
)

POLICY = Policy(min_replicas=1, max_replicas=3, target_utilization=70, capacity=1, refresh_seconds=1)


def test_policy_from_the_service_settings():
    policy = Policy.from_settings({"autoScaler": {"autoscaleEnabled": True, "minReplicas": 2, "maxReplicas": 6,
                                              "refreshPeriodInSeconds": 5, "targetUtilization": 50},
                               "maxConcurrentRequestsPerContainer": 4})
    assert policy == Policy(2, 6, 50.0, 4, 5.0)
    assert policy.load_per_replica == 2.0
    default = Policy.from_settings({"autoScaler": {"autoscaleEnabled": True}})
    assert default == Policy(1, 1, 70.0, 1, 1.0), "an unset maxConcurrentRequestsPerContainer counts as 1"


@pytest.mark.parametrize("load, wanted", [(0, 1), (0.5, 1), (0.7, 1), (0.71, 2), (1.4, 2), (1.41, 3), (9, 3)])
def test_wanted_replicas_carry_the_load_at_the_target_utilization(load, wanted):
    decision = decide(POLICY, current=1, load=load)
    assert decision.wanted == wanted
    assert decision.replicas == wanted, "up at once"


def test_scale_up_goes_straight_to_what_the_load_needs():
    policy = Policy(1, 10, 50, 2, 1)  # one replica carries 1 request
    assert decide(policy, current=2, load=7).replicas == 7


def test_scale_down_one_step_after_the_load_stayed_low():
    low, replicas, steps = 0, 3, []
    for _ in range(7):
        decision = decide(POLICY, current=replicas, load=0, low_periods=low, down_after=3)
        low, replicas = decision.low_periods, decision.replicas
        steps.append(replicas)
    assert steps == [3, 3, 2, 2, 2, 1, 1]


def test_a_busy_period_resets_the_wait_before_scaling_down():
    decision = decide(POLICY, current=3, load=0, low_periods=1, down_after=3)
    assert (decision.replicas, decision.low_periods) == (3, 2)
    decision = decide(POLICY, current=3, load=1.5, low_periods=decision.low_periods, down_after=3)
    assert (decision.replicas, decision.low_periods) == (3, 0)


def test_a_count_outside_the_bounds_comes_back_at_once():
    assert decide(POLICY, current=5, load=0, low_periods=0).replicas == 3
    assert decide(Policy(2, 4, 70, 1, 1), current=1, load=0).replicas == 2


METRICS = '''# HELP moma_instance Always 1; names the container these totals are of.
# TYPE moma_instance gauge
moma_instance{instance="svc.2.x\\"y"} 1.0
# HELP moma_queue_wait_seconds Time waited for a slot.
# TYPE moma_queue_wait_seconds histogram
moma_queue_wait_seconds_bucket{le="0.005"} 3.0
# HELP moma_scoring_in_flight run() calls holding an admission slot.
# TYPE moma_scoring_in_flight gauge
moma_scoring_in_flight 2.0
# HELP moma_queue_depth Requests waiting for a slot.
# TYPE moma_queue_depth gauge
moma_queue_depth 1.0
moma_requests_in_flight 4.0
'''


def test_parse_metrics_reads_the_instance_and_its_load():
    assert parse_metrics(METRICS) == InstanceLoad('svc.2.x\\"y', 2.0, 1.0)
    assert parse_metrics("moma_scoring_in_flight 1.0\n") is None


def test_parse_metrics_reads_what_the_runtime_renders():
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest

    from runtime.metrics import _Collector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector([0.0] * 4096, 3, 2, instance="c0ffee"))
    assert parse_metrics(generate_latest(registry).decode()) == InstanceLoad("c0ffee", 3.0, 2.0)


def test_total_load_counts_replicas_not_reached_at_the_mean():
    samples = [InstanceLoad("a", 2, 0), InstanceLoad("b", 0, 1)]
    assert total_load(samples, 2) == 3
    assert total_load(samples, 4) == 6
    assert total_load([], 3) == 0


class FakeEngine:
    def __init__(self, replicas: int = 1, endpoint: Endpoint | None = Endpoint("127.0.0.1", 1)) -> None:
        self.replicas = replicas
        self.endpoint = endpoint
        self.scaled: list[int] = []

    def status(self, service_id: str) -> EngineStatus:
        return EngineStatus(present=True, running=self.replicas, desired=self.replicas, generation=1,
                            endpoint=self.endpoint)

    def scale(self, service_id: str, replicas: int) -> None:
        if replicas > 5:
            raise EngineError("no room")
        self.scaled.append(replicas)
        self.replicas = replicas


class FakeSampler:
    def __init__(self) -> None:
        self.load = 0.0
        self.calls = 0

    def sample(self, endpoint: Endpoint, key: str, replicas: int) -> list[InstanceLoad]:
        self.calls += 1
        return [InstanceLoad(f"i{n}", self.load / replicas, 0) for n in range(replicas)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SPEC = {"autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 3, "refreshPeriodInSeconds": 2,
                       "targetUtilization": 70}}


def test_observe_scales_at_most_once_per_refresh_period_and_records_it():
    engine, sampler, clock, recorded = FakeEngine(), FakeSampler(), Clock(), []
    scaler = Autoscaler(lambda service_id, replicas: recorded.append((service_id, replicas)), sampler, clock)

    sampler.load = 2
    assert scaler.observe("s1", engine, SPEC, "key").replicas == 3
    assert engine.scaled == [3] and recorded == [("s1", 3)]
    clock.now += 1.9
    assert scaler.observe("s1", engine, SPEC, "key") is None and sampler.calls == 1, "not due yet"

    sampler.load = 0
    replicas = []
    for _ in range(8):
        clock.now += 2
        replicas.append(scaler.observe("s1", engine, SPEC, "key").replicas)
    assert replicas == [3, 3, 2, 2, 2, 1, 1, 1]
    assert recorded == [("s1", 3), ("s1", 2), ("s1", 1)]


def test_observe_leaves_a_service_alone_when_it_cannot_measure_or_scale():
    sampler, clock = FakeSampler(), Clock()
    scaler = Autoscaler(sampler=sampler, clock=clock)
    assert scaler.observe("s1", FakeEngine(endpoint=None), SPEC, "key") is None
    assert sampler.calls == 0

    big = {"autoScaler": {**SPEC["autoScaler"], "maxReplicas": 9}}
    engine = FakeEngine()
    sampler.load = 8
    clock.now += 5
    assert scaler.observe("s1", engine, big, "key") is None, "the engine refused: nothing recorded"
    assert engine.replicas == 1


class _Metrics(BaseHTTPRequestHandler):
    instances = itertools.cycle(["a", "b", "c"])
    keys: list[str] = []

    def do_GET(self) -> None:
        type(self).keys.append(self.headers.get("Authorization", ""))
        body = (f'moma_instance{{instance="{next(self.instances)}"}} 1.0\n'
                "moma_scoring_in_flight 1.0\nmoma_queue_depth 0.5\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_sampler_asks_until_every_replica_answered():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = Endpoint("127.0.0.1", server.server_address[1])
        samples = MetricsSampler().sample(endpoint, "k3y", replicas=3)
        assert sorted(sample.instance for sample in samples) == ["a", "b", "c"]
        assert total_load(samples, 3) == 4.5
        assert set(_Metrics.keys) == {"Bearer k3y"}
        assert len(MetricsSampler(tries_per_replica=1).sample(endpoint, "k3y", replicas=5)) == 3, "bounded"
    finally:
        server.shutdown()
        server.server_close()
