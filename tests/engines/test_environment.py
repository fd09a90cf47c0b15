"""A scoring container's environment: the service's part from its settings, the
engine's part from where the container runs, and the engine's always winning."""

from __future__ import annotations

from management.engines.environment import ENGINE_VARIABLES, Placement, container_environment, service_environment
from runtime import contract


def test_what_the_service_settings_tell_the_runtime():
    env = service_environment({"maxConcurrentRequestsPerContainer": 4, "appInsightsEnabled": True,
                               "containerResourceReservation": {"cpu": "1.5", "memory": "1Gi"},
                               "dataCollection": {"storageEnabled": True}},
                              service_name="iris", image_id="img-1", storage_url="https://blob.example/c?sig=s")
    assert env == {"AML_APP_INSIGHTS_ENABLED": "true", "MAX_CONCURRENT_REQUESTS": "4",
                   "AML_MODEL_DC_STORAGE_ENABLED": "true", "WORKERS": "2", "MOMA_SERVICE_NAME": "iris",
                   "MOMA_IMAGE_ID": "img-1", "AML_MODEL_DC_STORAGE": "https://blob.example/c?sig=s"}


def test_defaults_when_the_settings_say_little():
    env = service_environment({"containerResourceReservation": {"cpu": "100m"}}, service_name="s", image_id="i")
    assert env == {"AML_APP_INSIGHTS_ENABLED": "false", "AML_MODEL_DC_STORAGE_ENABLED": "false", "WORKERS": "1",
                   "MOMA_SERVICE_NAME": "s", "MOMA_IMAGE_ID": "i"}


def test_a_container_sharing_its_port_is_told_who_it_is():
    placement = Placement(instance="moma-a-s-1-g2", instance_id="0f0f", reuse_port=True, local_sink=True)
    env = container_environment({"A": "1"}, placement)
    assert env == {"A": "1", "MOMA_KEYS_FILE": contract.KEYS_FILE, "REUSE_PORT": "true",
                   "MOMA_INSTANCE": "moma-a-s-1-g2", "MOMA_INSTANCE_ID": "0f0f",
                   "AML_MODEL_DC_LOCAL_DIR": contract.DATA_MOUNT}


def test_the_engine_sets_its_variables_alone():
    forged = {name: "forged" for name in ENGINE_VARIABLES}
    env = container_environment({**forged, "A": "1"}, Placement())
    assert env == {"A": "1", "MOMA_KEYS_FILE": contract.KEYS_FILE}
    placed = container_environment(forged, Placement(port=31000, bind="127.0.0.1", instance="t", instance_id="i"))
    assert (placed["PORT"], placed["MOMA_BIND"], placed["MOMA_INSTANCE"]) == ("31000", "127.0.0.1", "t")
    assert "forged" not in placed.values()
