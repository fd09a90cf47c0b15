"""The test client of the management API, the request bodies the original CLI sent,
and the shortcuts several test modules take (a built image, a service, waiting).

:class:`Api` wraps Flask's test client for one account path and one token, and checks
what every response must be, whatever the test: an ``x-ms-request-id``, the echoed
``x-ms-client-request-id``, errors in the spec's ErrorResponse shape with the HTTP
status in ``statusCode``, and a body that matches the schema the API's own Swagger
document gives for that route, method and status (strictly: no undocumented field).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, Callable, Iterator

import jsonschema
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from management.api import swagger
from management.config import SUPPORTED_API_VERSIONS
from management.store import Store

V2017, V2018 = SUPPORTED_API_VERSIONS
DEFAULT_SCOPE = ("default", "default", "default")
HTTPS = "https://example.blob.core.windows.net/models"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def account_path(scope: tuple[str, str, str]) -> str:
    sub, rg, name = scope
    return f"/api/subscriptions/{sub}/resourceGroups/{rg}/accounts/{name}"


def model_body(name: str = "irismodel", **changes: Any) -> dict[str, Any]:
    """What ``az ml model register`` sent for a model in blob storage."""
    return {"name": name, "tags": [], "description": "iris classifier",
            "url": f"{HTTPS}/{uuid.uuid4()}.tar.gz?sv=2017-04-17&sig=abc", "mimeType": "application/x-tar",
            "unpack": True, **changes}


def manifest_body(model_ids: list[str], name: str = "irisapp", **changes: Any) -> dict[str, Any]:
    """What ``az ml manifest create`` sent: the driver is an asset id."""
    return {
        "name": name, "driverProgram": "driver", "modelType": "Registered", "modelIds": model_ids,
        "webserviceType": "Realtime",
        "targetRuntime": {"runtimeType": "Python", "properties": {
            "pipRequirements": f"{HTTPS}/requirements.txt?sig=1", "condaEnvFile": f"{HTTPS}/conda_env.yml?sig=2"}},
        "assets": [{"id": "driver", "url": f"{HTTPS}/score.py?sig=3", "mimeType": "application/x-python"},
                   {"id": "0c8c9995", "url": f"{HTTPS}/deps.tar.gz?sig=4", "mimeType": "application/octet-stream",
                    "unpack": True}],
        **changes,
    }


def image_body(manifest_id: str, name: str = "irisimage", **changes: Any) -> dict[str, Any]:
    """What ``az ml image create`` sent."""
    return {"name": name, "manifestId": manifest_id, "description": "iris image", "imageType": "Docker",
            "computeResourceId": "/subscriptions/default/resourceGroups/default/providers/x/envs/local",
            **changes}


@dataclass
class Api:
    client: FlaskClient
    token: str | None
    scope: tuple[str, str, str] = DEFAULT_SCOPE
    version: str = V2017
    request_ids: set[str] = field(default_factory=set)

    @property
    def base(self) -> str:
        return account_path(self.scope)

    def as_account(self, scope: tuple[str, str, str], token: str | None | EllipsisType = ...) -> "Api":
        """The same client on another account's path, with this client's token unless given."""
        return Api(self.client, self.token if token is ... else token, scope, self.version, self.request_ids)

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             version: str | None | EllipsisType = ..., **kwargs: Any) -> TestResponse:
        """``path`` is relative to the account; ``api-version`` is added unless ``version=None``."""
        query = {"api-version": self.version if version is ... else version, **(params or {})}
        query = {key: value for key, value in query.items() if value is not None}
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        return self.open(method, url, **kwargs)

    def open(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             token: str | None | EllipsisType = ..., **kwargs: Any) -> TestResponse:
        """Any URL, as it is (an absolute one loses only its scheme and host)."""
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        headers = dict(headers or {})
        token = self.token if token is ... else token
        if token is not None and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(target, method=method, headers=headers, **kwargs)
        self.check(method, parts.path, headers, response)
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, json=body, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """The JSON of a call that must succeed with 200."""
        response = self.call(method, path, json=body, **kwargs)
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
        return response.get_json()

    def register_model(self, **changes: Any) -> dict[str, Any]:
        return self.ok("POST", "/models", model_body(**changes))

    def register_manifest(self, model_ids: list[str], **changes: Any) -> dict[str, Any]:
        return self.ok("POST", "/manifests", manifest_body(model_ids, **changes))

    def create_image(self, manifest_id: str, **changes: Any) -> str:
        """The operation id of a new image build."""
        response = self.post("/images", image_body(manifest_id, **changes))
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.headers["Operation-Location"].rsplit("/", 1)[-1]

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a list, following ``nextLink`` verbatim."""
        page = self.ok("GET", path, params=params)
        yield page
        while "nextLink" in page:
            response = self.open("GET", page["nextLink"])
            assert response.status_code == 200, response.get_data(as_text=True)
            page = response.get_json()
            yield page

    def check(self, method: str, path: str, headers: dict[str, str], response: TestResponse) -> None:
        request_id = response.headers.get("x-ms-request-id")
        assert request_id, f"{method} {path}: no x-ms-request-id"
        assert request_id not in self.request_ids, f"{method} {path}: x-ms-request-id {request_id} reused"
        self.request_ids.add(request_id)
        if "x-ms-client-request-id" in headers:
            assert response.headers.get("x-ms-client-request-id") == headers["x-ms-client-request-id"]
        if response.status_code >= 400:
            check_error(response)
        else:
            DOCUMENT.check(method, path, response)


