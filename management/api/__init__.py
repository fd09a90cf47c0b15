"""The Model Management Account API (Flask). ``create_app`` is the only way to get an
app: defaults, then ``MOMA_*`` environment, then the ``config`` the caller passes."""

from __future__ import annotations

from typing import Any, cast

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from .. import console, tracing
from ..config import Settings
from ..store import Store
from . import (
    admin,
    artifacts,
    computes,
    errors,
    extensions,
    images,
    manifests,
    models,
    operations,
    request_context,
    service_data,
    services,
    swagger,
)


def create_app(config: dict[str, Any] | None = None, store: Store | None = None) -> Flask:
    settings = Settings.load(**(config or {}))
    app = Flask(__name__, static_folder=None)
    app.config["MOMA_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    cast(DefaultJSONProvider, app.json).sort_keys = False  # Flask's default provider, which sorts
    if store is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = Store(settings.db_url)
        store.migrate()
        store.accounts.ensure_default()
    extensions.init_app(app, settings, store)

    request_context.init_app(app)
    errors.init_app(app)
    account = request_context.account_blueprint()
    for module in (models, manifests, images, operations, artifacts, services, service_data, computes):
        account.register_blueprint(module.blueprint)
    account.register_blueprint(swagger.account_blueprint)
    console.init_app(app, account)
    app.register_blueprint(account)
    app.register_blueprint(swagger.blueprint)
    app.register_blueprint(admin.blueprint)
    if tracing.start(settings, "api"):
        app.wsgi_app = tracing.TracedApp(app.wsgi_app)  # type: ignore[method-assign]  # Flask's documented middleware hook
        app.after_request(tracing.name_request_span)
    return app
