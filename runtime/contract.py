"""The image contract: what every image moma builds promises to whoever runs it.

The builder renders it into Dockerfiles (through the templates' render context), the
engines start containers by it, and the runtime serves by it; this module is the one
place it is written down. Standard library only, and it imports nothing: the runtime
ships inside images, and this is the one module of it that ``builder/`` and
``management/`` import.

An image:

- runs the runtime as :data:`UID` (user and group), from :data:`APP_ROOT` (the driver,
  its assets and the models), with :data:`COMMAND`; the root file system may be
  read-only, ``/tmp`` is writable;
- listens on :data:`PORT`, or on ``$PORT`` when the engine sets it (``MOMA_BIND`` the
  address, ``REUSE_PORT=true`` for SO_REUSEPORT when several containers share it);
- answers :data:`HEALTHCHECK` (exit 0 when its own instance is ready), which the image
  declares with the :data:`IMAGE_HEALTHCHECK` timing and engines may run with theirs;
- reads the key hashes from ``$MOMA_KEYS_FILE`` (engines mount :data:`KEYS_FILE`,
  read-only, readable by :data:`UID`), and collects model data to
  ``$AML_MODEL_DC_LOCAL_DIR`` (engines mount :data:`DATA_MOUNT` there, writable) or to
  ``$AML_MODEL_DC_STORAGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

PORT = 5001
UID = 10001
APP_ROOT = "/var/azureml-app"
KEYS_MOUNT = "/var/moma/keys"
KEYS_FILE = f"{KEYS_MOUNT}/keys"
DATA_MOUNT = "/var/moma/data"

GUNICORN_CONFIG = "python:runtime.server.gunicorn_conf"
WSGI_APP = "runtime.wsgi:app"
COMMAND = ("gunicorn", "--config", GUNICORN_CONFIG, WSGI_APP)
HEALTHCHECK = ("python", "-m", "runtime.healthcheck")
HEALTHCHECK_SECONDS = 2.0  # how long one run of HEALTHCHECK asks: within every engine's timeout for it


@dataclass(frozen=True)
class HealthCheckTiming:
    interval_s: int
    timeout_s: int
    start_period_s: int
    retries: int


IMAGE_HEALTHCHECK = HealthCheckTiming(interval_s=10, timeout_s=3, start_period_s=60, retries=3)

# The environment: set by the image (Dockerfile ENV) ...
ENV_APP_ROOT = "MOMA_APP_ROOT"
ENV_RUNTIME_TYPE = "MOMA_RUNTIME_TYPE"
ENV_DRIVER = "MOMA_DRIVER"
# ... by the engine that runs the container ...
ENV_PORT = "PORT"
ENV_BIND = "MOMA_BIND"
ENV_REUSE_PORT = "REUSE_PORT"
ENV_KEYS_FILE = "MOMA_KEYS_FILE"
ENV_INSTANCE = "MOMA_INSTANCE"  # names the container (in /metrics and logs only)
ENV_INSTANCE_ID = "MOMA_INSTANCE_ID"  # the opaque id /readyz answers with
ENV_DC_LOCAL_DIR = "AML_MODEL_DC_LOCAL_DIR"
# ... and from the service's settings.
ENV_WORKERS = "WORKERS"
ENV_MAX_CONCURRENT_REQUESTS = "MAX_CONCURRENT_REQUESTS"
ENV_APP_INSIGHTS_ENABLED = "AML_APP_INSIGHTS_ENABLED"  # the original's name, for drivers that read it
ENV_DC_STORAGE_ENABLED = "AML_MODEL_DC_STORAGE_ENABLED"
ENV_DC_STORAGE = "AML_MODEL_DC_STORAGE"
ENV_SERVICE_NAME = "MOMA_SERVICE_NAME"
ENV_IMAGE_ID = "MOMA_IMAGE_ID"
ENV_SERVICE_ID = "MOMA_SERVICE_ID"
# telemetry (appInsightsEnabled): where it goes, OpenTelemetry's and Azure Monitor's names
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_APPINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
ENV_TELEMETRY_REQUEST_BODY = "MOMA_TELEMETRY_REQUEST_BODY"
ENV_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"  # always_on (default) or parentbased_always_on
