"""Which Docker engines a compute may name, checked whole before anything is stored:
``unix://`` with an absolute path in normal form, or ``tcp://host:port``; a ``tcp://``
host off loopback only with TLS (client certificate and key, and a CA to verify the
engine unless ``verify`` is false), whose PEM files must exist and be readable by the
server now (they are read on the worker's host, which ``moma serve`` shares).

``ssh://`` is refused: the Docker SDK would run ``ssh`` (or paramiko) with the worker's
own keys and configuration, a credential moma can neither scope nor test. Tunnel the
engine's socket yourself and name the local end, or use ``tcp://`` with TLS."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import PurePosixPath
from typing import Any

from ..errors import Detail, ValidationFailed
from ..store.computes import TLS_FIELDS

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://.*", re.DOTALL)
_UNIX = re.compile(r"unix://(/[A-Za-z0-9._/-]*)")
_TCP = re.compile(r"tcp://(\[[^\]/@?#]*\]|[^:/@?#\[\]]+):([0-9]{1,5})")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_FORMS = "unix:///path/to/docker.sock or tcp://host:port"
PEM_HEAD = 64 * 1024


def check_engine(docker_host: str, tls: dict[str, Any] | None) -> dict[str, Any] | None:
    """The TLS settings to store (every field of ``TLS_FIELDS``), or None; ValidationFailed
    naming each problem otherwise."""
    problems = _docker_host_problems(docker_host, tls is not None)
    if tls is not None:
        if docker_host.startswith("tcp://"):
            problems += _tls_problems(tls)
        else:
            problems.append("tls: applies to tcp:// hosts only" if docker_host else "tls: needs a tcp:// dockerHost")
    if problems:
        raise ValidationFailed(f"the compute's Docker engine is not acceptable: {problems[0]}",
                               [Detail("InvalidDockerHost", problem) for problem in problems])
    if tls is None:
        return None
    return {"verify": tls.get("verify", True), "caCertPath": tls.get("caCertPath", ""),
            "clientCertPath": tls["clientCertPath"], "clientKeyPath": tls["clientKeyPath"]}


def _docker_host_problems(docker_host: str, with_tls: bool) -> list[str]:
    if not docker_host:
        return []
    if _has_control(docker_host):
        return ["dockerHost: contains a control character (a newline, a tab...)"]
    scheme = _SCHEME.fullmatch(docker_host)
    if scheme is None:
        return [f"dockerHost: {docker_host!r} is not {_FORMS}"]
    if scheme[1] == "ssh":
        return ["dockerHost: ssh:// is not supported: moma cannot scope or test SSH credentials; use tcp:// with "
                "tls, or unix:// to a socket you forward yourself"]
    if scheme[1] == "unix":
        return _unix_problems(docker_host)
    if scheme[1] == "tcp":
        return _tcp_problems(docker_host, with_tls)
    return [f"dockerHost: scheme {scheme[1]!r} is not supported; use {_FORMS}"]


def _unix_problems(docker_host: str) -> list[str]:
    match = _UNIX.fullmatch(docker_host)
    if match is None:
        return ["dockerHost: unix:// needs an absolute path of letters, digits, '.', '_', '-' and '/'"]
    return [f"dockerHost: {problem}" for problem in _path_problems(match[1])]


def _tcp_problems(docker_host: str, with_tls: bool) -> list[str]:
    match = _TCP.fullmatch(docker_host)
    if match is None:
        return [f"dockerHost: {docker_host!r} is not tcp://host:port (no user, path or query)"]
    host, port = match[1], int(match[2])
    problems = [] if 1 <= port <= 65535 else [f"dockerHost: port {port} is not from 1 to 65535"]
    loopback = _loopback(host)
    if loopback is None:
        problems.append(f"dockerHost: {host} is not a host name or IP address")
    elif not loopback and not with_tls:
        problems.append(f"dockerHost: {host} is not a loopback address: it needs tls (caCertPath, clientCertPath, "
                        "clientKeyPath), or anyone who can reach the port controls the engine")
    return problems


def _loopback(host: str) -> bool | None:
    """Whether ``host`` is a loopback address; None when it is not a host at all."""
    if host.startswith("["):
        try:
            return ipaddress.IPv6Address(host[1:-1]).is_loopback
        except ValueError:
            return None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return ipaddress.IPv4Address(host).is_loopback
        except ValueError:
            return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return host.lower() == "localhost"


def _tls_problems(tls: dict[str, Any]) -> list[str]:
    verify = tls.get("verify", True)
    required = ["clientCertPath", "clientKeyPath"]
    problems = [f"tls.{name}: is required" for name in required if name not in tls]
    if verify and "caCertPath" not in tls:
        problems.append("tls.caCertPath: is required to verify the engine's certificate (or \"verify\": false)")
    for name in TLS_FIELDS[1:]:
        if name in tls:
            problems += [f"tls.{name}: {problem}" for problem in _pem_problems(tls[name])]
    return problems


def _pem_problems(path: str) -> list[str]:
    if _has_control(path):
        return ["contains a control character (a newline, a tab...)"]
    problems = _path_problems(path)
    if problems:
        return problems
    if not os.path.exists(path):
        return [f"{path} does not exist (it is read on the worker's host, which must be this one)"]
    if not os.path.isfile(path):
        return [f"{path} is not a file"]
    try:
        with open(path, "rb") as pem:
            head = pem.read(PEM_HEAD)
    except OSError as exc:
        return [f"{path} cannot be read: {exc.strerror}"]
    if b"-----BEGIN " not in head:
        return [f"{path} is not a PEM file (no -----BEGIN line)"]
    return []


def _path_problems(path: str) -> list[str]:
    if not path.startswith("/"):
        return [f"{path} is not an absolute path"]
    if ".." in PurePosixPath(path).parts:
        return [f"{path} has a '..' part"]
    if str(PurePosixPath(path)) != path or "//" in path:
        return [f"{path} is not in normal form (no '.' parts, '//' or trailing '/')"]
    return []


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7f for char in text)
