"""Run a host command and pass its output on line by line as it comes."""

from __future__ import annotations

import subprocess
from typing import Callable, Mapping

from .environment import tool_environment

LineSink = Callable[[str], None]


def run_streaming(command: list[str], log: LineSink, hide: Callable[[str], bool] = lambda line: False,
                  indent: str = "", defaults: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
    """Run ``command`` (never through a shell, always in the :func:`tool_environment`, with
    ``defaults`` for what the operator did not set); returns its exit code and all output
    lines that were not hidden. Hidden lines are neither logged nor returned."""
    output: list[str] = []
    with tool_environment(defaults=defaults) as environment, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=environment) as process:
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.rstrip()
                if not line or hide(line):
                    continue
                output.append(line)
                log(indent + line)
        except BaseException:  # a signal or a failing sink: the command must not outlive us
            process.kill()
            raise
    return process.returncode, output
