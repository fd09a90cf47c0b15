"""Validation matches whole values. Python's ``$`` also matches before a final newline,
and jsonschema runs ``pattern`` with ``re.search``: a name like ``"x\\n"`` must be
refused by the API with a 400 naming the field, not later by the worker or Docker.

Every validated field is tried with a trailing newline, and two scans keep it so: every
``pattern`` the API publishes refuses a trailing newline, and no regular expression in
the API, store, CLI or client ends in a bare ``$``."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from management.api import swagger
from management.store import Store

from ..helpers import Api, check_error, image_body, manifest_body, model_body

ROOT = Path(__file__).parents[3]
SCANNED = ["management/api", "management/store", "management/cli", "management/client.py", "management/config.py",
           "management/artifacts.py"]
# Patterns that parse text moma or a tool wrote, line by line, and validate nothing.
PARSERS = {("management/cli/progress.py", r"^Step (\d+)/(\d+)")}
# Owned by another part of the tree; reported to its owner.
ELSEWHERE: set[str] = set()


def service_body(**changes: Any) -> dict[str, Any]:
    return {"imageId": "0" * 36, "name": "svc", "computeResource": {"id": "local", "type": "Cluster"}, **changes}


@pytest.mark.parametrize(("route", "body", "field"), [
    ("/models", model_body(name="iris\n"), "name"),
    ("/models", model_body(tags=["prod\n"]), "tags[0]"),
    ("/manifests", manifest_body([], name="irisapp\n"), "name"),
    ("/manifests", manifest_body([], driverProgram="driver\n",
                                 assets=[{"id": "driver\n", "url": "https://example.com/score.py"}]),
     "assets[0].id"),
    ("/images", image_body("m", name="irisimage\n"), "name"),
    ("/services", service_body(name="svc\n"), "name"),
    ("/computes", {"name": "cluster\n", "type": "swarm"}, "name"),
])
def test_a_trailing_newline_is_refused_in_account_bodies(api: Api, route: str, body: dict[str, Any],
                                                          field: str) -> None:
    response = api.post(route, body)

    assert response.status_code == 400, response.get_data(as_text=True)
    error = check_error(response)
    assert error["code"] == "ValidationError"
    assert any(detail["message"].startswith(f"{field}: ") for detail in error["details"]), error


@pytest.mark.parametrize(("route", "body", "field"), [
    ("/api/admin/accounts", {"subscriptionId": "sub\n", "resourceGroupName": "rg", "accountName": "acct"},
     "subscriptionId"),
    ("/api/admin/accounts", {"subscriptionId": "sub", "resourceGroupName": "rg\n", "accountName": "acct"},
     "resourceGroupName"),
    ("/api/admin/accounts", {"subscriptionId": "sub", "resourceGroupName": "rg", "accountName": "acct\n"},
     "accountName"),
    ("/api/admin/tokens", {"name": "ci\n", "admin": True}, "name"),
    ("/api/admin/tokens", {"name": "ci", "subscriptionId": "default", "resourceGroupName": "default",
                           "accountName": "default\n"}, "accountName"),
])
def test_a_trailing_newline_is_refused_in_admin_bodies(api: Api, store: Store, route: str, body: dict[str, Any],
                                                        field: str) -> None:
    accounts, tokens = len(store.accounts.list()), len(store.tokens.list())

    response = api.open("POST", route, json=body)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert field in check_error(response)["message"]
    assert (len(store.accounts.list()), len(store.tokens.list())) == (accounts, tokens)


def _skip_token(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("name", "value"), [("count", "5\n"), ("$skipToken", _skip_token(1) + "\n"),
                                             ("$skipToken", _skip_token(1)[:4] + "\n" + _skip_token(1)[4:])])
def test_a_newline_in_paging_parameters_is_refused(api: Api, name: str, value: str) -> None:
    api.register_model()

    response = api.get("/models", params={name: value})

    assert response.status_code == 400
    assert name in check_error(response)["message"]


@pytest.mark.parametrize("url", ["https://example.com/model.pkl\n", "https://example.com/mo\ndel.pkl",
                                 "https://exa\tmple.com/model.pkl", "https://example.com/model.pkl\r"])
def test_control_characters_in_urls_are_refused(api: Api, url: str) -> None:
    """urllib drops tabs and newlines when it parses a URL; the stored URL would keep them."""
    model = api.post("/models", model_body(url=url))
    manifest = api.post("/manifests", manifest_body([], assets=[{"id": "driver", "url": url}]))

    assert (model.status_code, manifest.status_code) == (400, 400)
    assert "control character" in check_error(model)["message"]
    assert check_error(manifest)["details"][0]["message"].startswith("assets[0].url: ")


def test_values_without_the_newline_are_accepted(api: Api) -> None:
    """The refusals above are about the newline, not the values."""
    model = api.register_model(name="iris", tags=["prod"])
    manifest = api.register_manifest([model["id"]], name="irisapp")
    api.create_image(manifest["id"], name="irisimage")
    assert api.ok("POST", "/computes", {"name": "cluster", "type": "swarm"})["id"] == "cluster"
    assert api.get("/models", params={"count": "5", "$skipToken": _skip_token(1)}).status_code == 200


def _patterns(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "pattern" and isinstance(item, str):
                yield where, item
            else:
                yield from _patterns(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _patterns(item, f"{where}[{index}]")


PUBLISHED = sorted(set(_patterns(swagger.swagger_document(), "swagger")))


def test_the_document_has_patterns_to_check() -> None:
    assert len(PUBLISHED) >= 5


@pytest.mark.parametrize(("where", "pattern"), PUBLISHED)
def test_every_published_pattern_refuses_a_trailing_newline(where: str, pattern: str) -> None:
    """Whatever a pattern accepts, it refuses with a newline appended (as jsonschema runs
    it: ``re.search``)."""

    @given(st.from_regex(pattern, fullmatch=True))
    @settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.filter_too_much])
    def check(value: str) -> None:
        assert re.search(pattern, value)
        assert not re.search(pattern, value + "\n"), (where, value)

    check()


def _regex_literals(path: Path) -> Iterator[tuple[str, int]]:
    """Pattern literals handed to ``re`` functions, and schema ``pattern`` values."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if (isinstance(key, ast.Constant) and key.value == "pattern" and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)):
                    yield value.value, node.lineno


def _scanned_files() -> Iterator[Path]:
    for entry in SCANNED:
        path = ROOT / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        yield from (file for file in files if str(file.relative_to(ROOT)) not in ELSEWHERE)


def test_no_pattern_ends_in_a_bare_dollar() -> None:
    """``$`` accepts a final newline: validate with ``re.fullmatch`` (in Python) or end a
    schema pattern with ``$(?!\\n)``."""
    found = []
    for path in _scanned_files():
        relative = str(path.relative_to(ROOT))
        for pattern, line in _regex_literals(path):
            if (relative, pattern) in PARSERS:
                continue
            if re.search(r"(?<!\\)\$\)*$", pattern):
                found.append(f"{relative}:{line}: {pattern}")
    assert not found, "\n".join(found)


def test_the_scan_finds_a_bare_dollar(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('import re\nA = re.compile(r"^[a-z]+$")\nB = {"pattern": "^x$"}\nC = re.compile(r"[a-z]+")\n')

    assert [pattern for pattern, _ in _regex_literals(sample)
            if re.search(r"(?<!\\)\$\)*$", pattern)] == ["^[a-z]+$", "^x$"]
