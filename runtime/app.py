"""The scoring app: ``create_app(config)`` wires settings, driver, keys, admission,
metrics and routes together; errors become moma's JSON here (and the Open Inference
Protocol's in ``oip/front.py``), both from ``errors.describe``.

Request path of ``POST /score`` (everything per request is in memory): ``Gate``
(request id, key check, metrics) -> ``Gate.score``: readiness -> media type ->
arguments (schema) -> admission -> run() -> encode -> data collection (a queue append,
when on). ``/v2/...`` goes from the ``Gate`` to ``oip.front.OpenInference`` (the same
scorer); other routes go through Flask.
"""

from __future__ import annotations

import atexit
import http
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import datacollection, shared_memory, telemetry
from .admission import Admission
from .config import Settings, parse_int
from .driver import Driver, Lifecycle, State
from .errors import NotReady, SchemaError, ScoringError, Unauthorized, UnsupportedMediaType, describe
from .keys import KeyRing
from .logs import REQUEST_ID, configure_runtime_logger
from .metrics import OTHER_ROUTE, ROUTE_INDEX, Metrics, new_shared_memory
from .model_map import ModelMap, load_model_map
from .oip import routes as oip_routes
from .oip.front import OpenInference
from .oip.front import error_parts as oip_error_parts
from .oip.names import ModelNames
from .request_body import JSON, is_json, read_body
from .schema import ServiceSchema, load_schema
from .scoring import Scorer
from .swagger import swagger_bytes

if TYPE_CHECKING:  # imported for real only by SparkPython workers (it loads pyspark)
    from .spark import SparkRuntime
    from .telemetry.setup import Telemetry

log = logging.getLogger("moma.runtime")

OPEN_PATHS = frozenset({"/", "/livez", "/readyz", *oip_routes.OPEN_PATHS})  # answered without a key
SCORING_TIME_HEADER = "x-ms-scoring-time-ms"
MAX_REQUEST_ID = 200
SCORE_ROUTE = ROUTE_INDEX["/score"]
# A span per request on these (telemetry on): scoring and the OIP routes but health checks
TRACED_ROUTES = {ROUTE_INDEX[route]: telemetry.Route(route, oip=route != "/score")
                 for route in ("/score", *oip_routes.ROUTES) if route not in oip_routes.OPEN_PATHS}


class Runtime:
    """Everything one worker process needs to answer requests."""

    def __init__(self, settings: Settings, lifecycle: Lifecycle, driver: Driver,
                 scorer: Scorer, keys: KeyRing | None, metrics: Metrics,
                 swagger: bytes, oip: OpenInference,
                 capture: Callable[..., None] | None = None,
                 tracing: "Telemetry | None" = None) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.driver = driver
        self.scorer = scorer
        self.keys = keys
        self.metrics = metrics
        self.swagger = swagger
        self.oip = oip
        self.capture = capture  # automatic data collection: (request id, correlation, in, out)
        self.telemetry = tracing  # None: telemetry off


# -- errors: moma's JSON -------------------------------------------------------------------
def error_parts(exc: BaseException) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and moma's JSON body for any error a request can end with."""
    status, code, message, headers = describe(exc)
    body = json.dumps({"message": message, "code": code}).encode("utf-8")
    return status, [("Content-Type", JSON), *headers], body


def _error_response(exc: BaseException) -> Response:
    if not isinstance(exc, (ScoringError, HTTPException)):
        log.error("unhandled error: %s", exc, exc_info=exc)
    status, headers, body = error_parts(exc)
    return current_app.response_class(body, status=status, headers=headers)


