"""Run a host command and pass its output on line by line as it comes."""

from __future__ import annotations

import subprocess
from typing import Callable

LineSink = Callable[[str], None]


def run_streaming(command: list[str], log: LineSink, hide: Callable[[str], bool] = lambda line: False,
                  indent: str = "") -> tuple[int, list[str]]:
    """Run ``command`` (never through a shell); returns its exit code and all output lines
    that were not hidden. Hidden lines are neither logged nor returned."""
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if not line or hide(line):
                continue
            output.append(line)
            log(indent + line)
    return process.returncode, output
