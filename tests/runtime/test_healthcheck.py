"""``python -m runtime.healthcheck``, the health check of every image and of swarm's
tasks: its own instance's readiness, whoever else listens on the port."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REPO


def healthcheck(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "MOMA_INSTANCE", "MOMA_INSTANCE_ID")}
    return subprocess.run([sys.executable, "-m", "runtime.healthcheck"], cwd=REPO, capture_output=True, text=True,
                          env={**clean, "PORT": str(port), **env}, timeout=30)


def test_it_waits_for_its_own_instance_and_prints_the_answer(serve):
    server = serve("ok.py", MOMA_INSTANCE_ID="a1b2")

    mine = healthcheck(server.port, MOMA_INSTANCE_ID="a1b2")
    assert mine.returncode == 0
    assert '"instance":"a1b2"' in mine.stdout.replace(" ", "") and '"ready"' in mine.stdout

    other = healthcheck(server.port, MOMA_INSTANCE_ID="c3d4")
    assert other.returncode == 1, "another instance's readiness is not this container's"

    by_name = healthcheck(server.port, MOMA_INSTANCE_ID="c3d4", MOMA_INSTANCE="a1b2")
    assert by_name.returncode == 0, "images that answer with the name are still recognised"


def test_a_failed_instance_is_unhealthy_with_its_reason(serve):
    failed = serve("raises_in_init.py", wait="/livez", MOMA_INSTANCE_ID="f00d")
    answer = healthcheck(failed.port, MOMA_INSTANCE_ID="f00d")
    assert answer.returncode == 1
    assert '"failed"' in answer.stdout, "the engine reads why from the health log"


def test_without_an_instance_id_whoever_answers_decides(serve):
    server = serve("ok.py")
    assert healthcheck(server.port).returncode == 0
    server.stop()
    assert healthcheck(server.port).returncode == 1
