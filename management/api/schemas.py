"""The spec's object definitions as JSON Schema, in one place.

They validate request bodies (``validate``) and make up the ``definitions`` of the
API's own Swagger 2.0 document (``swagger.py``), so what we check and what we publish
cannot drift apart. Constraints the spec leaves open follow the original service's
limits (behaviour-notes.md): names of letters, digits and hyphens up to 32, tags up
to 29, model descriptions up to 200, manifest descriptions up to 512, asset ids up to 32.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from ..errors import Detail, ValidationFailed


def whole(pattern: str) -> str:
    """A JSON Schema ``pattern`` that matches whole strings only. jsonschema runs patterns
    with ``re.search``, where ``$`` also matches before a final newline: the lookahead
    refuses that, and changes nothing for ECMA-262 clients, whose ``$`` ends the string."""
    return f"^{pattern}$(?!\\n)"


NAME = {"type": "string", "pattern": whole(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?"),
        "description": "Letters, digits and inner hyphens, 1 to 32 characters."}
TAG = {"type": "string", "minLength": 1, "maxLength": 29, "pattern": whole(r"[^\x00-\x1f\x7f-\x9f]+"),
       "description": "Up to 29 characters, no control characters."}
SCOPE_PART = {"type": "string", "pattern": whole(r"[A-Za-z0-9._-]{1,64}"),
              "description": "1 to 64 letters, digits, '.', '_', '-'."}
ACCOUNT_NAME = {"type": "string", "pattern": whole(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"),
                "description": "1 to 32 lower-case letters, digits and inner hyphens (it names image repositories)."}
ACCOUNT_SCOPE = {"subscriptionId": {**SCOPE_PART, "default": "default"},
                 "resourceGroupName": {**SCOPE_PART, "default": "default"}, "accountName": ACCOUNT_NAME}
URL = {"type": "string", "minLength": 1, "maxLength": 8192}
TOKEN_FIELDS = {
    "id": {"type": "string"}, "name": {"type": "string"},
    "accountId": {"type": "integer", "x-nullable": True, "description": "null for an admin token."},
    "admin": {"type": "boolean"}, "createdAt": {"type": "string"},
    "revokedAt": {"type": "string", "x-nullable": True},
}
TIME = {"type": "string", "format": "date-time", "readOnly": True}
STATE = {"$ref": "#/definitions/AsyncOperationState"}
APP_INSIGHTS = ("Export a trace span per scoring request, the driver's prints and logging, and request metrics "
                "(OpenTelemetry) to the service's telemetry destination, else the server's (MOMA_TELEMETRY_*); "
                "400 when neither is set.")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


DEFINITIONS: dict[str, dict[str, Any]] = {
    "Asset": {
        "type": "object",
        "required": ["id", "url"],
        "properties": {
            "id": {"type": "string", "pattern": whole(r"[A-Za-z0-9_.-]{1,32}"),
                   "description": "Asset ID: 1 to 32 letters, digits, '_', '.', '-'."},
            "mimeType": {"type": "string", "maxLength": 255},
            "unpack": {"type": "boolean"},
            "url": URL,
        },
    },
    "AsyncOperationState": {"type": "string", "enum": ["NotStarted", "Running", "Cancelled", "Succeeded", "Failed"]},
    "AsyncOperationStatus": {
        "type": "object",
        "properties": {
            "createdTime": TIME,
            "endTime": TIME,
            "error": ref("ErrorResponse"),
            "id": {"type": "string"},
            "operationType": {"type": "string", "enum": ["Image", "Service"]},
            "resourceLocation": {"type": "string"},
            "state": STATE,
        },
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    },
    "ErrorResponse": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "details": {"type": "array", "items": ref("ErrorDetail")},
            "message": {"type": "string"},
            "statusCode": {"type": "integer"},
        },
    },
    "Image": {
        "type": "object",
        "properties": {
            "computeResourceId": {"type": "string"},
            "createdTime": TIME,
            "creationState": STATE,
            "description": {"type": "string"},
            "error": ref("ErrorResponse"),
            "id": {"type": "string"},
            "imageBuildLogUri": {"type": "string"},
            "imageLocation": {"type": "string"},
            "imageType": ref("ImageType"),
            "manifest": ref("Manifest"),
            "name": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
    "ImageRequest": {
        "type": "object",
        "required": ["computeResourceId", "imageType", "manifestId", "name"],
        "properties": {
            "computeResourceId": {"type": "string", "maxLength": 256},
            "description": {"type": "string", "maxLength": 512},
            "imageType": ref("ImageType"),
            "manifestId": {"type": "string", "minLength": 1, "maxLength": 64},
            "name": NAME,
        },
    },
    "ImageType": {"type": "string", "enum": ["Docker"]},
    "Manifest": {
        "type": "object",
        "required": ["assets", "driverProgram", "name", "targetRuntime"],
        "properties": {
            "assets": {"type": "array", "minItems": 1, "maxItems": 100, "items": ref("Asset")},
            "createdTime": TIME,
            "description": {"type": "string", "maxLength": 512},
            "driverProgram": {"type": "string", "minLength": 1, "maxLength": 32},
            "id": {"type": "string", "readOnly": True},
            "modelIds": {"type": "array", "maxItems": 100,
                         "items": {"type": "string", "pattern": whole("[0-9a-f]{32}")}},
            "modelType": {"type": "string", "enum": ["Registered"]},
            "name": NAME,
            "targetRuntime": ref("TargetRuntime"),
            "version": {"type": "integer", "readOnly": True},
            "webserviceType": {"type": "string", "enum": ["Realtime"]},
        },
    },
    "Model": {
        "type": "object",
        "required": ["mimeType", "name", "url"],
        "properties": {
            "createdAt": TIME,
            "description": {"type": "string", "maxLength": 200},
            "id": {"type": "string", "readOnly": True},
            "mimeType": {"type": "string", "minLength": 1, "maxLength": 255},
            "name": NAME,
            "tags": {"type": "array", "maxItems": 50, "items": TAG},
            "unpack": {"type": "boolean"},
            "url": URL,
            "version": {"type": "integer", "readOnly": True},
        },
    },
    "PaginatedImageList": {
        "type": "object",
        "properties": {"nextLink": {"type": "string"}, "value": {"type": "array", "items": ref("Image")}},
    },
    "PaginatedManifestList": {
        "type": "object",
        "properties": {"nextLink": {"type": "string"}, "value": {"type": "array", "items": ref("Manifest")}},
    },
    "PaginatedModelList": {
        "type": "object",
        "properties": {"nextLink": {"type": "string"}, "value": {"type": "array", "items": ref("Model")}},
    },
    "TargetRuntime": {
        "type": "object",
        "required": ["properties", "runtimeType"],
        "properties": {
            "properties": {
                "type": "object",
                "description": "pipRequirements and condaEnvFile, each a URL.",
                "properties": {"pipRequirements": URL, "condaEnvFile": URL},
                "additionalProperties": False,
            },
            "runtimeType": {"type": "string", "enum": ["SparkPython", "Python"]},
        },
    },
    "AuthKeys": {
        "type": "object",
        "properties": {"primaryKey": {"type": "string"}, "secondaryKey": {"type": "string"}},
    },
    "AutoScaler": {
        "type": "object",
        "properties": {
            "autoscaleEnabled": {"type": "boolean"},
            "maxReplicas": {"type": "integer", "minimum": 1, "maximum": 100},
            "minReplicas": {"type": "integer", "minimum": 0, "maximum": 100},
            "refreshPeriodInSeconds": {"type": "integer", "minimum": 1, "maximum": 3600},
            "targetUtilization": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    "ComputeResource": {
        "type": "object",
        "properties": {"id": {"type": "string", "maxLength": 64}, "type": {"type": "string", "enum": ["Cluster"]}},
    },
    "ContainerResourceReservation": {
        "type": "object",
        "properties": {"cpu": {"type": "string", "maxLength": 32, "description": "Kubernetes CPU: 0.5, 500m, 2."},
                       "memory": {"type": "string", "maxLength": 32,
                                  "description": "Kubernetes memory: 512Mi, 1G, 2048."}},
    },
    "Deployment": {
        "type": "object",
        "properties": {
            "createdAt": TIME,
            "expiredAt": TIME,
            "id": {"type": "string"},
            "imageId": {"type": "string"},
            "serviceName": {"type": "string"},
            "status": {"type": "string"},
        },
    },
    "DeploymentList": {"type": "array", "items": ref("Deployment")},
    "ModelDataCollection": {
        "type": "object",
        "properties": {"eventHubEnabled": {"type": "boolean"}, "storageEnabled": {"type": "boolean"}},
    },
    "ServiceTelemetry": {
        "type": "object",
        "additionalProperties": False,
        "description": "moma extension: where this service's telemetry goes when appInsightsEnabled, instead of "
                       "the server's defaults (MOMA_TELEMETRY_*). Either destination, or both; reachable from the "
                       "service's containers.",
        "properties": {
            "otlpEndpoint": {"type": "string", "maxLength": 2048,
                             "description": "An OTLP/HTTP (protobuf) collector's base URL, e.g. http://collector:4318"},
            "connectionString": {"type": "string", "maxLength": 4096,
                                 "description": "Azure Monitor: an Application Insights connection string "
                                                "(InstrumentationKey=...;IngestionEndpoint=...)"},
            "requestBody": {"type": "boolean",
                            "description": "Put request bodies (their first 8 KiB) on the spans; off by default"},
            "followCallerSampling": {
                "type": "boolean",
                "description": "Let a caller's W3C traceparent decide whether a request is recorded (a 'not "
                               "sampled' caller goes unrecorded: OTEL_TRACES_SAMPLER=parentbased_always_on). Off by "
                               "default: every request is recorded and the caller's trace continued, so no client "
                               "can hide its requests"},
        },
    },
    "PaginatedServiceList": {
        "type": "object",
        "properties": {"nextLink": {"type": "string"}, "value": {"type": "array", "items": ref("ServiceResponse")}},
    },
    "ServiceCreateRequest": {
        "type": "object",
        "required": ["computeResource", "imageId", "name"],
        "properties": {
            "appInsightsEnabled": {"type": "boolean", "description": APP_INSIGHTS},
            "telemetry": ref("ServiceTelemetry"),
            "autoScaler": ref("AutoScaler"),
            "computeResource": ref("ComputeResource"),
            "containerResourceReservation": ref("ContainerResourceReservation"),
            "dataCollection": ref("ModelDataCollection"),
            "imageId": {"type": "string", "minLength": 1, "maxLength": 64},
            "maxConcurrentRequestsPerContainer": {"type": "integer", "minimum": 1, "maximum": 10000},
            "name": NAME,
            "numReplicas": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    "ServiceRegenerateKeyRequest": {
        "type": "object",
        "required": ["keyType"],
        "properties": {"keyType": {"type": "string", "enum": ["Primary", "Secondary"]}},
    },
    "ServiceResponse": {
        "type": "object",
        "properties": {
            "createdAt": TIME,
            "ID": {"type": "string"},
            "id": {"type": "string"},
            "image": ref("Image"),
            "manifest": ref("Manifest"),
            "models": {"type": "array", "items": ref("Model")},
            "name": {"type": "string"},
            "scoringUri": {"type": "string"},
            "swaggerUri": {"type": "string", "description": "moma extension: the service's swagger.json."},
            "state": STATE,
            "updatedAt": TIME,
            "appInsightsEnabled": {"type": "boolean", "description": APP_INSIGHTS},
            "telemetry": ref("ServiceTelemetry"),
            "autoScaler": ref("AutoScaler"),
            "computeResource": ref("ComputeResource"),
            "containerResourceReservation": ref("ContainerResourceReservation"),
            "dataCollection": ref("ModelDataCollection"),
            "maxConcurrentRequestsPerContainer": {"type": "integer"},
            "numReplicas": {"type": "integer"},
            "error": ref("ErrorResponse"),
        },
    },
    "ServiceUpdateRequest": {
        "type": "object",
        "properties": {
            "appInsightsEnabled": {"type": "boolean", "description": APP_INSIGHTS},
            "telemetry": ref("ServiceTelemetry"),
            "autoScaler": ref("AutoScaler"),
            "containerResourceReservation": ref("ContainerResourceReservation"),
            "dataCollection": ref("ModelDataCollection"),
            "imageId": {"type": "string", "minLength": 1, "maxLength": 64},
            "maxConcurrentRequestsPerContainer": {"type": "integer", "minimum": 1, "maximum": 10000},
            "numReplicas": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    # Extensions of moma, for local use (documented as such in the Swagger document).
    "ComputeInfo": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "dockerHost": {"type": "string"},
                       "createdAt": {"type": "string"},
                       "tls": ref("ComputeTls")},
    },
    "ComputeTls": {
        "type": "object",
        "description": "TLS to a tcp:// dockerHost, needed off loopback (admin tokens only): PEM files on the "
                       "worker's host, absolute paths readable when the compute is added. Listed to other "
                       "tokens as verify only.",
        "properties": {
            "verify": {"type": "boolean", "default": True, "description": "Verify the engine's certificate."},
            "caCertPath": {"type": "string", "maxLength": 4096, "description": "Needed when verify is true."},
            "clientCertPath": {"type": "string", "maxLength": 4096},
            "clientKeyPath": {"type": "string", "maxLength": 4096},
        },
        "additionalProperties": False,
    },
    "ComputeList": {"type": "object", "properties": {"value": {"type": "array", "items": ref("ComputeInfo")}}},
    "CollectedDataFile": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "modeldata/{sub}/{rg}/{account}/{service}/{modelId}-{modelName}-"
                                                      "{modelVersion}/{identifier}/{yyyy}/{mm}/{dd}/data.csv"},
            "model": {"type": "string"}, "identifier": {"type": "string"},
            "date": {"type": "string", "format": "date"}, "format": {"type": "string", "enum": ["csv", "jsonl"]},
            "bytes": {"type": "integer"},
        },
    },
    "CollectedDataList": {"type": "object",
                          "properties": {"value": {"type": "array", "items": ref("CollectedDataFile")}}},
    "Compute": {
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": NAME,
            "type": {"type": "string", "enum": ["swarm"]},
            "dockerHost": {"type": "string", "maxLength": 512,
                           "description": "The swarm manager's Docker endpoint, unix:///path or tcp://host:port "
                                          "(admin tokens only); default: the worker's engine."},
            "tls": ref("ComputeTls"),
        },
        "additionalProperties": False,
    },
    "AccountRequest": {
        "type": "object",
        "required": ["accountName"],
        "properties": ACCOUNT_SCOPE,
        "additionalProperties": False,
    },
    "AccountInfo": {
        "type": "object",
        "properties": {"subscriptionId": {"type": "string"}, "resourceGroupName": {"type": "string"},
                       "accountName": {"type": "string"}, "createdAt": {"type": "string"},
                       "path": {"type": "string", "description": "The account's path under which its routes are."}},
    },
    "AccountList": {"type": "object", "properties": {"value": {"type": "array", "items": ref("AccountInfo")}}},
    "TokenInfo": {
        "type": "object",
        "properties": TOKEN_FIELDS,
    },
    "NewToken": {
        "type": "object",
        "properties": {**TOKEN_FIELDS, "token": {"type": "string", "description": "The secret, shown this once."}},
    },
    "ConsoleWhoami": {
        "type": "object",
        "required": ["admin", "tokenName", "account"],
        "properties": {"admin": {"type": "boolean"},
                       "tokenName": {"description": "The token's name; null without a token."},
                       "account": {"description": "An account token's account (AccountInfo); null for others."}},
    },
    "ConsoleSummary": {
        "type": "object",
        "required": ["models", "manifests", "images", "services", "operations"],
        "properties": {"models": {"type": "integer"}, "manifests": {"type": "integer"},
                       "images": {"type": "object", "additionalProperties": {"type": "integer"},
                                  "description": "Images by creation state."},
                       "services": {"type": "object", "additionalProperties": {"type": "integer"},
                                    "description": "Services by state."},
                       "operations": {"type": "array", "items": ref("AsyncOperationStatus"),
                                      "description": "The account's last operations, newest first."}},
    },
    "ArtifactSizes": {"type": "object", "additionalProperties": {"type": "integer"},
                      "description": "Bytes of each asked artifact (by sha256) this account uploaded."},
    "ImageLabels": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "The labels of a built image; empty while it is not built."},
    "TokenList": {"type": "object", "properties": {"value": {"type": "array", "items": ref("TokenInfo")}}},
    "TokenRevoked": {"type": "object", "properties": {"id": {"type": "string"}, "revoked": {"type": "boolean"}}},
    "TokenRequest": {
        "type": "object",
        "required": ["name"],
        "description": 'An admin token with "admin": true and no account fields; else a token of the named account.',
        "properties": {
            "name": {**SCOPE_PART, "description": "A name to recognise the token by: " + SCOPE_PART["description"]},
            "admin": {"type": "boolean", "default": False},
            **ACCOUNT_SCOPE,
        },
        "additionalProperties": False,
    },
    "Artifact": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "Use this URL in models and manifests."},
            "sha256": {"type": "string"},
            "size": {"type": "integer"},
        },
    },
}


def validate(body: Any, definition: str) -> dict[str, Any]:
    """The body without read-only and unknown fields, or ValidationFailed naming every failing field."""
    if not isinstance(body, dict):
        raise ValidationFailed("the request body must be a JSON object",
                               [Detail("InvalidBody", f"expected an object, got {type(body).__name__}")])
    body = _known_fields(body, ref(definition))
    errors = sorted(_validator(definition).iter_errors(body), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        details = [Detail("InvalidField", f"{_path(e)}: {_message(e)}") for e in errors]
        raise ValidationFailed(f"the {definition} in the request body is not valid: {details[0].message}", details)
    return body


def _known_fields(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` without the fields its schema does not list or marks read-only, at every
    depth: they are ignored, not stored (manifests are stored as sent, and an unknown
    asset field would only fail later, in the build). Objects whose schema says what
    to do with other fields (``additionalProperties``) keep them for validation."""
    schema = _resolve(schema)
    if isinstance(value, list) and "items" in schema:
        return [_known_fields(item, schema["items"]) for item in value]
    properties = schema.get("properties")
    if not isinstance(value, dict) or properties is None or "additionalProperties" in schema:
        return value
    return {key: _known_fields(item, properties[key]) for key, item in value.items()
            if key in properties and not _resolve(properties[key]).get("readOnly")}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _validator(definition: str) -> jsonschema.Draft4Validator:
    cached = _VALIDATORS.get(definition)
    if cached is None:
        cached = jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": DEFINITIONS})
        _VALIDATORS[definition] = cached
    return cached


def _path(error: jsonschema.ValidationError) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if error.validator == "required":
        missing = error.message.split("'")[1]
        text = f"{text}.{missing}" if text else missing
    if error.validator == "additionalProperties":
        unknown = ", ".join(_unknown_fields(error))
        text = f"{text}.{unknown}" if text else unknown
    return text or "body"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return "is required"
    if error.validator == "additionalProperties":
        return f"unknown field; the fields are {', '.join(error.schema.get('properties', {}))}"
    if error.validator == "pattern":
        return f"{error.instance!r} is not allowed ({error.schema.get('description') or error.validator_value})"
    return error.message


def _unknown_fields(error: jsonschema.ValidationError) -> list[str]:
    known = error.schema.get("properties", {})
    return sorted(str(key) for key in error.instance if key not in known)


_VALIDATORS: dict[str, jsonschema.Draft4Validator] = {}
