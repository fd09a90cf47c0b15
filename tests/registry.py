"""A Docker registry of the test's own: Debian's ``docker-registry`` on 127.0.0.1 and a
free port (Docker pulls from and pushes to 127.0.0.0/8 over plain HTTP), storage in a
directory of the test's, stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import requests

from tests.conftest import stop_process_group
from tests.runtime.conftest import free_port

BINARY = "/usr/bin/docker-registry"
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json,"
                  "application/vnd.oci.image.manifest.v1+json")


class Registry:
    def __init__(self, location: Path, host: str = "127.0.0.1") -> None:
        self.location = location
        self.address = f"{host}:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which(BINARY) is not None

    def start(self, timeout: float = 30.0) -> "Registry":
        self.location.mkdir(parents=True, exist_ok=True)
        config = self.location / "config.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.location / 'data'}\n"
                          f"http:\n  addr: {self.address}\n")
        with open(self.location / "registry.log", "ab") as log:
            self.proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {(self.location / 'registry.log').read_text()}")
            try:
                if requests.get(f"http://{self.address}/v2/", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError("docker-registry did not answer in time")

    def digest(self, repository: str, tag: str) -> str:
        """The manifest digest the registry holds for ``repository:tag``."""
        answer = requests.head(f"http://{self.address}/v2/{repository}/manifests/{tag}",
                               headers={"Accept": MANIFEST_TYPES}, timeout=10)
        answer.raise_for_status()
        return answer.headers["Docker-Content-Digest"]

    def stop(self) -> None:
        stop_process_group(self.proc)
