"""Where a service's telemetry goes (``appInsightsEnabled``; the runtime's side is
``runtime/telemetry``).

The server's defaults (``MOMA_TELEMETRY_OTLP_ENDPOINT``, ``MOMA_TELEMETRY_OTLP_HEADERS``,
``MOMA_TELEMETRY_CONNECTION_STRING``) hold for every service that does not name a
destination of its own in its ``telemetry`` object (a moma extension: ``otlpEndpoint``,
``connectionString``, ``requestBody``, ``followCallerSampling``). A service naming one replaces the server's
destinations: the server's OTLP headers (its collector's credentials) are never sent to
an endpoint a service chose. Enabled with no destination at all is a 400 that says what
to set, rather than a flag that exports nothing.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .errors import BadRequest, Detail

if TYPE_CHECKING:  # config.py checks the server's defaults with this module's checks
    from .config import Settings

TELEMETRY_KEYS = ("otlpEndpoint", "connectionString", "requestBody", "followCallerSampling")
_CONNECTION_PART = re.compile(r"([A-Za-z]+)=([^;=]*)")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token
_ENDPOINT_KEYS = ("ingestionendpoint", "liveendpoint", "profilerendpoint", "snapshotendpoint")


@dataclass(frozen=True)
class Destination:
    """What a service's containers are told: where to export, and whether request
    bodies go on spans."""

    otlp_endpoint: str = ""
    otlp_headers: str = ""
    connection_string: str = ""
    request_body: bool = False
    follow_caller_sampling: bool = False  # else every request is recorded (always_on)

    @property
    def sampler(self) -> str:
        """The containers' ``OTEL_TRACES_SAMPLER``."""
        return "parentbased_always_on" if self.follow_caller_sampling else "always_on"

    @property
    def missing(self) -> bool:
        return not self.otlp_endpoint and not self.connection_string


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s)://host[:port][/path] URL (no user, query, fragment)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if (parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname
            or "@" in parts.netloc or "?" in url or "#" in url or any(ord(c) < 0x21 or ord(c) == 0x7f for c in url)):
        return f"{url!r} is not http(s)://host[:port][/path] (no user, query or fragment)"
    return None


def connection_string_problem(text: str) -> str | None:
    """Why ``text`` is not an Application Insights connection string
    (``InstrumentationKey=<guid>;IngestionEndpoint=https://...;...``)."""
    values: dict[str, str] = {}
    for part in filter(None, (item.strip() for item in text.split(";"))):
        found = _CONNECTION_PART.fullmatch(part)
        if found is None:
            return "is not Key=Value pairs separated by ';'"
        values[found.group(1).lower()] = found.group(2).strip()
    if not _GUID.fullmatch(values.get("instrumentationkey", "")):
        return "needs InstrumentationKey=<a GUID>"
    for key in _ENDPOINT_KEYS:
        if key in values and url_problem(values[key]) is not None:
            return f"{key}: {url_problem(values[key])}"
    return None


def otlp_headers(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` (values percent-encoded: OTEL_EXPORTER_OTLP_HEADERS'
    format) as a dict; ValueError when malformed."""
    headers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        value = urllib.parse.unquote(value.strip())
        if not sep or not _HEADER_NAME.fullmatch(key.strip()) or any(ord(c) < 0x20 and c != "\t" for c in value):
            raise ValueError("is not key=value pairs separated by commas (values percent-encoded)")
        headers[key.strip()] = value
    return headers


def service_telemetry(given: Mapping[str, Any], problems: list[Detail]) -> dict[str, Any] | None:
    """The service's ``telemetry`` object, checked (``service_settings.desired_settings``)."""
    telemetry = {key: given[key] for key in TELEMETRY_KEYS if given.get(key) not in (None, "")}
    if "otlpEndpoint" in telemetry and (problem := url_problem(telemetry["otlpEndpoint"])):
        problems.append(Detail("InvalidField", f"telemetry.otlpEndpoint: {problem}"))
    if "connectionString" in telemetry and (problem := connection_string_problem(telemetry["connectionString"])):
        problems.append(Detail("InvalidField", f"telemetry.connectionString {problem}"))
    return telemetry or None


def destination(service_settings: Mapping[str, Any], server: "Settings") -> Destination | None:
    """Where this service's telemetry goes; None when it is off."""
    if not service_settings.get("appInsightsEnabled"):
        return None
    own = service_settings.get("telemetry") or {}
    body, follow = bool(own.get("requestBody")), bool(own.get("followCallerSampling"))
    if own.get("otlpEndpoint") or own.get("connectionString"):
        return Destination(otlp_endpoint=own.get("otlpEndpoint", ""),
                           connection_string=own.get("connectionString", ""), request_body=body,
                           follow_caller_sampling=follow)
    return Destination(server.telemetry_otlp_endpoint, server.telemetry_otlp_headers,
                       server.telemetry_connection_string, body, follow)


def check_destination(service_settings: Mapping[str, Any], server: "Settings") -> None:
    """400 for a service with ``appInsightsEnabled`` and nowhere to send to."""
    found = destination(service_settings, server)
    if found is not None and found.missing:
        raise BadRequest("appInsightsEnabled needs somewhere to send the telemetry: set MOMA_TELEMETRY_OTLP_ENDPOINT "
                         "(an OTLP/HTTP collector) or MOMA_TELEMETRY_CONNECTION_STRING (Azure Monitor) on the moma "
                         "server, or telemetry.otlpEndpoint or telemetry.connectionString on the service",
                         [Detail("NoTelemetryDestination", "appInsightsEnabled: no telemetry destination")])