def check_error(response: TestResponse) -> dict[str, Any]:
    """The body of an error response, which must be the spec's ErrorResponse."""
    assert response.mimetype == "application/json", (response.status_code, response.mimetype)
    body = response.get_json()
    DOCUMENT.validate(body, "ErrorResponse")
    assert body["statusCode"] == response.status_code, body
    assert body["message"] and body["code"], body
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    return body


MINIMAL_SERVICE = {"computeResource": {"id": "local", "type": "Cluster"}, "autoScaler": {},
                   "containerResourceReservation": {}}


def image_id_of(api: Api, operation_id: str) -> str:
    """The image an image operation builds."""
    return api.ok("GET", f"/operations/{operation_id}")["resourceLocation"].rsplit("/", 1)[-1]


def image_of(api: Api, operation_id: str) -> dict[str, Any]:
    return api.ok("GET", f"/images/{image_id_of(api, operation_id)}")


def succeeded_image(api: Api, store: Store, name: str = "irisimage") -> dict[str, Any]:
    """A built image, as the worker would leave it. Claims the oldest operation: create
    images before services in a test."""
    model = api.register_model(name=f"{name}-m")
    manifest = api.register_manifest([model["id"]], name=f"{name}-app")
    api.create_image(manifest["id"], name=name)
    operation = store.operations.claim("test-worker", 60_000, 3)
    assert operation is not None
    store.images.complete(operation.id, "test-worker", operation.resource_id, "Succeeded",
                          image_location=f"default/{name}:1")
    return {"id": operation.resource_id, "manifest": manifest, "model": model}


def create_service(api: Api, image_id: str, name: str = "svc", **changes: Any) -> TestResponse:
    return api.post("/services", {"imageId": image_id, "name": name, **MINIMAL_SERVICE, **changes})


def service_id_of(api: Api, response: TestResponse) -> str:
    """The service a 202 from create or update is about."""
    assert response.status_code == 202, response.get_data(as_text=True)
    operation = api.ok("GET", "/operations/" + response.headers["Operation-Location"].rsplit("/", 1)[-1])
    return operation["resourceLocation"].rsplit("/", 1)[-1]



def run_in_threads(count: int, work: Callable[[], list[Any]]) -> list[Any]:
    """The results of ``work`` run by ``count`` threads that start together; their errors fail the test."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.extend(work())
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


class SwaggerDocument:
    """The response schemas of the API's own Swagger document, made strict: an object
    may carry only the properties the document lists."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.definitions = {name: _strict(schema) for name, schema in copy.deepcopy(document["definitions"]).items()}
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), item)
                       for template, item in document["paths"].items()]

    def validate(self, body: Any, definition: str) -> None:
        self.validate_schema(body, {"$ref": f"#/definitions/{definition}"})

    def validate_schema(self, body: Any, schema: dict[str, Any]) -> None:
        validator = jsonschema.Draft4Validator({**schema, "definitions": self.definitions},
                                               format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
        errors = list(validator.iter_errors(body))
        assert not errors, f"{json.dumps(body)[:500]} does not match {schema}: {[e.message for e in errors]}"

    def response(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """The document's response object for a route, method and status; None for
        routes it does not describe."""
        for pattern, item in self.routes:
            if pattern.match(path) and method.lower() in item:
                response = item[method.lower()]["responses"].get(str(status))
                assert response is not None, f"{method} {path}: status {status} is not in the document"
                return response
        return None

    def check(self, method: str, path: str, response: TestResponse) -> None:
        """A success matches its schema; one the document gives no schema has no body."""
        documented = self.response(method, path, response.status_code)
        if documented is None:
            return
        if "schema" not in documented:
            assert response.get_data() == b"", f"{method} {path}: a body where the document has none"
        elif response.mimetype == "application/json":
            self.validate_schema(response.get_json(), documented["schema"])


def _strict(schema: Any) -> Any:
    """Objects without undocumented properties; Swagger 2.0's ``x-nullable`` as JSON Schema's null type."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        if schema.pop("x-nullable", False):
            schema["type"] = [schema["type"], "null"]
    elif isinstance(schema, list):
        schema = [_strict(item) for item in schema]
    return schema


DOCUMENT = SwaggerDocument(swagger.swagger_document())
