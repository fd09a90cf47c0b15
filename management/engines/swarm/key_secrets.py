"""A swarm service's keys: a Docker secret holding the key-hash file, named after the
service id and a hash of its content, mounted at the contract's ``KEYS_FILE`` (mode
0444, owned by the runtime's uid). New keys are a new secret; those no task uses any
more are removed afterwards."""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Mapping

import docker
import docker.errors

from .. import LABEL_GENERATION, LABEL_IMAGE, LABEL_ROLE, LABEL_SERVICE
from ..docker_errors import explain
from .definition import LABEL_DEFINITION_HASH, LABEL_PORT, LABEL_PUBLISH, LABEL_REVISION, KeysSecret

KEYS = "keys"  # their moma.role
# Labels of a service or of its tasks that say nothing about the keys: not on their secret.
_NOT_FOR_SECRETS = frozenset({LABEL_GENERATION, LABEL_ROLE, LABEL_IMAGE, LABEL_REVISION, LABEL_DEFINITION_HASH,
                              LABEL_PUBLISH, LABEL_PORT})


def secret_name(service_id: str, key_hashes: Iterable[str]) -> str:
    digest = hashlib.sha256(key_file(key_hashes)).hexdigest()
    return f"moma-keys-{service_id[:36]}-{digest[:12]}"


def key_file(key_hashes: Iterable[str]) -> bytes:
    return "".join(f"{digest}\n" for digest in key_hashes).encode()


def secret_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels of a service (or of its tasks) that its secrets carry too."""
    return {key: value for key, value in labels.items() if key not in _NOT_FOR_SECRETS}


class KeySecrets:
    """The key secrets of the services of one installation; ``selector(service_id)`` is
    the label filter that finds one service's."""

    def __init__(self, client: docker.DockerClient, selector: Callable[[str], dict[str, list[str]]]) -> None:
        self.client = client
        self.selector = selector

    def ensure(self, service_id: str, key_hashes: tuple[str, ...], labels: Mapping[str, str]) -> KeysSecret:
        """The secret with exactly these key hashes, created when missing."""
        name = secret_name(service_id, key_hashes)
        for secret in self.client.secrets.list(filters={"name": name}):
            if secret.name == name:
                return KeysSecret(secret.id, secret.name)
        try:
            created = self.client.secrets.create(name=name, data=key_file(key_hashes),
                                                 labels={**secret_labels(labels), LABEL_ROLE: KEYS})
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            created = self.client.secrets.get(name)  # created by a concurrent call
        return KeysSecret(created.id, name)

    def collect(self, service_id: str, keep: str | None) -> bool:
        """Remove the service's key secrets but ``keep``; False while some are in use."""
        done = True
        for secret in self.client.secrets.list(filters=self.selector(service_id)):
            if secret.name == keep:
                continue
            try:
                secret.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "in use" not in explain(exc):
                    raise
                done = False
        return done

    def service_ids(self, mine: dict[str, list[str]]) -> set[str]:
        """The services whose secrets match the filter ``mine`` (some may have no service left)."""
        return {secret.attrs["Spec"]["Labels"][LABEL_SERVICE] for secret in self.client.secrets.list(filters=mine)}
