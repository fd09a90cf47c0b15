"""The whole lifecycle from a terminal, on a real `moma serve` and the real Docker
engine: register → manifest → image → service → run → keys → usage → logs → update →
delete, ids taken from one command's JSON output into the next; then long work
interrupted or not waited for, and work that fails."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.moma_server import MomaServer

from .conftest import Cli

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]
ROWS = {"input_df": [
    {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2},
    {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2, "petal width (cm)": 2.3}]}


def containers(docker_client, service_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"moma.service-id={service_id}"})


def test_lifecycle(docker_client, cli: Cli, project: Path):
    model = cli.json("model", "register", "-m", str(project / "model.pkl"), "-n", "iris-life")
    manifest = cli.json("manifest", "create", "-n", "iris-life", "-f", str(project / "score_df.py"), "-r", "python",
                        "-s", str(project / "iris-schema.json"), "-p", str(project / "requirements.txt"),
                        "-i", model["id"])

    built = cli("image", "create", "-n", "iris-life", "--manifest-id", manifest["id"], "-o", "json")
    image = built.json()
    assert image["creationState"] == "Succeeded" and image["manifest"]["id"] == manifest["id"]
    assert "Step 1/" in built.stderr and f"Successfully tagged {image['imageLocation']}" in built.stderr, \
        "the build log streams to stderr"
    assert re.fullmatch(r"default-[0-9a-f]{8}/iris-life:1-[0-9a-f]{12}", image["imageLocation"])
    assert cli.json("image", "show", "-i", image["id"]) == image
    assert image["id"] in [i["id"] for i in cli.json("image", "list", "--manifest-id", manifest["id"])]
    usage = cli("image", "usage", "-i", image["id"]).stdout
    assert f"docker run --rm -p 127.0.0.1:5001:5001 {image['imageLocation']}" in usage and "docker pull" not in usage

    created = cli("service", "create", "realtime", "-n", "life", "--image-id", image["id"], "-o", "json")
    service = created.json()
    assert service["state"] == "Succeeded" and service["image"]["id"] == image["id"]
    assert service["autoScaler"]["autoscaleEnabled"] is False and "containerResourceReservation" not in service
    assert "service life: Succeeded" in created.stderr, "the state shows while waiting"
    assert service in cli.json("service", "list", "realtime")

    sample = cli("service", "run", "realtime", "-i", service["id"])
    assert json.loads(sample.stdout) == "[0]", "no -d: the example of the service's swagger, scored"
    request_id = sample.stderr.split("request id: ")[1].split()[0]
    answer = cli("service", "run", "realtime", "-i", service["id"], "-d", json.dumps(ROWS))
    assert json.loads(answer.stdout) == "[0, 2]"

    keys = cli.json("service", "keys", "realtime", "-i", service["id"])
    regenerated = cli.json("service", "keys", "realtime", "-i", service["id"], "--regen", "-k", "Primary")
    assert regenerated["secondaryKey"] == keys["secondaryKey"] and regenerated["primaryKey"] != keys["primaryKey"]
    deadline = time.monotonic() + 30
    while (scored := cli("service", "run", "-i", service["id"], "-d", json.dumps(ROWS), ok=False)).returncode:
        assert "401" in scored.stderr and time.monotonic() < deadline, scored
        time.sleep(0.5)

    # each gunicorn worker of the service picks up the new key on its own next check
    while "sepal length (cm)" not in (usage := cli("service", "usage", "realtime", "-i", service["id"])).stdout:
        assert time.monotonic() < deadline, usage
        time.sleep(0.5)
    assert f"Scoring URL: {service['scoringUri']}" in usage.stdout
    curl = next(line.strip() for line in usage.stdout.splitlines() if line.strip().startswith("curl "))
    assert f"Authorization: Bearer {regenerated['primaryKey']}" in curl and service["scoringUri"] in curl
    assert "sepal length (cm)" in curl, "the swagger example is the sample input"
    oip_curl = usage.stdout.split("Score with curl, Open Inference Protocol (KServe v2, tritonclient):\n", 1)[1]
    oip_curl = oip_curl.strip().splitlines()[0]
    assert f"/v2/models/{service['name']}/infer" in oip_curl and regenerated["primaryKey"] in oip_curl, oip_curl
    answered = subprocess.run([*shlex.split(oip_curl), "-w", "\n%{http_code}"], capture_output=True, text=True,
                              timeout=60)
    assert answered.stdout.rstrip().endswith("\n200") and '"outputs"' in answered.stdout, answered

    logs = cli("service", "logs", "realtime", "-i", service["id"], "-r", request_id).stdout.splitlines()
    assert logs and all(request_id in line for line in logs), logs
    assert any(json.loads(line).get("path") == "/score" for line in logs)

    other = cli.json("image", "create", "-n", "iris-life-b", "-f", str(project / "score_df.py"), "-r", "python",
                     "-s", str(project / "iris-schema.json"), "-p", str(project / "requirements.txt"),
                     "-m", str(project / "model.pkl"), "--quiet")
    updated = cli.json("service", "update", "realtime", "-i", service["id"], "--image-id", other["id"],
                       "--cpu", "0.5", "--memory", "512Mi")
    assert updated["image"]["id"] == other["id"] and updated["state"] == "Succeeded"
    assert updated["containerResourceReservation"] == {"cpu": "0.5", "memory": "512Mi"}
    assert updated["scoringUri"] == service["scoringUri"], "an update keeps the URL"
    assert json.loads(cli("service", "run", "-i", service["id"], "-d", json.dumps(ROWS)).stdout) == "[0, 2]"

    deleted = cli("service", "delete", "realtime", "-i", service["id"])
    assert f"deleted service {service['id']}" in deleted.stdout
    assert containers(docker_client, service["id"]) == [], "delete waits until the containers are gone"
    gone = cli("service", "show", "-i", service["id"], ok=False)
    assert gone.returncode == 1 and f"service {service['id']} not found" in gone.stderr


def test_quiet_build_shows_one_progress_line_not_the_log(docker_client, cli: Cli, project: Path):
    quiet = cli("image", "create", "-n", "iris-quiet", "-f", str(project / "score.py"), "-r", "python",
                "-p", str(project / "requirements.txt"), "-m", str(project / "model.pkl"), "-q")
    lines = quiet.stderr.splitlines()
    # the build log's lines ("Step 1/14 : FROM ...", "Successfully tagged ...") stay out; the
    # one progress line may say "Running, Step 1/14" when the build is slow enough to be seen
    assert not [line for line in lines if line.startswith(("Step ", "Successfully", " ---> "))], quiet.stderr
    assert "image iris-quiet version 1: Succeeded" in quiet.stderr
    assert re.match(r"image iris-quiet version 1 Succeeded: default-[0-9a-f]{8}/iris-quiet:1-[0-9a-f]{12}\n",
                    quiet.stdout), quiet.stdout


def test_no_wait_and_ctrl_c_leave_the_work_going(docker_client, cli: Cli, project: Path, tmp_path: Path):
    # init() takes a while, so Ctrl-C always lands while the CLI waits for the service
    # (a service is ready in about a second otherwise; the signal could come too late)
    slow = tmp_path / "slow_init.py"
    slow.write_text("import time\n\ndef init():\n    time.sleep(8)\n\ndef run(data):\n    return data\n")
    image = cli.json("image", "create", "-n", "iris-later", "-f", str(slow), "-r", "python",
                     "-p", str(project / "requirements.txt"), "-m", str(project / "model.pkl"), "--no-wait")
    assert image["operationType"] == "Image" and image["state"] in ("NotStarted", "Running")
    done = cli.json("operation", "show", "-i", image["id"], "--wait")
    assert done["state"] == "Succeeded"
    image_id = done["resourceLocation"].rsplit("/", 1)[-1]

    process = cli.popen("service", "create", "realtime", "-n", "interrupted", "--image-id", image_id)
    assert process.stderr is not None
    assert process.stderr.readline().startswith("service interrupted: "), "waiting has begun"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "stopped waiting; the server carries on with operation" in stderr and "Traceback" not in stderr
    command = stderr.split("check it with: ")[1].split()
    assert command[:2] == ["moma", "--url"] and command[3:6] == ["operation", "show", "-i"] and command[7] == "--wait"
    operation = cli.json(*command[3:8])
    assert operation["state"] == "Succeeded", "the server went on with the work"


def test_failed_work_exits_1_with_its_error(docker_client, cli: Cli, project: Path, tmp_path: Path):
    (tmp_path / "options.txt").write_text("--index-url https://example.com/simple\nnumpy\n")
    build = cli("image", "create", "-n", "iris-broken", "-f", str(project / "score.py"), "-r", "python",
                "-p", str(tmp_path / "options.txt"), "-m", str(project / "model.pkl"), ok=False)
    assert build.returncode == 1
    assert "error: image build failed: pipRequirements" in build.stderr and "  build log: " in build.stderr, build
    assert "\nFAILED: pipRequirements" in build.stderr, "the log streamed up to the failure"

    broken = tmp_path / "broken.py"
    broken.write_text("def init():\n    raise RuntimeError('the model file is corrupt')\n\n"
                      "def run(data):\n    return data\n")
    image = cli.json("image", "create", "-n", "iris-crash", "-f", str(broken), "-r", "python",
                     "-p", str(project / "requirements.txt"), "-m", str(project / "model.pkl"), "-q")
    service = cli("service", "create", "realtime", "-n", "crashing", "--image-id", image["id"], ok=False)
    assert service.returncode == 1, service
    assert "RuntimeError: the model file is corrupt" in service.stderr and "(operation " in service.stderr


def test_usage_errors_after_the_server_answers(docker_client, cli: Cli, server: MomaServer, project: Path):
    """A service without a schema has no example: `run` without -d is a usage error."""
    image = cli.json("image", "create", "-n", "iris-plain", "-f", str(project / "score.py"), "-r", "python",
                     "-p", str(project / "requirements.txt"), "-m", str(project / "model.pkl"), "-q")
    service = cli.json("service", "create", "-n", "plain", "--image-id", image["id"])
    no_data = cli("service", "run", "-i", service["id"], ok=False)
    assert no_data.returncode == 2 and "publishes no example input" in no_data.stderr
    assert cli("service", "run", "-i", service["id"], "-d", '{"data": [[5.1, 3.5, 1.4, 0.2]]}').stdout.strip() == \
        '["setosa"]'
    nothing = cli("service", "update", "-i", service["id"], ok=False)
    assert nothing.returncode == 2 and "nothing to update" in nothing.stderr
    refused = cli("service", "update", "-i", service["id"], "-z", "3", ok=False)
    assert refused.returncode == 1 and "needs a swarm compute" in refused.stderr
    cli("service", "delete", "-i", service["id"])
