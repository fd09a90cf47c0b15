"""The moma console: server-rendered pages under ``/ui/`` of ``moma serve``.

The console is a Flask app of its own, mounted beside the API on the same WSGI server
(:func:`init_app`). It reaches data only by calling the management API in-process with
the signed-in user's token (``api_client.py``), so every page goes through the same
routes, validation and permission checks as a client over HTTP. What the API did not
have for it (who a token is, an account's counts, artifact sizes, image labels) is
added as API routes in ``api_routes.py``, behind the API's own authentication.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from . import api_routes
from .app import PREFIX, create_console


def init_app(app: Flask, account: Blueprint) -> None:
    """Add the console's API routes (``account`` is the API's account blueprint, not yet
    registered) and mount the console under ``/ui``."""
    account.register_blueprint(api_routes.account_blueprint)
    app.register_blueprint(api_routes.blueprint)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PREFIX: create_console(app)})  # type: ignore[method-assign]  # Flask's documented middleware hook
