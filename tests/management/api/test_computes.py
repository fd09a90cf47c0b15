"""Computes on other Docker engines: only an admin may point the server at one
(``dockerHost``, ``tls``); the endpoint is validated whole (``unix://`` absolute path or
``tcp://host:port``, TLS required off loopback, PEM files that exist and can be read),
every refusal is a 400 naming the field, and nothing is stored on a refusal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from management.store import Compute, Store
from management.store.migrations import upgrade

from ..helpers import DEFAULT_SCOPE, Api, check_error

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    """A CA certificate, client certificate and key as PEM files (their content is not
    checked beyond the PEM frame)."""
    paths = {}
    for field, name in (("caCertPath", "ca.pem"), ("clientCertPath", "cert.pem"), ("clientKeyPath", "key.pem")):
        path = tmp_path / "tls" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(PEM.replace("CERTIFICATE", "PRIVATE KEY") if name == "key.pem" else PEM)
        paths[field] = str(path)
    return paths


def stored(store: Store) -> list[str]:
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    return [compute.name for compute in store.computes.list(account.id)]


def refused(api: Api, store: Store, body: dict[str, Any], status: int = 400) -> str:
    """The error message (with its details) of a refused compute; nothing was stored."""
    response = api.post("/computes", {"name": "cluster", "type": "swarm", **body})
    assert response.status_code == status, response.get_data(as_text=True)
    error = check_error(response)
    assert stored(store) == ["local"]
    return " | ".join([error["message"], *(detail["message"] for detail in error.get("details", []))])


@pytest.mark.parametrize("body", [{"dockerHost": "tcp://127.0.0.1:2375"}, {"dockerHost": "unix:///var/run/docker.sock"},
                                  {"dockerHost": "tcp://10.0.0.5:2376", "tls": {"verify": False}},
                                  {"dockerHost": "ssh://root@10.0.0.5"}, {"dockerHost": "not a host"}])
def test_an_account_token_cannot_name_a_docker_host(api: Api, store: Store, account_token: str,
                                                      body: dict[str, Any]) -> None:
    user = Api(api.client, account_token)

    message = refused(user, store, body, status=403)

    assert "admin token" in message and "dockerHost" in message


def test_an_account_token_cannot_probe_files_through_tls(api: Api, store: Store, account_token: str,
                                                          pem: dict[str, str]) -> None:
    """The refusal is the same whether the files exist or not."""
    user = Api(api.client, account_token)
    missing = {key: value + ".missing" for key, value in pem.items()}

    answers = [refused(user, store, {"dockerHost": "tcp://10.0.0.5:2376", "tls": tls}, status=403)
               for tls in (pem, missing)]

    assert answers[0] == answers[1]


def test_an_account_token_may_add_a_compute_on_the_servers_engine(api: Api, store: Store,
                                                                   account_token: str) -> None:
    user = Api(api.client, account_token)

    added = user.ok("POST", "/computes", {"name": "cluster", "type": "swarm"})
    blank = user.ok("POST", "/computes", {"name": "cluster2", "type": "swarm", "dockerHost": ""})

    assert (added["dockerHost"], blank["dockerHost"]) == ("", "")
    assert stored(store) == ["local", "cluster", "cluster2"]


@pytest.mark.parametrize(("docker_host", "message"), [
    ("http://127.0.0.1:2375", "scheme 'http' is not supported"),
    ("https://127.0.0.1:2376", "scheme 'https' is not supported"),
    ("npipe:////./pipe/docker_engine", "scheme 'npipe' is not supported"),
    ("fd://", "scheme 'fd' is not supported"),
    ("127.0.0.1:2375", "unix:///path/to/docker.sock or tcp://host:port"),
    ("ssh://root@10.0.0.5", "ssh:// is not supported"),
    ("tcp://10.0.0.5:2375", "10.0.0.5 is not a loopback address: it needs tls"),
    ("tcp://docker.example:2375", "docker.example is not a loopback address: it needs tls"),
    ("tcp://127.0.0.1:2375\n", "control character"),
    ("unix:///var/run/docker.sock\n", "control character"),
    ("tcp://127.0.0.1:2375 ", "tcp://host:port"),
    ("unix://var/run/docker.sock", "absolute path"),
    ("unix:///var/run/../../etc/passwd", "'..'"),
    ("unix:///var/run/./docker.sock", "normal form"),
    ("unix:///var//run/docker.sock", "normal form"),
    ("unix:///var/run/", "normal form"),
    ("unix:///var/run/docker sock", "absolute path"),
    ("tcp://127.0.0.1", "tcp://host:port"),
    ("tcp://127.0.0.1:0", "port 0 is not from 1 to 65535"),
    ("tcp://127.0.0.1:65536", "port 65536 is not from 1 to 65535"),
    ("tcp://user:pw@127.0.0.1:2375", "tcp://host:port"),
    ("tcp://127.0.0.1:2375/v1.41", "tcp://host:port"),
    ("tcp://127.0.0.1:2375?x=1", "tcp://host:port"),
    ("tcp://host_name:2375", "host_name is not a host name or IP address"),
    ("tcp://-docker:2375", "-docker is not a host name or IP address"),
    ("tcp://[zz::1]:2375", "[zz::1] is not a host name or IP address"),
    ("tcp://999.1.1.1:2375", "999.1.1.1 is not a host name or IP address"),
    ("TCP://127.0.0.1:2375", "scheme 'TCP' is not supported"),
])
def test_docker_hosts_that_are_refused(api: Api, store: Store, docker_host: str, message: str) -> None:
    text = refused(api, store, {"dockerHost": docker_host})

    assert message in text, text
    assert "dockerHost" in text


@pytest.mark.parametrize("docker_host", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:2375",
                                         "tcp://localhost:2375", "tcp://127.8.9.10:65535"])
def test_local_endpoints_need_no_tls(api: Api, store: Store, docker_host: str) -> None:
    added = api.ok("POST", "/computes", {"name": "cluster", "type": "swarm", "dockerHost": docker_host})

    assert added["dockerHost"] == docker_host
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    compute = store.computes.get(account.id, "cluster")
    assert compute is not None and (compute.docker_host, compute.tls) == (docker_host, None)


def test_a_remote_engine_with_tls(api: Api, store: Store, account_token: str, pem: dict[str, str]) -> None:
    added = api.ok("POST", "/computes", {"name": "cluster", "type": "swarm", "dockerHost": "tcp://10.0.0.5:2376",
                                         "tls": pem})

    assert added["tls"] == {"verify": True, **pem}
    account = store.accounts.find(*DEFAULT_SCOPE)
    assert account is not None
    compute = store.computes.get(account.id, "cluster")
    assert compute is not None
    assert (compute.docker_host, compute.tls) == ("tcp://10.0.0.5:2376", {"verify": True, **pem})
    assert [c.tls for c in store.computes.list(account.id)] == [None, {"verify": True, **pem}]
    assert api.ok("GET", "/computes")["value"][1]["tls"] == {"verify": True, **pem}
    tenant_view = Api(api.client, account_token).ok("GET", "/computes")["value"][1]
    assert tenant_view["tls"] == {"verify": True}, "the worker's file paths are the operator's business"


def test_tls_without_verification_needs_no_ca(api: Api, store: Store, pem: dict[str, str]) -> None:
    client = {key: pem[key] for key in ("clientCertPath", "clientKeyPath")}

    added = api.ok("POST", "/computes", {"name": "cluster", "type": "swarm", "dockerHost": "tcp://10.0.0.5:2376",
                                         "tls": {"verify": False, **client}})

    assert added["tls"] == {"verify": False, "caCertPath": "", **client}


def test_tls_refusals(api: Api, store: Store, pem: dict[str, str], tmp_path: Path) -> None:
    remote = "tcp://10.0.0.5:2376"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        ({"dockerHost": remote, "tls": {**pem, "caCertPath": "relative/ca.pem"}}, "tls.caCertPath", "absolute"),
        ({"dockerHost": remote, "tls": {**pem, "caCertPath": str(tmp_path / "missing.pem")}}, "tls.caCertPath",
         "does not exist"),
        ({"dockerHost": remote, "tls": {**pem, "clientCertPath": str(tmp_path)}}, "tls.clientCertPath",
         "is not a file"),
        ({"dockerHost": remote, "tls": {**pem, "clientKeyPath": str(not_pem)}}, "tls.clientKeyPath",
         "is not a PEM file"),
        ({"dockerHost": remote, "tls": {**pem, "caCertPath": pem["caCertPath"] + "\n"}}, "tls.caCertPath",
         "control character"),
        ({"dockerHost": remote, "tls": {**pem, "caCertPath": str(tmp_path / "tls" / ".." / "tls" / "ca.pem")}},
         "tls.caCertPath", "'..'"),
        ({"dockerHost": remote, "tls": {**pem, "ca": "x"}}, "tls.ca", "unknown field"),
        ({"dockerHost": remote, "tls": {**pem, "verify": "yes"}}, "tls.verify", "not of type 'boolean'"),
        ({"dockerHost": remote, "tls": {"caCertPath": pem["caCertPath"]}}, "tls.clientCertPath", "is required"),
        ({"dockerHost": remote, "tls": {key: pem[key] for key in ("clientCertPath", "clientKeyPath")}},
         "tls.caCertPath", "is required to verify"),
        ({"dockerHost": "unix:///var/run/docker.sock", "tls": pem}, "tls", "tcp:// hosts only"),
        ({"tls": pem}, "tls", "needs a tcp:// dockerHost"),
    ]
    for body, field, message in cases:
        text = refused(api, store, body)
        assert f"{field}: " in text and message in text, (body, text)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_tls_file_is_refused(api: Api, store: Store, pem: dict[str, str]) -> None:
    os.chmod(pem["clientKeyPath"], 0)

    text = refused(api, store, {"dockerHost": "tcp://10.0.0.5:2376", "tls": pem})

    assert "tls.clientKeyPath: " in text and "cannot be read" in text


def test_computes_of_an_older_schema_keep_working(tmp_path: Path) -> None:
    """Migration 0003 adds computes.tls to a database that has computes already."""
    old = Store(f"sqlite:///{tmp_path / 'moma.db'}")
    upgrade(old.engine, "0002")
    account = old.accounts.ensure_default()
    with old.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO computes (account_id, name, kind, docker_host, created_at) "
                                   f"VALUES ({account.id}, 'cluster', 'swarm', 'tcp://127.0.0.1:2375', 'then')")

    old.migrate()

    assert old.computes.get(account.id, "cluster") == Compute("cluster", "swarm", "tcp://127.0.0.1:2375", "then", None)
    old.close()


def test_a_misspelled_field_is_refused_not_ignored(api: Api, store: Store) -> None:
    """A compute body is closed: "dockerhost" must not quietly make a compute on the server's engine."""
    text = refused(api, store, {"dockerhost": "tcp://10.0.0.5:2376"})

    assert "dockerhost: unknown field" in text