# -- WSGI layer in front of Flask ----------------------------------------------------------
class Gate:
    """Every request passes here first: request id, key check, request metrics.

    A request without a valid key is answered here and never reaches Flask or the driver.
    ``/score`` and the ``/v2`` routes are answered here too, without Flask's routing,
    request and response objects (they cost more per request than keys, admission and
    metrics together; see bench/runtime/README.md); every other route goes to Flask.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], runtime: Runtime,
                 max_body_bytes: int) -> None:
        self.app = app
        self.runtime = runtime
        self.keys = runtime.keys
        self.metrics = runtime.metrics
        self.max_body_bytes = max_body_bytes
        self.capture = runtime.capture
        self.oip = runtime.oip
        self.oip_route = runtime.oip.router.match  # None: not a /v2 path
        self.tracer = runtime.telemetry.tracer if runtime.telemetry is not None else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        request_id = environ.get("HTTP_X_MS_REQUEST_ID")
        if not request_id or len(request_id) > MAX_REQUEST_ID:
            request_id = str(uuid.uuid4())
        environ["moma.request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        path = environ.get("PATH_INFO", "")
        oip_match = self.oip_route(path)
        if oip_match is not None:
            route = ROUTE_INDEX.get(oip_match.route or "", OTHER_ROUTE)
        else:
            route = ROUTE_INDEX.get(path, OTHER_ROUTE)
        status_code = 500
        metrics = self.metrics
        metrics.request_started()
        tracer = self.tracer
        span = tracer.begin(environ, route, request_id, oip_match) if tracer is not None else None
        try:
            if self.keys is not None and path not in OPEN_PATHS \
                    and not self.keys.check(environ.get("HTTP_AUTHORIZATION")):
                refused = Unauthorized("a valid key is required: Authorization: Bearer <key>")
                status_code, headers, body = (error_parts if oip_match is None
                                              else oip_error_parts)(refused)
            elif route == SCORE_ROUTE:
                status_code, headers, body = self.score(environ)
            elif oip_match is not None:
                status_code, headers, body = self.oip.answer(environ, oip_match)
            else:
                statuses: list[str] = []

                def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                    headers.append(("x-ms-request-id", request_id))
                    statuses.append(status)
                    return start_response(status, headers, exc_info)

                try:
                    return self.app(environ, start)
                finally:
                    status_code = int(statuses[-1][:3]) if statuses else 500
            # A length, not chunked framing: the server can send it in one write
            headers.append(("Content-Length", str(len(body))))
            headers.append(("x-ms-request-id", request_id))
            start_response(STATUS_LINES.get(status_code) or _status_line(status_code), headers)
            return [body]
        finally:
            metrics.request_finished(route, status_code, time.perf_counter() - started)
            if tracer is not None and span is not None:  # a span only when there is a tracer
                tracer.end(span, status_code)
            REQUEST_ID.reset(token)

    def score(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """``GET|POST /score``: status, headers, body. Never raises."""
        try:
            runtime = self.runtime
            runtime.lifecycle.require_ready()
            scorer = runtime.scorer
            method = environ.get("REQUEST_METHOD")
            if method == "POST":
                content_type = environ.get("CONTENT_TYPE", "")
                if not is_json(content_type):
                    raise UnsupportedMediaType(
                        f"POST /score needs Content-Type: application/json, got "
                        f"{content_type.split(';', 1)[0].strip() or 'none'}")
                raw: Any = read_body(environ, self.max_body_bytes)
                arguments = scorer.from_body(raw)
            elif method == "GET":
                raw = dict(reversed(parse_qsl(environ.get("QUERY_STRING", ""),
                                              keep_blank_values=True)))
                arguments = scorer.from_query(raw)
            else:
                raise MethodNotAllowed(valid_methods=["GET", "POST"])
            body, seconds = scorer.score(arguments)
            capture = self.capture
            if capture is not None:
                try:
                    capture(environ["moma.request_id"],
                            environ.get("HTTP_X_MS_CLIENT_REQUEST_ID") or "", raw, body)
                except Exception:  # collection never fails a request
                    log.exception("data collection: capture failed")
            return 200, [("Content-Type", JSON), ("x-ms-run-function-failed", "False"),
                         (SCORING_TIME_HEADER, f"{seconds * 1000:.3f}")], body
        except Exception as exc:  # every error is answered, none escapes
            if not isinstance(exc, (ScoringError, HTTPException)):
                log.error("unhandled error in /score: %s", exc, exc_info=exc)
            return error_parts(exc)


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus}


# -- routes ---------------------------------------------------------------------------------
def _runtime() -> Runtime:
    return current_app.extensions["moma"]


def index() -> Response:
    _runtime().lifecycle.require_ready()
    return Response("Healthy", mimetype="text/plain")


def livez() -> Response:
    runtime = _runtime()
    return _json_response({"state": runtime.lifecycle.state.value,
                           "instance": runtime.settings.instance_id}, 200)


def readyz() -> Response:
    """The instance id tells replicas behind one address apart (rolling updates,
    autoscaling) without naming the container: these routes answer without a key."""
    runtime = _runtime()
    lifecycle = runtime.lifecycle
    if lifecycle.ready:
        return _json_response({"state": "ready", "instance": runtime.settings.instance_id}, 200)
    return _json_response({"state": lifecycle.state.value, "message": lifecycle.reason,
                           "code": NotReady.code, "instance": runtime.settings.instance_id}, 503)


def serve_swagger() -> Response:
    return Response(_runtime().swagger, mimetype=JSON)


def serve_metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST
    return Response(_runtime().metrics.render(), content_type=CONTENT_TYPE_LATEST)


def _json_response(document: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(document), status, content_type=JSON)


# -- factory -----------------------------------------------------------------------------------
def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The scoring app: defaults, then MOMA_*/documented environment, then ``config``.

    Loads the schema and the driver and calls init() before returning, so a gunicorn
    worker takes no traffic before init() ran. A failing init() or schema leaves the app
    in the FAILED state (it still answers /livez, /readyz and 503 on /score).
    """
    settings = Settings.load(overrides=config)
    configure_runtime_logger(os.environ.get("LOG_LEVEL", "info"))
    memory = shared_memory.inherited()
    if memory is None:  # no pre-fork master made one (tests, other servers): this process only
        memory = new_shared_memory(settings.state_dir, settings.max_concurrent, settings.max_queue)
        atexit.register(memory.close)
    metrics = Metrics(memory, settings.instance)
    admission = Admission(memory.admission, settings.max_concurrent, settings.max_queue,
                          settings.max_queue_wait_ms)
    pool_size = settings.max_concurrent or parse_int("THREADS", os.environ.get("THREADS"), 32)
    lifecycle = Lifecycle()
    model_map = load_model_map(settings.app_root)
    names = ModelNames(model_map, settings.service_name)
    # Before the driver is imported: its prints, logs and spans from its first line on
    tracing = _start_telemetry(settings, lifecycle, {**os.environ, **(config or {})},
                               model_map, names, metrics)
    spark = _start_spark(settings, lifecycle)  # None unless MOMA_RUNTIME_TYPE=SparkPython
    schema = _load_schema(settings, lifecycle, spark)
    scorer = Scorer(schema, admission, metrics, settings.scoring_timeout_ms, pool_size)
    if tracing is not None:
        scorer.observer = tracing.observer
    keys = KeyRing(settings.keys_file, settings.keys_check_interval_s) \
        if settings.keys_file else None
    # Before the driver is imported: its ModelDataCollectors find this process's hub.
    hub = datacollection.configure(
        datacollection.CollectionSettings.load({**os.environ, **(config or {})}),
        app_root=settings.app_root, recorder=metrics, inputs=datacollection.input_shape(schema))
    driver = Driver(settings.driver_path, settings.app_root,
                    namespace=spark.namespace if spark is not None else None)
    if lifecycle.state is State.STARTING:
        driver.load(lifecycle, after_init=None if spark is None
                    else (lambda loaded: spark.warm_up(schema, loaded)))
        scorer.run = driver.run

    capture = hub.capture if hub is not None and hub.capturing else None
    oip = OpenInference(lifecycle, scorer, schema, names, settings.runtime_type,
                        settings.max_body_bytes, capture)
    runtime = Runtime(settings, lifecycle, driver, scorer, keys, metrics,
                      swagger_bytes(schema, keys_required=keys is not None, names=names),
                      oip, capture, tracing)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["moma"] = runtime
    app.add_url_rule("/", view_func=index, methods=["GET"])
    app.add_url_rule("/livez", view_func=livez, methods=["GET"])
    app.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    app.add_url_rule("/swagger.json", view_func=serve_swagger, methods=["GET"])
    app.add_url_rule("/metrics", view_func=serve_metrics, methods=["GET"])
    app.register_error_handler(Exception, _error_response)
    app.wsgi_app = Gate(app.wsgi_app, runtime,  # type: ignore[method-assign]  # Flask's documented middleware hook
                        settings.max_body_bytes)
    return app


