"""Benchmarks (``bench_*.py``, each runnable with one command) and the harness they share
with the tests: ``moma_server.py`` (a real `moma serve`), ``api_flow.py`` (the iris
example through the API). bench imports anything of ours except ``tests``."""
