"""The uv the builder runs on the host, to resolve the wheelhouse and build wheels.

uv is a dependency of moma (pinned in ``pyproject.toml``) and ships as a binary in its
wheel; the same version, as a wheel for Linux x86_64, installs the packages inside
images (``templates/python-packages.sh.j2``).

uv expands ``${VAR}`` (and ``$VAR``) from its environment in the URLs and paths of
requirements wherever they come from: requirement files, standard input and its own
command line. Tenant text reaches uv as requirements, so besides the parsers' refusal of
'$' (``builder/requirements.py``) nothing with a '$' is handed to uv here, argument or
input line. It runs with ``--no-config`` in the stripped environment
(``builder/environment.py``), its cache in ``$MOMA_HOME/wheelhouse/uv-cache`` unless
the operator set ``UV_CACHE_DIR``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Callable, Sequence

from .errors import RequirementsError
from .processes import run_streaming

LineSink = Callable[[str], None]


def uv_binary() -> str:
    """The uv executable installed with moma."""
    import uv  # the PyPI package; it only locates its binary

    return str(uv.find_uv_bin())


def uv_version() -> str:
    return importlib.metadata.version("uv")


class UvTool:
    def __init__(self, cache_dir: Path, binary: str | None = None) -> None:
        self.cache_dir = cache_dir
        self.binary = binary or uv_binary()

    def run(self, arguments: Sequence[str], log: LineSink, *, input_lines: Sequence[str] = (),
            hide: Callable[[str], bool] = lambda line: False) -> tuple[int, list[str]]:
        """Run ``uv <arguments>`` with ``input_lines`` on its standard input; the exit code
        and the output lines that were not hidden."""
        for text in (*arguments, *input_lines):
            if "$" in text or "\n" in text:
                raise RequirementsError(f"{text!r} contains '$' or a newline: nothing of that kind is handed to "
                                        "uv, which would expand it from its environment")
        command = [self.binary, "--no-config", "--system-certs", "--color", "never", "--no-progress", *arguments]
        stdin = "".join(f"{line}\n" for line in input_lines) if input_lines else None
        return run_streaming(command, log, hide=hide, indent="  ", stdin=stdin,
                             defaults={"UV_CACHE_DIR": str(self.cache_dir)})