def _start_telemetry(settings: Settings, lifecycle: Lifecycle, environ: dict[str, Any],
                     model_map: ModelMap, names: ModelNames, metrics: Metrics) -> "Telemetry | None":
    """This worker's telemetry (``telemetry/``), None when off; on but unable to run
    (no destination, packages missing) fails the worker with the reason."""
    try:
        return telemetry.configure(environ, instance=settings.instance, model_map=model_map,
                                   names=names, routes=TRACED_ROUTES, recorder=metrics,
                                   cells=metrics.own)
    except telemetry.TelemetryUnavailable as exc:
        log.error("%s", exc)
        lifecycle.fail(str(exc))
        return None


def _start_spark(settings: Settings, lifecycle: Lifecycle) -> "SparkRuntime | None":
    """SparkPython: this worker's SparkSession (``spark.py``); a failure fails the worker."""
    if settings.runtime_type != "SparkPython":
        return None
    try:
        from .spark import SparkRuntime
        return SparkRuntime.start()
    except Exception as exc:  # no Java, no pyspark, JVM out of memory...
        reason = f"Spark session failed to start: {type(exc).__name__}: {exc}"
        log.error("%s", reason, exc_info=True)
        lifecycle.fail(reason)
        return None


def _load_schema(settings: Settings, lifecycle: Lifecycle,
                 spark: "SparkRuntime | None" = None) -> ServiceSchema | None:
    if settings.schema_path is None:
        return None
    try:
        return load_schema(settings.schema_path,
                           spark=spark.input_converter if spark is not None else None)
    except SchemaError as exc:
        reason = f"service schema unusable: {exc}"
        log.error("%s", reason, exc_info=True)
        lifecycle.fail(reason)
        return None
