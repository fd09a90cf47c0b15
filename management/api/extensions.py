"""What the API's views share, made once per app by :func:`init_app` and reached through
``current_app`` (the store, the engines, the service-key cipher, the artifact store),
never built by a view."""

from __future__ import annotations

from flask import Flask, current_app

from ..artifacts import ArtifactStore
from ..config import Settings
from ..engines.factory import Engines
from ..service_keys import KeyCipher
from ..store import Store

STORE = "moma.store"
ENGINES = "moma.engines"
CIPHER = "moma.cipher"
ARTIFACTS = "moma.artifacts"


def init_app(app: Flask, settings: Settings, store: Store) -> None:
    """``engines`` answer within ``MOMA_ENGINE_DEADLINE_SECONDS``: they serve requests."""
    app.extensions[STORE] = store
    app.extensions[ENGINES] = Engines(settings, store.meta.installation_id(), settings.engine_deadline_seconds)
    app.extensions[CIPHER] = KeyCipher(settings.secret_key_file)
    app.extensions[ARTIFACTS] = ArtifactStore(settings.artifact_dir)


def get_store() -> Store:
    return current_app.extensions[STORE]


def get_engines() -> Engines:
    return current_app.extensions[ENGINES]


def get_cipher() -> KeyCipher:
    return current_app.extensions[CIPHER]


def get_artifacts() -> ArtifactStore:
    return current_app.extensions[ARTIFACTS]
