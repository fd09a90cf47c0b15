"""The service's Swagger 2.0 document (``GET /swagger.json``), built once per worker.

Shape of the original: paths ``/`` and ``/score``, ``definitions.ServiceInput`` with the
input properties and an ``example`` (``az ml service run`` took sample input from it),
``securityDefinitions.Bearer`` (apiKey in the ``Authorization`` header). Beside them the
Open Inference Protocol's ``/v2`` routes, with ``definitions.InferenceRequest`` holding
the same example as an inference request (``moma service usage`` shows it).
"""

from __future__ import annotations

import json
from typing import Any

from .oip.inputs import InputMapping
from .oip.names import ModelNames
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
                     title: str = "ML service", names: ModelNames | None = None) -> dict[str, Any]:
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
    security: list[dict[str, list[str]]] = [{"Bearer": []}] if keys_required else []
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
        "paths": {**_v2_paths(security, names), **{
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
        }},
        "definitions": {"ServiceInput": service_input, "ServiceOutput": service_output,
                        "ErrorResponse": _ERROR, **_v2_definitions(schema)},
    }


def swagger_bytes(schema: ServiceSchema | None, keys_required: bool,
                  names: ModelNames | None = None) -> bytes:
    return json.dumps(swagger_document(schema, keys_required, names=names),
                      indent=2).encode("utf-8")


# -- the Open Inference Protocol's routes ---------------------------------------------------------
def _v2_paths(security: list[dict[str, list[str]]],
              names: ModelNames | None) -> dict[str, Any]:
    def answer(description: str, definition: str) -> dict[str, Any]:
        return {"200": {"description": description,
                        "schema": {"$ref": f"#/definitions/{definition}"}},
                "default": {"description": "The request failed.",
                            "schema": {"$ref": "#/definitions/InferenceError"}}}

    model = {"name": "model_name", "in": "path", "required": True, "type": "string"}
    if names is not None:
        model["enum"] = names.names
    version = {"name": "model_version", "in": "path", "required": True, "type": "string"}
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {
            "operationId": "ServerLive", "description": "Open Inference Protocol: the server "
            "answers.", "responses": answer("Live.", "ServerLive")}},
        "/v2/health/ready": {"get": {
            "operationId": "ServerReady", "description": "Open Inference Protocol: ready "
            "once the driver's init() succeeded (503 else).",
            "responses": answer("Ready.", "ServerReady")}},
        "/v2": {"get": {
            "operationId": "ServerMetadata", "security": security,
            "responses": answer("The server's name, version and extensions.",
                                "ServerMetadata")}},
    }
    for prefix, parameters, suffix in (("/v2/models/{model_name}", [model], ""),
                                       ("/v2/models/{model_name}/versions/{model_version}",
                                        [model, version], "AtVersion")):
        paths[prefix] = {"get": {
            "operationId": f"ModelMetadata{suffix}", "security": security,
            "parameters": parameters,
            "responses": answer("The model's inputs and outputs.", "ModelMetadata")}}
        paths[f"{prefix}/ready"] = {"get": {
            "operationId": f"ModelReady{suffix}", "security": security,
            "parameters": parameters, "responses": answer("Ready (503 else).", "ModelReady")}}
        paths[f"{prefix}/infer"] = {"post": {
            "operationId": f"ModelInfer{suffix}", "security": security,
            "description": "Run the model on input tensors (the same run() as /score).",
            "parameters": [*parameters, {"name": "inferenceRequest", "in": "body",
                                         "required": True,
                                         "schema": {"$ref": "#/definitions/InferenceRequest"}}],
            "responses": answer("The output tensors.", "InferenceResponse")}}
    return paths


_PARAMETERS = {"type": "object", "additionalProperties": {}}
_TENSOR_DATA = {"type": "array", "items": {}}


def _tensor(*required: str) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": [
            "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
            "FP32", "FP64", "BYTES"]},
        "parameters": _PARAMETERS, "data": _TENSOR_DATA}}


def _v2_definitions(schema: ServiceSchema | None) -> dict[str, Any]:
    request: dict[str, Any] = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": _PARAMETERS,
        "inputs": {"type": "array", "items": {"$ref": "#/definitions/InputTensor"}},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"},
                                                              "parameters": _PARAMETERS}}}}}
    example = InputMapping(schema).example_request(schema.example) if schema else None
    if example is not None:
        request["example"] = example
    metadata_tensor = {"type": "object", "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}}}}
    return {
        "InputTensor": _tensor("name", "shape", "datatype", "data"),
        "OutputTensor": _tensor("name", "shape", "datatype", "data"),
        "InferenceRequest": request,
        "InferenceResponse": {"type": "object", "required": ["model_name", "outputs"],
                              "properties": {
                                  "model_name": {"type": "string"},
                                  "model_version": {"type": "string"},
                                  "id": {"type": "string"}, "parameters": _PARAMETERS,
                                  "outputs": {"type": "array",
                                              "items": {"$ref": "#/definitions/OutputTensor"}}}},
        "ModelMetadata": {"type": "object", "required": ["name", "platform"], "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"}, "parameters": _PARAMETERS,
            "inputs": {"type": "array", "items": metadata_tensor},
            "outputs": {"type": "array", "items": metadata_tensor}}},
        "ServerMetadata": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}}}},
        "ServerLive": {"type": "object", "properties": {"live": {"type": "boolean"}}},
        "ServerReady": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        "ModelReady": {"type": "object", "properties": {"name": {"type": "string"},
                                                        "ready": {"type": "boolean"}}},
        "InferenceError": {"type": "object", "required": ["error"],
                           "properties": {"error": {"type": "string"}}},
    }
