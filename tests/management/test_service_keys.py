"""Service keys at rest: the key file is made once, whole, by whichever process of an
installation starts first; the others read that one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from management.service_keys import KeyCipher

_PROBE = """
import sys
from pathlib import Path
from management.service_keys import KeyCipher
print("ready", flush=True)
sys.stdin.read(1)
print(KeyCipher(Path(sys.argv[1])).encrypt("secret", "context"), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_processes_starting_together_make_one_key(tmp_path: Path, round_: int) -> None:
    """Like gunicorn's workers and the worker process on a first start: all at once
    (each waits on its stdin, released together once all are ready)."""
    key_file = tmp_path / "secret.key"
    processes = [subprocess.Popen([sys.executable, "-c", _PROBE, str(key_file)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(24)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("x")
        process.stdin.flush()
    outcomes = [process.communicate(timeout=60) for process in processes]

    assert [error.strip().splitlines()[-1:] for _, error in outcomes] == [[]] * len(processes)
    cipher = KeyCipher(key_file)
    assert {cipher.decrypt(out.strip(), "context") for out, _ in outcomes} == {"secret"}
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret.key"]


def test_an_existing_key_is_read_not_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    sealed = KeyCipher(key_file).encrypt("secret", "context")
    before = key_file.read_bytes()

    assert KeyCipher(key_file).decrypt(sealed, "context") == "secret"
    assert key_file.read_bytes() == before
