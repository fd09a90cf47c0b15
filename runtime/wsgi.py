"""The WSGI entry point: ``gunicorn --config python:runtime.server.gunicorn_conf runtime.wsgi:app``."""

from .app import create_app

app = create_app()
