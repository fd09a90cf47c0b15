"""Manifest → Docker image.

Fetch and verify assets, unpack them safely, assemble a build context, render the
Dockerfile from ``templates/``, build it with the Docker engine, label, push, export.
Imports nothing else of moma's but the image contract, ``runtime.contract``
(``tests/test_import_layers.py`` checks it).
"""
