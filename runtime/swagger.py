"""The service's Swagger 2.0 document (``GET /swagger.json``), built once per worker.

Shape of the original: paths ``/`` and ``/score``, ``definitions.ServiceInput`` with the
input properties and an ``example`` (``az ml service run`` took sample input from it),
``securityDefinitions.Bearer`` (apiKey in the ``Authorization`` header).
"""

from __future__ import annotations

import json
from typing import Any

from .schema import ServiceSchema

_ERROR = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "code": {"type": "string", "enum": [
            "bad_input", "unsupported_media_type", "unauthorized", "overloaded",
            "timeout", "driver_error", "not_ready"]},
    },
    "required": ["message", "code"],
}


def swagger_document(schema: ServiceSchema | None, keys_required: bool,
                     title: str = "ML service") -> dict[str, Any]:
    if schema is None:
        service_input: dict[str, Any] = {
            "description": "No schema: the raw request body is passed to run() as a string."}
        service_output: dict[str, Any] = {"description": "What run() returned, JSON-encoded."}
    else:
        service_input = {
            "type": "object",
            "properties": {spec.name: spec.swagger for spec in schema.inputs},
            "required": [spec.name for spec in schema.inputs],
            "additionalProperties": False,
        }
        if schema.example is not None:
            service_input["example"] = schema.example
        service_output = schema.output or {"description": "What run() returned, JSON-encoded."}
    security = [{"Bearer": []}] if keys_required else []
    errors = {"default": {"description": "The request failed.",
                          "schema": {"$ref": "#/definitions/ErrorResponse"}}}
    score_ok = {"200": {"description": "The service ran the model and returned its output.",
                        "schema": {"$ref": "#/definitions/ServiceOutput"}}}
    return {
        "swagger": "2.0",
        "info": {"title": title, "description": "API specification for the scoring service.",
                 "version": "1.0"},
        "schemes": ["http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": {
            "type": "apiKey", "name": "Authorization", "in": "header",
            "description": "For example: Bearer abc123"}},
        "paths": {
            "/": {"get": {
                "operationId": "ServiceHealthCheck",
                "description": "Health check: 'Healthy' once the driver's init() succeeded.",
                "responses": {"200": {"description": "The service is ready.",
                                      "schema": {"type": "string"},
                                      "examples": {"application/json": "Healthy"}}, **errors}}},
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": "Run the model and return its output.",
                    "security": security,
                    "parameters": [{"name": "serviceInputPayload", "in": "body",
                                    "description": "The input payload for the model.",
                                    "schema": {"$ref": "#/definitions/ServiceInput"}}],
                    "responses": {**score_ok, **errors}},
                "get": {
                    "operationId": "RunMLServiceQuery",
                    "description": "Run the model with the query arguments as a JSON object.",
                    "security": security,
                    "responses": {**score_ok, **errors}}},
        },
        "definitions": {"ServiceInput": service_input, "ServiceOutput": service_output,
                        "ErrorResponse": _ERROR},
    }


def swagger_bytes(schema: ServiceSchema | None, keys_required: bool) -> bytes:
    return json.dumps(swagger_document(schema, keys_required), indent=2).encode("utf-8")
