"""An installation on this machine as docs/scale-out.md deploys one: PostgreSQL,
artifacts in blob storage (Azurite), the same service-key file for everyone, API replicas
(`moma serve --no-worker`, two by default) with their own ``$MOMA_HOME`` behind
HAProxy, and `moma worker`s with their own ``$MOMA_HOME``, building on this machine's
engine. For tests/scaleout and bench/bench_scale.py."""

from __future__ import annotations

from pathlib import Path

from bench.load_balancer import HAProxy
from bench.moma_server import MomaServer, MomaWorker, free_port
from management.client import ApiClient, Scope


class Installation:
    def __init__(self, root: Path, database_url: str, artifact_storage: str, image_labels: str,
                 lease_seconds: float = 4, replicas: int = 2, **settings: str) -> None:
        self.root = root
        ports = [free_port() for _ in range(replicas)]
        self.balancer = HAProxy(root / "haproxy", [f"127.0.0.1:{port}" for port in ports])
        self.env = {"MOMA_DATABASE_URL": database_url, "MOMA_ARTIFACT_STORAGE": artifact_storage,
                    "MOMA_SECRET_KEY_PATH": str(root / "secret.key"),
                    "MOMA_PUBLIC_URL": self.balancer.url, "MOMA_IMAGE_LABELS": image_labels,
                    "MOMA_WORKER_POLL_SECONDS": "0.2", "MOMA_WORKER_LEASE_SECONDS": str(lease_seconds), **settings}
        self.replicas = [MomaServer(root / f"api{number}", self.env, port=port, args=("--no-worker",))
                         for number, port in enumerate(ports, 1)]
        self.workers: list[MomaWorker] = []

    def start(self) -> "Installation":
        for replica in self.replicas:  # one after the other: the first makes the key and the schema
            replica.start()
        self.balancer.start()
        return self

    def worker(self, name: str, **settings: str) -> MomaWorker:
        """A worker with the installation's settings and ``settings`` (e.g. a
        ``DOCKER_HOST`` of its own: the engine it builds on)."""
        started = MomaWorker(self.root / name, {**self.env, **settings}).start()
        self.workers.append(started)
        return started

    @property
    def token(self) -> str:
        return self.replicas[0].token

    def client(self, scope: Scope = Scope()) -> ApiClient:
        """The API through the load balancer."""
        return ApiClient(self.balancer.url, self.token, scope)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.balancer.stop()
        for replica in self.replicas:
            replica.stop()
