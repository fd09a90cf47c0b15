"""``appInsightsEnabled`` on the management side: the server's telemetry defaults, a
service's own destination (the ``telemetry`` extension), the 400 when it has nowhere to
send, what the containers are told, the swagger and the CLI's flags."""

from __future__ import annotations

import pytest

from management.cli.service_commands import SERVICE_FIELDS, settings_body
from management.config import Settings
from management.engines.environment import service_environment
from management.service_telemetry import destination
from management.store import Store

from ..helpers import Api, check_error, create_service, service_id_of, succeeded_image

KEY = "00000000-0000-4000-8000-000000000017"
CONNECTION = f"InstrumentationKey={KEY};IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"


def test_enabled_with_nowhere_to_send_is_a_400_saying_what_to_set(api: Api, store: Store):
    image = succeeded_image(api, store)
    response = create_service(api, image["id"], appInsightsEnabled=True)
    assert response.status_code == 400
    message = check_error(response)["message"]
    assert "MOMA_TELEMETRY_OTLP_ENDPOINT" in message and "MOMA_TELEMETRY_CONNECTION_STRING" in message
    assert "telemetry.otlpEndpoint" in message
    plain = service_id_of(api, create_service(api, image["id"], name="plain"))
    assert api.call("PUT", f"/services/{plain}", json={"appInsightsEnabled": True}).status_code == 400
    assert api.ok("GET", f"/services/{plain}")["appInsightsEnabled"] is False


def test_a_service_names_its_own_destination(api: Api, store: Store):
    image = succeeded_image(api, store)
    own = {"otlpEndpoint": "http://collector.example:4318", "requestBody": True}
    service_id = service_id_of(api, create_service(api, image["id"], appInsightsEnabled=True, telemetry=own))
    shown = api.ok("GET", f"/services/{service_id}")
    assert shown["appInsightsEnabled"] is True and shown["telemetry"] == own
    # an update that names other settings keeps it
    api.call("PUT", f"/services/{service_id}", json={"maxConcurrentRequestsPerContainer": 3})
    assert api.ok("GET", f"/services/{service_id}")["telemetry"] == own


@pytest.mark.parametrize("telemetry, fragment", [
    ({"otlpEndpoint": "ftp://collector:4318"}, "telemetry.otlpEndpoint"),
    ({"otlpEndpoint": "http://user@collector:4318"}, "telemetry.otlpEndpoint"),
    ({"connectionString": "InstrumentationKey=nope"}, "InstrumentationKey"),
    ({"connectionString": f"InstrumentationKey={KEY};IngestionEndpoint=file:///etc"}, "ingestionendpoint"),
    ({"sampling": 0.5}, "sampling"),
    ({"followCallerSampling": "yes"}, "followCallerSampling"),
])
def test_a_malformed_destination_is_refused(api: Api, store: Store, telemetry, fragment):
    image = succeeded_image(api, store)
    response = create_service(api, image["id"], appInsightsEnabled=True, telemetry=telemetry)
    assert response.status_code == 400 and fragment in str(check_error(response))


def test_the_servers_defaults_enable_it(make_app, admin_token, store: Store):
    api = Api(make_app(telemetry_otlp_endpoint="http://172.17.0.1:4318").test_client(), admin_token)
    image = succeeded_image(api, store)
    assert create_service(api, image["id"], appInsightsEnabled=True).status_code == 202


def test_a_malformed_server_default_stops_the_server():
    with pytest.raises(ValueError, match="MOMA_TELEMETRY_OTLP_ENDPOINT"):
        Settings.load({"MOMA_TELEMETRY_OTLP_ENDPOINT": "collector:4318"})
    with pytest.raises(ValueError, match="MOMA_TELEMETRY_CONNECTION_STRING"):
        Settings.load({"MOMA_TELEMETRY_CONNECTION_STRING": "IngestionEndpoint=https://x.example/"})


