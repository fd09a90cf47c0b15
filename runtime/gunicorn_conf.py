"""The gunicorn config module images name (``--config python:runtime.gunicorn_conf``);
its settings and hooks are in ``server/gunicorn_conf.py``."""

from .server.gunicorn_conf import *  # noqa: F401,F403
