"""The kserve SDK's REST client (protocol v2) against the iris example on a real gunicorn
server: health, readiness, inference equal to /score's answer, and an unknown model's 404 with
our message. The SDK (with fastapi, grpcio and the Kubernetes client)
goes into a virtualenv of its own, made with uv, so that its pins never move ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .test_oip import ROWS, iris, model_bytes  # noqa: F401 - the fixtures this module's test uses

pytestmark = pytest.mark.slow

KSERVE = "kserve==0.21.0"


@pytest.fixture(scope="module")
def kserve_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("kserve") / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    made = subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), KSERVE],
                          capture_output=True, text=True)
    assert made.returncode == 0, f"{KSERVE} did not install: {made.stderr[-2000:]}"
    return venv / "bin" / "python"


def test_the_kserve_sdk_calls_the_iris_example(kserve_python, iris):  # noqa: F811
    ran = subprocess.run([str(kserve_python), str(FIXTURES / "kserve_client.py"), iris.url, "iris", json.dumps(ROWS)],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (found["live"], found["ready"], found["model_ready"], found["unknown_ready"]) == (True, True, True, False)
    assert (found["id"], found["model_name"]) == ("kserve-1", "iris")
    assert found["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["setosa", "virginica"]}]
    assert found["outputs"][0]["data"] == iris.score({"data": ROWS}).json()
    assert "404" in found["unknown_model"] and "unknown model 'nope'" in found["unknown_model"], found["unknown_model"]
