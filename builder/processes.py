"""Run a host command and pass its output on line by line as it comes."""

from __future__ import annotations

import subprocess
import threading
from typing import Callable, Mapping

from .environment import tool_environment

LineSink = Callable[[str], None]


def run_streaming(command: list[str], log: LineSink, hide: Callable[[str], bool] = lambda line: False,
                  indent: str = "", defaults: Mapping[str, str] | None = None,
                  stdin: str | None = None) -> tuple[int, list[str]]:
    """Run ``command`` (never through a shell, always in the :func:`tool_environment` and
    in its empty ``HOME``, with ``defaults`` for what the operator did not set, ``stdin``
    as its input); returns its exit code and all output lines that were not hidden.
    Hidden lines are neither logged nor returned."""
    output: list[str] = []
    with tool_environment(defaults=defaults) as environment, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE, text=True, env=environment,
            cwd=environment["HOME"]) as process:
        assert process.stdout is not None
        writer = _feed(process, stdin)
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
        finally:
            if writer is not None:
                writer.join()
    return process.returncode, output


def _feed(process: subprocess.Popen[str], text: str | None) -> threading.Thread | None:
    """Write ``text`` to the process's input from a thread, so a command that prints
    before it has read everything cannot block us both."""
    if text is None:
        return None
    assert process.stdin is not None
    stream = process.stdin

    def write() -> None:
        try:
            stream.write(text)
        except (BrokenPipeError, ValueError):  # it exited without reading all of it
            pass
        finally:
            try:
                stream.close()
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=write, name="moma-tool-stdin", daemon=True)
    thread.start()
    return thread
