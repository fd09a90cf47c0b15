"""Docker clients of computes: where their engine runs, and hosts that speak TLS
(``tcp://`` + the compute's ``tls`` settings) as ``dockerd --tlsverify`` does — a proxy
in front of the real engine that demands a client certificate signed by its CA, with
certificates made for each test."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Iterator

import pytest

from management.config import Settings
from management.engines import EngineError, EngineUnavailable
from management.engines.clients import on_this_machine
from management.engines.factory import Engines
from management.store import Compute

from .certificates import Authority
from .docker_proxy import DockerProxy


@pytest.mark.parametrize(("docker_host", "here"), [
    ("", True), ("unix:///var/run/docker.sock", True), ("tcp://127.0.0.1:2376", True), ("tcp://[::1]:2375", True),
    ("tcp://localhost:2375", True), ("tcp://10.0.0.5:2376", False), ("ssh://moma@manager.example", False)])
def test_an_engine_on_a_loopback_address_is_on_this_machine(docker_host: str, here: bool):
    assert on_this_machine(docker_host) is here


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
def tls_host(authority: Authority) -> Iterator[DockerProxy]:
    server = authority.server()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(authority.cert))
    context.load_cert_chain(server.cert, server.key)
    context.verify_mode = ssl.CERT_REQUIRED
    with DockerProxy(tls=context) as proxy:
        yield proxy


@pytest.fixture
def engines(tmp_path: Path, installation: str) -> Engines:
    return Engines(Settings(home=tmp_path / "home"), installation, timeout=10)


def settings_for(authority: Authority, **changes: Any) -> dict[str, Any]:
    client = authority.client()
    return {"verify": True, "caCertPath": str(authority.cert), "clientCertPath": str(client.cert),
            "clientKeyPath": str(client.key), **changes}


@pytest.mark.docker
@pytest.mark.parametrize("kind", ["local", "swarm"])
def test_an_engine_over_tls_with_a_client_certificate(engines, tls_host, authority, kind, request):
    if kind == "swarm":
        request.getfixturevalue("swarm")
    engine = engines.for_compute(Compute("secure", kind, tls_host.url, tls=settings_for(authority)))
    assert isinstance(engine.service_ids(), set)
    assert tls_host.connections >= 1


@pytest.mark.docker
def test_without_a_client_certificate_the_host_refuses(engines, tls_host, authority):
    tls = settings_for(authority, clientCertPath=None, clientKeyPath=None)
    with pytest.raises(EngineUnavailable):
        engines.for_compute(Compute("secure", "local", tls_host.url, tls=tls))


@pytest.mark.docker
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_host_whose_certificate_the_ca_did_not_sign_is_refused_unless_told_not_to_verify(
        engines, tls_host, authority, tmp_path):
    stranger = Authority(tmp_path / "other-ca", name="another CA")
    tls = settings_for(authority, caCertPath=str(stranger.cert))
    with pytest.raises(EngineUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        engines.for_compute(Compute("secure", "local", tls_host.url, tls=tls))
    unverified = engines.for_compute(Compute("lax", "local", tls_host.url, tls={**tls, "verify": False}))
    assert isinstance(unverified.service_ids(), set)


@pytest.mark.docker
def test_missing_certificate_files_are_an_engine_error(engines, tls_host, authority, tmp_path):
    tls = settings_for(authority, clientCertPath=str(tmp_path / "missing.pem"))
    with pytest.raises(EngineError, match="certificate"):
        engines.for_compute(Compute("secure", "local", tls_host.url, tls=tls))


@pytest.mark.docker
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_tls_settings_are_part_of_the_engine_identity(engines, tls_host, authority):
    tls = settings_for(authority)
    first = engines.for_compute(Compute("a", "local", tls_host.url, tls=tls))
    assert engines.for_compute(Compute("b", "local", tls_host.url, tls=dict(tls))) is first
    assert engines.for_compute(Compute("c", "local", tls_host.url, tls={**tls, "verify": False})) is not first