def test_what_the_containers_are_told():
    server = Settings(telemetry_otlp_endpoint="http://collector:4318",
                      telemetry_otlp_headers="authorization=Bearer%20s", telemetry_connection_string=CONNECTION)
    on = {"appInsightsEnabled": True}
    env = service_environment(on, service_name="iris", image_id="i", service_id="svc-1",
                              telemetry=destination(on, server))
    assert {key: env[key] for key in env if key.startswith(("OTEL", "APPLICATIONINSIGHTS", "MOMA_SERVICE_ID"))} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20s",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION, "MOMA_SERVICE_ID": "svc-1",
        "OTEL_TRACES_SAMPLER": "always_on"}
    assert env["AML_APP_INSIGHTS_ENABLED"] == "true" and "MOMA_TELEMETRY_REQUEST_BODY" not in env
    # its own endpoint replaces the server's destinations; the server's headers never go there
    own = {**on, "telemetry": {"otlpEndpoint": "http://mine:4318", "requestBody": True}}
    env = service_environment(own, service_name="iris", image_id="i", service_id="svc-1",
                              telemetry=destination(own, server))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://mine:4318" and env["MOMA_TELEMETRY_REQUEST_BODY"] == "true"
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in env and "APPLICATIONINSIGHTS_CONNECTION_STRING" not in env
    # a caller's "not sampled" decides only when the service asks for it
    follow = {**on, "telemetry": {"followCallerSampling": True}}
    env = service_environment(follow, service_name="iris", image_id="i", service_id="svc-1",
                              telemetry=destination(follow, server))
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    # off: nothing of it, whatever the server's defaults
    off = service_environment({}, service_name="iris", image_id="i", service_id="svc-1",
                              telemetry=destination({}, server))
    assert not [key for key in off if key.startswith(("OTEL", "APPLICATIONINSIGHTS", "MOMA_SERVICE_ID"))]
    assert off["AML_APP_INSIGHTS_ENABLED"] == "false"


def test_the_swagger_documents_it(api: Api):
    definitions = api.ok("GET", "/swagger.json")["definitions"]
    for name in ("ServiceCreateRequest", "ServiceUpdateRequest", "ServiceResponse"):
        assert definitions[name]["properties"]["telemetry"] == {"$ref": "#/definitions/ServiceTelemetry"}
        assert "MOMA_TELEMETRY" in definitions[name]["properties"]["appInsightsEnabled"]["description"]
    assert set(definitions["ServiceTelemetry"]["properties"]) == {"otlpEndpoint", "connectionString", "requestBody",
                                                                  "followCallerSampling"}


def test_cli_flags_and_show():
    assert settings_body({"enable_app_insights": True, "telemetry_endpoint": "http://c:4318"},
                         {"telemetry": {"requestBody": True}}) == {
        "appInsightsEnabled": True, "telemetry": {"requestBody": True, "otlpEndpoint": "http://c:4318"}}
    assert ("App insights", "appInsightsEnabled") in SERVICE_FIELDS
    assert ("Telemetry OTLP endpoint", "telemetry.otlpEndpoint") in SERVICE_FIELDS
    assert settings_body({"telemetry_follow_caller_sampling": True, "telemetry_request_body": False},
                         {"telemetry": {"otlpEndpoint": "http://c:4318"}}) == {
        "telemetry": {"otlpEndpoint": "http://c:4318", "requestBody": False, "followCallerSampling": True}}


def test_management_spans_need_a_destination_and_headers_are_checked():
    from management import tracing

    assert tracing.start(Settings(), "api") is False and tracing.current_traceparent() is None
    with pytest.raises(ValueError, match="MOMA_TELEMETRY_OTLP_ENDPOINT or MOMA_TELEMETRY_CONNECTION_STRING"):
        tracing.start(Settings(telemetry_management=True), "api")
    with pytest.raises(ValueError, match="MOMA_TELEMETRY_OTLP_HEADERS"):
        Settings.load({"MOMA_TELEMETRY_OTLP_HEADERS": "bad header=1"})
    assert Settings.load({"MOMA_TELEMETRY_OTLP_HEADERS": "authorization=Bearer%20t"}).telemetry_otlp_headers
