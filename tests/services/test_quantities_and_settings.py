from decimal import Decimal

import pytest

from management.errors import ValidationFailed
from management.quantities import parse_cpu, parse_memory
from management.service_settings import desired_settings, replicas_of


@pytest.mark.parametrize("text, cores", [("0.5", "0.5"), ("500m", "0.5"), ("2", "2"), ("1m", "0.001"),
                                         ("0.25", "0.25"), ("1500m", "1.5")])
def test_cpu_quantities_are_exact(text, cores):
    assert parse_cpu(text) == Decimal(cores)


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.5.2", "0m", "0.0001", "1k", "500M", "1 m"])
def test_bad_cpu_quantities(text):
    with pytest.raises(ValueError, match="cpu"):
        parse_cpu(text)


@pytest.mark.parametrize("text, size", [("1G", 10**9), ("512Mi", 512 * 2**20), ("1e9", 10**9),
                                        ("2048000000", 2048000000), ("1.5Gi", 3 * 2**29),
                                        ("64M", 64 * 10**6), ("1Ti", 2**40)])
def test_memory_quantities_are_exact(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text, fragment", [("1Gb", "not a Kubernetes memory"), ("0.5", "whole number"),
                                            ("1x", "not a Kubernetes memory"), ("1k", "less than the 6Mi"),
                                            ("-1G", "not a Kubernetes memory")])
def test_bad_memory_quantities(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_memory(text)


def test_minimal_body_on_local_means_one_container_no_autoscaling():
    settings = desired_settings({"autoScaler": {}, "containerResourceReservation": {}}, "local")
    assert settings["autoScaler"] == {"autoscaleEnabled": False, "minReplicas": 1, "maxReplicas": 10,
                                  "refreshPeriodInSeconds": 1, "targetUtilization": 70}
    assert "containerResourceReservation" not in settings
    assert replicas_of(settings) == 1


def test_minimal_body_on_swarm_autoscales_with_the_documented_defaults():
    settings = desired_settings({"autoScaler": {}}, "swarm")
    assert settings["autoScaler"]["autoscaleEnabled"] is True
    assert replicas_of(settings) == 1


@pytest.mark.parametrize(
    "body, kind, fragment",
    [
        ({"numReplicas": 3, "autoScaler": {"autoscaleEnabled": True}}, "swarm", "numReplicas cannot be given"),
        ({"autoScaler": {"minReplicas": 5, "maxReplicas": 2}}, "swarm", "minReplicas (5) is more than"),
        ({"numReplicas": 2}, "local", "needs a swarm compute"),
        ({"autoScaler": {"autoscaleEnabled": True}}, "local", "autoscaling needs a swarm compute"),
        ({"numReplicas": 0}, "swarm", "numReplicas 0"),
        ({"containerResourceReservation": {"cpu": "x"}}, "local", "containerResourceReservation.cpu"),
        ({"containerResourceReservation": {"memory": "1Gb"}}, "local", "containerResourceReservation.memory"),
        ({"dataCollection": {"eventHubEnabled": True}}, "local", "event hub is not supported"),
    ],
)
def test_invalid_settings_are_refused_with_the_field(body, kind, fragment):
    with pytest.raises(ValidationFailed) as caught:
        desired_settings(body, kind)
    assert any(fragment in detail.message for detail in caught.value.details)


def test_update_changes_only_what_it_names():
    first = desired_settings({"numReplicas": 2, "maxConcurrentRequestsPerContainer": 4,
                          "containerResourceReservation": {"cpu": "1"}}, "swarm")
    second = desired_settings({"maxConcurrentRequestsPerContainer": 8}, "swarm", previous=first)
    assert second["numReplicas"] == 2 and second["maxConcurrentRequestsPerContainer"] == 8
    assert second["containerResourceReservation"] == {"cpu": "1"}


def test_replicas_given_in_an_update_turn_the_autoscaler_off():
    first = desired_settings({"autoScaler": {"autoscaleEnabled": True, "minReplicas": 2}}, "swarm")
    assert replicas_of(first) == 2
    second = desired_settings({"numReplicas": 3}, "swarm", previous=first)
    assert second["autoScaler"]["autoscaleEnabled"] is False and replicas_of(second) == 3
