"""The scoring contract, against real gunicorn over HTTP, one fixture driver per behaviour."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from .conftest import REPO, key_hash, prometheus_value


def test_ok_driver_scores_raw_body_and_sets_headers(serve):
    server = serve("ok.py")
    response = server.score({"a": [1, 2]}, headers={"x-ms-request-id": "req-123"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-ms-request-id"] == "req-123"
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert float(response.headers["x-ms-scoring-time-ms"]) >= 0.0
    # a length, not chunked framing (one write per response, server/gthread.py)
    assert response.headers["Content-Length"] == str(len(response.content))
    assert "Transfer-Encoding" not in response.headers
    body = response.json()
    assert body["raw"] == '{"a": [1, 2]}'  # without a schema run() gets the raw text
    assert body["input"] == {"a": [1, 2]}
    assert body["init_calls"] == 1  # init() ran exactly once in this worker
    assert os.path.realpath(body["cwd"]) == os.path.realpath(server.root)


def test_request_id_is_generated_when_absent(serve):
    server = serve("ok.py")
    first = server.score({}).headers["x-ms-request-id"]
    second = server.get("/livez").headers["x-ms-request-id"]
    assert uuid.UUID(first).version == 4 and uuid.UUID(second).version == 4
    assert first != second


def test_health_routes_and_swagger_without_schema(serve):
    server = serve("ok.py")
    root = server.get("/")
    assert (root.status_code, root.text) == (200, "Healthy")
    assert server.get("/livez").json()["state"] == "ready"
    assert server.get("/readyz").json()["state"] == "ready"
    doc = server.get("/swagger.json").json()
    assert doc["swagger"] == "2.0"
    assert doc["securityDefinitions"]["Bearer"] == {
        "type": "apiKey", "name": "Authorization", "in": "header",
        "description": "For example: Bearer abc123"}
    assert {path for path in doc["paths"] if not path.startswith("/v2")} == {"/", "/score"}
    assert doc["paths"]["/v2/models/{model_name}/infer"]["post"]["parameters"][0]["enum"] == ["model"]


NAMED = "moma-tenant-acct-fraud-svc-1a2b3c-g4"  # what an engine names a container


def _opaque(text: str) -> None:
    for word in ("tenant", "acct", "fraud", "svc", "1a2b3c", socket.gethostname()):
        assert word not in text, text


def test_health_routes_tell_instances_apart_without_naming_them(serve, tmp_path):
    """/readyz and /livez answer anybody: an opaque id, the same from every worker; the
    container's name (account, service) only on authenticated /metrics and in the start-up
    log line that ties the two together for the operator."""
    keys = tmp_path / "keys"
    keys.write_text(key_hash("k") + "\n")
    server = serve("ok.py", WORKERS="2", MOMA_INSTANCE=NAMED, MOMA_KEYS_FILE=str(keys))
    ids = set()
    for path in ("/readyz", "/livez") * 10:  # new connections: both workers answer
        answer = server.get(path)
        _opaque(answer.text)
        ids.add(answer.json()["instance"])
    assert len(ids) == 1 and len(ids.pop()) >= 16
    assert f'moma_instance{{instance="{NAMED}"}} 1.0' in server.get("/metrics", key="k").text
    opaque_id = server.get("/readyz").json()["instance"]
    assert f"instance {NAMED} answers /readyz and /livez as {opaque_id}" in server.stderr()  # the operator's log
    another = serve("ok.py", MOMA_INSTANCE=NAMED)
    assert another.get("/readyz").json()["instance"] != server.get("/readyz").json()["instance"]
    chosen = serve("ok.py", MOMA_INSTANCE=NAMED, MOMA_INSTANCE_ID="engine-chosen-7f3a")
    assert chosen.get("/livez").json() == {"state": "ready", "instance": "engine-chosen-7f3a"}
    failed = serve("raises_in_init.py", wait="/livez", MOMA_INSTANCE=NAMED)
    assert failed.get("/readyz").status_code == 503
    _opaque(failed.get("/readyz").text)


def test_post_score_needs_json(serve):
    server = serve("ok.py")
    response = server.request("POST", "/score", data="x=1",
                              headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert server.request("POST", "/score", data="{}").status_code == 415  # no content type
    ok = server.request("POST", "/score", data="{}",
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_get_score_passes_query_arguments_as_json(serve):
    server = serve("ok.py")
    response = server.get("/score?x=1&name=iris&flag=true")
    assert response.status_code == 200
    assert response.json()["input"] == {"x": 1, "name": "iris", "flag": True}


ARRAY_SCHEMA = json.dumps({"input": {"data": {"swagger": {"type": "array"}, "type": 0}}})


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _raw_get(server, target: str) -> tuple[int, dict]:
    """A GET with ``target`` sent as it is (brackets unescaped: the request line stays
    under gunicorn's 4094-byte limit)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", target, headers={"Connection": "close"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


@pytest.mark.parametrize("schema", [True, False], ids=["schema", "no_schema"])
def test_deeply_nested_json_is_bad_input(serve, schema):
    """JSON nested past the parser's recursion limit: 400, not a RecursionError's 500."""
    server = serve("kwargs.py" if schema else "ok.py",
                   files={"service_schema.json": ARRAY_SCHEMA} if schema else None)
    status, body = _raw_get(server, "/score?data=" + _nested(1500))
    assert (status, body["code"]) == (400, "bad_input"), body
    assert "nested too deeply" in body["message"]
    assert _raw_get(server, "/score?data=" + _nested(50))[0] == 200
    if schema:
        response = server.request("POST", "/score", data='{"data": %s}' % _nested(100_000),
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["code"] == "bad_input", response.text
        assert "nested too deeply" in response.json()["message"]
        assert server.score({"data": json.loads(_nested(50))}).json() == {"data": "list"}
    assert "RecursionError" not in server.stderr()


def test_unknown_route_and_method_are_json_errors(serve):
    server = serve("ok.py")
    missing = server.get("/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = server.request("PUT", "/score", json_body={})
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_body_too_large_is_refused(serve):
    server = serve("ok.py", MOMA_MAX_BODY_BYTES="100")
    response = server.score({"blob": "x" * 200})
    assert response.status_code == 413
    assert set(response.json()) == {"message", "code"}


def test_run_exception_is_driver_error_without_traceback(serve):
    server = serve("raises_in_run.py")
    response = server.score({"row": 1})
    assert response.status_code == 500
    assert response.headers["x-ms-run-function-failed"] == "True"
    body = response.json()
    assert body["code"] == "driver_error"
    assert body["message"] == "ValueError: cannot score '{\"row\": 1}'"
    assert "Traceback" not in response.text and "s3cr3t" not in response.text
    request_id = response.headers["x-ms-request-id"]
    deadline = time.monotonic() + 5
    while "Traceback" not in server.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    failure = [line for line in lines if line.get("request_id") == request_id
               and "exc_info" in line]
    assert failure, "the driver's traceback is logged with the request id"
    assert "_inner" in failure[0]["exc_info"] and "ValueError" in failure[0]["exc_info"]


def test_bad_output_is_driver_error(serve):
    server = serve("bad_output.py")
    response = server.score({})
    assert response.status_code == 500
    assert response.json()["code"] == "driver_error"
    assert "Opaque" in response.json()["message"]
    assert response.headers["x-ms-run-function-failed"] == "True"


@pytest.mark.parametrize("kind, expected", [
    ("str", '"[\\"Iris-setosa\\"]"'),  # a returned str is JSON-encoded again
    ("numpy", "[[1, 2], [3, 4]]"),
    ("numpy_scalar", '{"score": 0.5, "label": 2, "flag": true}'),
    ("pandas", '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]'),
    ("none", "null"),
])
def test_output_encoding(serve_outputs, kind, expected):
    response = serve_outputs.score({"kind": kind})
    assert response.status_code == 200, response.text
    assert response.text == expected


@pytest.fixture(scope="module")
def serve_outputs(serve_shared):
    return serve_shared("outputs.py")


def test_failed_init_keeps_container_up_and_reports(serve):
    server = serve("raises_in_init.py", wait="/livez")
    ready = server.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["state"] == "failed"
    assert "RuntimeError: model file missing: model.pkl" in ready.json()["message"]
    score = server.score({"x": 1})
    assert score.status_code == 503
    assert score.json()["code"] == "not_ready"
    assert "model file missing" in score.json()["message"]
    assert server.get("/").status_code == 503
    assert server.get("/livez").status_code == 200
    with pytest.raises(subprocess.TimeoutExpired):  # the container stays up
        server.proc.wait(0.5)
    assert not (server.root / "RUN_WAS_CALLED").exists()
    errors = server.stderr()
    assert "Traceback" in errors and "model file missing" in errors


def test_missing_driver_file_is_failed_state(serve):
    server = serve("ok.py", wait="/livez", MOMA_DRIVER="nope.py")
    body = server.get("/readyz").json()
    assert body["state"] == "failed" and "nope.py" in body["message"]


def test_healthcheck_module(serve):
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    server = serve("ok.py")
    ok = subprocess.run([sys.executable, "-m", "runtime.healthcheck"], cwd=REPO,
                        env={**env, "PORT": str(server.port)})
    assert ok.returncode == 0
    failed = serve("raises_in_init.py", wait="/livez")
    bad = subprocess.run([sys.executable, "-m", "runtime.healthcheck"], cwd=REPO,
                         env={**env, "PORT": str(failed.port)})
    assert bad.returncode == 1
    server.stop()
    gone = subprocess.run([sys.executable, "-m", "runtime.healthcheck"], cwd=REPO,
                          env={**env, "PORT": str(server.port)})
    assert gone.returncode == 1


def test_access_log_is_json_with_request_id(serve):
    server = serve("ok.py")
    server.score({}, headers={"x-ms-request-id": "access-log-id"})
    deadline = time.monotonic() + 3
    while "access-log-id" not in server.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in server.stdout().splitlines()]
    entry = [line for line in lines if line.get("request_id") == "access-log-id"]
    assert entry and entry[0]["status"] == 200 and entry[0]["path"] == "/score"
    assert entry[0]["logger"] == "access" and entry[0]["duration_ms"] >= 0


def _access_lines(server, count: int) -> list[dict]:
    """The access lines once ``count`` requests with a query string are in (the readiness
    polls before them have none, and lines are written in batches, every 0.2 s)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.stdout().splitlines()]
        if sum(line.get("query_bytes", 0) > 0 for line in lines) >= count \
                or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_access_log_never_records_query_strings(serve, worker_class):
    """A careless client puts its key in a query: no route's access line keeps it (nor
    any other query value or name); the line says how long the query was."""
    server = serve("ok.py", WORKER_CLASS=worker_class)
    secret = "s3cr3t-" + uuid.uuid4().hex
    targets = [f"/score?key={secret}&x=1", f"/score?{secret}", f"/readyz?token={secret}",
               f"/livez?{secret}=1", f"/?k={secret}", f"/swagger.json?k={secret}",
               f"/metrics?k={secret}", f"/nope?k={secret}"]
    for target in targets:
        server.get(target)
    server.request("POST", f"/score?api_key={secret}", json_body={})
    lines = _access_lines(server, len(targets) + 1)
    assert secret not in server.stdout()
    by_path = {line["path"]: line for line in lines}
    assert set(by_path) == {"/score", "/readyz", "/livez", "/", "/swagger.json", "/metrics", "/nope"}
    assert all("query" not in line for line in lines)
    assert by_path["/readyz"]["query_bytes"] == len(f"token={secret}")


def test_a_users_access_log_format_gets_no_query_either(serve, tmp_path):
    """With a logging config of the operator's, gunicorn's own format is used: its
    request line and query atoms come without the query, the key header not at all."""
    config = tmp_path / "logging.json"
    config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False, "root": {"handlers": []},
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain",
                             "stream": "ext://sys.stdout"}},
        "loggers": {"gunicorn.access": {"handlers": ["out"], "level": "INFO",
                                        "propagate": False}}}))
    atoms = "%(r)s|%(q)s|%({authorization}i)s|%({raw_uri}e)s|%({query_string}e)s"
    server = serve("ok.py", ACCESS_LOG="false", GUNICORN_CMD_ARGS=(
        f"--log-config-json {config} --access-logformat '{atoms}'"))
    secret = "s3cr3t-" + uuid.uuid4().hex
    server.get(f"/score?key={secret}", headers={"Authorization": f"Bearer {secret}"})
    deadline = time.monotonic() + 5
    while "GET /score" not in server.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /score HTTP/1.1||-|-|-" in server.stdout()
    assert secret not in server.stdout()


def test_keys_guard_everything_but_health(serve, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{key_hash('primary')}\n{key_hash('secondary')}\n")
    server = serve("slow.py", MOMA_KEYS_FILE=str(keys), SLOW_STATE_DIR=str(tmp_path))
    for path in ("/", "/livez", "/readyz"):
        assert server.get(path).status_code == 200
    for key in (None, "wrong", ""):
        for method, path in (("POST", "/score"), ("GET", "/score"), ("GET", "/swagger.json"),
                             ("GET", "/metrics"), ("GET", "/nope")):
            response = server.request(method, path, key=key, json_body={"sleep": 0})
            assert response.status_code == 401, (method, path, key)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["code"] == "unauthorized"
    assert not (tmp_path / "concurrency.json").exists(), "the driver never ran"
    assert server.request("POST", "/score", json_body={"sleep": 0},
                          headers={"Authorization": "Basic cHJpbWFyeQ=="}).status_code == 401
    assert server.score({"sleep": 0}, key="primary").status_code == 200
    assert server.score({"sleep": 0}, key="secondary").status_code == 200
    assert server.request("POST", "/score", json_body={"sleep": 0},
                          headers={"Authorization": "bearer secondary"}).status_code == 200
    assert server.get("/swagger.json", key="primary").json()["paths"]["/score"]["post"][
        "security"] == [{"Bearer": []}]


def test_metrics_report_requests_errors_and_gauges(serve):
    server = serve("raises_in_run.py")
    for _ in range(3):
        assert server.score({}).status_code == 500
    server.get("/nope")
    text = server.get("/metrics").text
    assert prometheus_value(text, "moma_requests_total", {"route": "/score", "status": "500"}) == 3
    assert prometheus_value(text, "moma_requests_total", {"route": "other", "status": "404"}) == 1
    assert prometheus_value(text, "moma_driver_errors_total", {"kind": "exception"}) == 3
    assert prometheus_value(text, "moma_request_duration_seconds_count", {"route": "/score"}) == 3
    assert prometheus_value(text, "moma_requests_in_flight") == 1  # this /metrics request
    assert prometheus_value(text, "moma_scoring_in_flight") == 0
    assert prometheus_value(text, "moma_queue_depth") == 0
