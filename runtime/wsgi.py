"""The WSGI entry point: ``gunicorn --config python:runtime.gunicorn_conf runtime.wsgi:app``."""

from .app import create_app

app = create_app()
