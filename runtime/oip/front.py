"""The Open Inference Protocol's REST routes, answered by the app's ``Gate`` beside
``/score`` (same port, keys, admission, timeouts, metrics and data collection):

    GET  /v2/health/live                                    {"live": true}          no key
    GET  /v2/health/ready                                   {"ready": bool}         no key
    GET  /v2                                                server metadata
    GET  /v2/models/{name}[/versions/{version}]             model metadata
    GET  /v2/models/{name}[/versions/{version}]/ready       {"name", "ready"}
    POST /v2/models/{name}[/versions/{version}]/infer       inference

Which route a path is: ``routes.py``; which names and versions the model answers to:
``names.py``. An inference goes through the scoring path ``/score`` takes
(``Scorer.call``: admission, run(), timeout); only the way in (``inputs.py``) and out
(``tensors.py``) differ. Every
error on these routes is the protocol's ``{"error": "..."}`` with the status ``/score``
would answer (400, 401, 404, 405, 413, 429, 500, 503, 504) and the same headers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .. import __version__
from ..driver import Lifecycle
from ..encoding import encode_output
from ..errors import BadInput, ScoringError, UnsupportedMediaType, describe
from ..request_body import JSON, read_body
from ..schema import ServiceSchema
from ..scoring import Scorer
from . import codec
from .inputs import InputMapping, feed_of
from .names import ModelNames, ServedModel
from .routes import INFER, LIVE, MODEL, MODEL_READY, READY, SERVER, Match, Router
from .tensors import OUTPUT, output_tensors, parse_request

log = logging.getLogger("moma.runtime")

SERVER_NAME = "moma"
Answer = tuple[int, list[tuple[str, str]], bytes]


def error_parts(exc: BaseException) -> Answer:
    """The protocol's error answer: ``{"error": message}``, moma's status and headers."""
    status, _code, message, headers = describe(exc)
    return status, [("Content-Type", JSON), *headers], _json({"error": message})


class OpenInference:
    """The ``/v2`` routes of one worker."""

    def __init__(self, lifecycle: Lifecycle, scorer: Scorer, schema: ServiceSchema | None,
                 names: ModelNames, runtime_type: str, max_body_bytes: int,
                 capture: Callable[..., None] | None = None) -> None:
        self.lifecycle = lifecycle
        self.scorer = scorer
        self.schema = schema
        self.mapping = InputMapping(schema)
        self.names = names
        self.router = Router((model.name, model.version) for model in names.served.values())
        self.platform = f"moma_{runtime_type.lower()}"
        self.max_body_bytes = max_body_bytes
        self.capture = capture
        self._handlers: dict[str | None, Callable[[dict[str, Any], Match], Answer]] = {
            LIVE: self._live, READY: self._ready, SERVER: self._server, MODEL: self._model,
            MODEL_READY: self._model_ready, INFER: self._infer}

    def answer(self, environ: dict[str, Any], found: Match) -> Answer:
        """Status, headers and body of a ``/v2`` request. Never raises."""
        try:
            handler = self._handlers.get(found.route)
            if handler is None:
                raise _NoRoute(environ.get("PATH_INFO", ""))
            if found.route != INFER and environ.get("REQUEST_METHOD") != "GET":
                raise _only("GET", environ)
            return handler(environ, found)
        except Exception as exc:  # every error is answered, none escapes
            if not isinstance(exc, (ScoringError, HTTPException)):
                log.error("unhandled error in %s: %s", found.route, exc, exc_info=exc)
            return error_parts(exc)

    # -- health and metadata -----------------------------------------------------------------
    def _live(self, environ: dict[str, Any], found: Match) -> Answer:
        return _ok({"live": True})

    def _ready(self, environ: dict[str, Any], found: Match) -> Answer:
        return _ok({"ready": self.lifecycle.ready}, 200 if self.lifecycle.ready else 503)

    def _server(self, environ: dict[str, Any], found: Match) -> Answer:
        return _ok({"name": SERVER_NAME, "version": __version__, "extensions": []})

    def _model(self, environ: dict[str, Any], found: Match) -> Answer:
        model = self._find(found)
        self.lifecycle.require_ready()
        document: dict[str, Any] = {"name": model.name, "versions": model.versions,
                                    "platform": self.platform,
                                    "inputs": self.mapping.metadata_inputs(),
                                    "outputs": self._output_metadata()}
        parameters = self.mapping.metadata_parameters()
        if parameters:
            document["parameters"] = parameters
        return _ok(document)

    def _model_ready(self, environ: dict[str, Any], found: Match) -> Answer:
        model = self._find(found)
        ready = self.lifecycle.ready
        return _ok({"name": model.name, "ready": ready}, 200 if ready else 503)

    def _output_metadata(self) -> list[dict[str, Any]]:
        """From the schema's output, when it declares typed values (a 2017 output of
        type string is the ``json.dumps`` of the real answer: unknown)."""
        output = self.schema.output if self.schema is not None else None
        if output is None:
            return []
        if output.get("type") == "object" and isinstance(output.get("properties"), dict):
            feeds = [feed_of(name, swagger) for name, swagger in output["properties"].items()]
        else:
            feeds = [feed_of(OUTPUT, output)]
        return [feed.metadata() for feed in feeds if feed.family not in (None, "string")
                or feed.depth != 0]

    def _find(self, found: Match) -> ServedModel:
        return self.names.find(found.name or "", found.version)

    # -- inference -------------------------------------------------------------------------
    def _infer(self, environ: dict[str, Any], found: Match) -> Answer:
        model = self._find(found)
        self.lifecycle.require_ready()
        if environ.get("REQUEST_METHOD") != "POST":
            raise _only("POST", environ)
        if environ.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH"):
            raise BadInput("binary tensor data (Inference-Header-Content-Length) is not "
                           "supported: send the tensors as JSON (tritonclient: "
                           "binary_data=False)")
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding not in ("", "identity"):
            raise UnsupportedMediaType(f"Content-Encoding {encoding} is not supported: send "
                                       f"the body uncompressed")
        request = parse_request(read_body(environ, self.max_body_bytes))
        arguments, scored_input = self.mapping.arguments(request)
        scorer = self.scorer
        result, seconds = scorer.call(arguments)
        outputs = scorer.encode(output_tensors, result)
        if request.outputs is not None:
            outputs = _selected(outputs, request.outputs)
        document: dict[str, Any] = {"model_name": model.name}
        if model.version is not None:
            document["model_version"] = model.version
        document["id"] = request.id if request.id is not None else environ["moma.request_id"]
        if request.parameters:
            document["parameters"] = request.parameters
        document["outputs"] = outputs
        body = codec.dumps_answer(document)
        if self.capture is not None:
            self._capture(self.capture, environ, scored_input, result)
        return 200, [("Content-Type", JSON), ("x-ms-run-function-failed", "False"),
                     ("x-ms-scoring-time-ms", f"{seconds * 1000:.3f}")], body

    @staticmethod
    def _capture(capture: Callable[..., None], environ: dict[str, Any], scored_input: Any,
                 result: Any) -> None:
        """Data collection gets what ``/score`` would have had: its body and its answer."""
        try:
            raw = scored_input.encode("utf-8") if isinstance(scored_input, str) \
                else _json(scored_input)
            capture(environ["moma.request_id"],
                         environ.get("HTTP_X_MS_CLIENT_REQUEST_ID") or "", raw,
                         encode_output(result))
        except Exception:  # collection never fails a request
            log.exception("data collection: capture failed")


class _NoRoute(HTTPException):
    code = 404

    def __init__(self, path: str) -> None:
        super().__init__(f"no Open Inference Protocol route {path}")


def _only(method: str, environ: dict[str, Any]) -> MethodNotAllowed:
    return MethodNotAllowed(valid_methods=[method], description=(
        f"{environ.get('REQUEST_METHOD')} is not allowed on {environ.get('PATH_INFO')}: "
        f"{method} only"))


def _selected(outputs: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    by_name = {output["name"]: output for output in outputs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise BadInput(f"unknown output {unknown[0]!r}; the model returned {list(by_name)}")
    return [by_name[name] for name in names]


def _ok(document: dict[str, Any], status: int = 200) -> Answer:
    return status, [("Content-Type", JSON)], _json(document)


def _json(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")
