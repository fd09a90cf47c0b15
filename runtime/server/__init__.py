"""Everything that knows gunicorn: its config module, the worker class, the access log,
and the list of gunicorn members they rely on (``compat.py``). A gunicorn upgrade
touches this package alone; the WSGI app (``runtime/app.py`` and what it imports)
imports nothing from here or from gunicorn."""
