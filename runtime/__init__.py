"""moma's scoring runtime: the server inside every image (see README.md beside this file).

Self-contained: it imports nothing else of moma, only the standard library and the
pinned packages of requirements.txt (numpy/pandas lazily, when a schema needs them).
"""

__version__ = "0.1.0"  # moma's (pyproject.toml; a test keeps them equal): the images carry no metadata
