"""The 2017 one-shot commands on a real `moma serve` and the real Docker engine: a
2017-style project folder (examples/iris-2017: driver, model directory, schema, a 2017
conda file with python=3.5.2, conda packages and the SDK meta-package) deployed with one
command and scored with the key it printed; the same command while the service
exists, refused before anything is registered; `service update -f` rolling to a new
image on the same URL and keys; and after a delete the same command again, reusing the
model version, the manifest and the image (no build ran). Then Ctrl-C while the image
builds: the command stops waiting and prints the one that finishes its work."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
from pathlib import Path
from typing import Iterator, Sequence

import pytest
import requests

from bench.moma_server import MomaServer

from .conftest import Cli

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]
ROWS = {"input_df": [
    {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2},
    {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2, "petal width (cm)": 2.3}]}


def project_args(project: Path, driver: str = "score.py") -> tuple[str, ...]:
    return ("-f", str(project / driver), "-m", str(project / "iris_model"), "-s", str(project / "service_schema.json"),
            "-r", "python", "-c", str(project / "aml_config" / "conda_dependencies.yml"))


def pairs(args: Sequence[str]) -> list[tuple[str, str]]:
    return sorted(zip(args[::2], args[1::2]))


def score(service: dict, key: str) -> list[str]:
    answer = requests.post(service["scoringUri"], json=ROWS, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return json.loads(answer.json())


def curl_request(stdout: str) -> requests.Response:
    """Send what the printed curl line sends: its URL, headers and body."""
    line = next(line.strip() for line in stdout.splitlines() if line.strip().startswith("curl "))
    words = shlex.split(line)
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    return requests.post(words[words.index("POST") + 1], data=words[words.index("-d") + 1].encode(), headers=headers,
                         timeout=60)


def test_a_2017_project_in_one_command_then_updated_then_again(docker_client, cli: Cli, project_2017: Path):
    args = project_args(project_2017)
    create = ("service", "create", "realtime", "-n", "iris2017", *args, "--collect-model-data", "true")
    created = cli(*create)
    assert "model iris-model version 1: registered (" in created.stderr
    assert "manifest iris2017 version 1: created (" in created.stderr
    assert "service iris2017: Succeeded" in created.stderr
    found = re.search(r"^ID:\s+(\S+)$", created.stdout, re.MULTILINE)
    assert found, created.stdout
    service_id = found[1]
    service = cli.json("service", "show", "-i", service_id)
    tagged = f"Successfully tagged {service['image']['imageLocation']}"
    assert "Step 1/" in created.stderr and tagged in created.stderr, "the build log streams"
    assert f"Scoring URL: {service['scoringUri']}" in created.stdout
    keys = cli.json("service", "keys", "-i", service_id)
    sample = curl_request(created.stdout)
    assert sample.status_code == 200 and json.loads(sample.json()) == ["setosa"], "the curl line scores, with the key"
    assert sample.request.headers["Authorization"] == f"Bearer {keys['primaryKey']}"
    assert score(service, keys["secondaryKey"]) == ["setosa", "virginica"]
    model, = cli.json("model", "list", "-n", "iris-model")
    assert model["unpack"] is True and model["url"].endswith(".tar.gz"), "the directory went up as a tarball"
    assert service["dataCollection"]["storageEnabled"] is True

    taken = cli(*create, ok=False)
    assert taken.returncode == 1, taken
    assert f"service iris2017 already exists ({service_id})" in taken.stderr
    update = shlex.split(taken.stderr.splitlines()[1])
    assert update[3:8] == ["service", "update", "realtime", "-i", service_id]
    assert pairs(update[8:]) == pairs([*args, "--collect-model-data", "true"]), \
        "the update to run instead, with the same files and settings"
    assert "model iris-model" not in taken.stderr, "refused before anything was registered"
    assert len(cli.json("model", "list", "-n", "iris-model")) == 1

    upper = project_2017 / "score_upper.py"
    upper.write_text((project_2017 / "score.py").read_text().replace("labels[index]", "labels[index].upper()"))
    update = ("service", "update", "realtime", "-i", service_id, *project_args(project_2017, "score_upper.py"))
    rolled = cli(*update, "-o", "json")
    updated = rolled.json()
    assert "model iris-model version 1: reused, same content" in rolled.stderr
    assert "manifest iris2017 version 2: created" in rolled.stderr
    assert updated["image"]["id"] != service["image"]["id"] and updated["image"]["version"] == 2
    assert updated["scoringUri"] == service["scoringUri"], "an update keeps the URL"
    assert cli.json("service", "keys", "-i", service_id) == keys, "and the keys"
    assert score(updated, keys["primaryKey"]) == ["SETOSA", "VIRGINICA"]

    unchanged = cli(*update)
    assert "service iris2017 already runs image iris2017 version 2: nothing to update" in unchanged.stderr
    assert "Step 1/" not in unchanged.stderr

    cli("service", "delete", "-i", service_id)
    again = cli(*create, "-o", "json")
    recreated = again.json()
    assert "model iris-model version 1: reused, same content" in again.stderr
    assert f"manifest iris2017 version 1: reused, same content ({service['manifest']['id']})" in again.stderr
    assert f"image iris2017 version 1: reused, built from this manifest ({service['image']['id']})" in again.stderr
    assert "Step 1/" not in again.stderr, "no build"
    assert recreated["image"]["id"] == service["image"]["id"] and recreated["manifest"] == service["manifest"]
    assert [image["version"] for image in cli.json("image", "list", "--manifest-name", "iris2017")] == [1, 2]
    new_keys = cli.json("service", "keys", "-i", recreated["id"])
    assert score(recreated, new_keys["primaryKey"]) == ["setosa", "virginica"]

    rebuilt = cli("image", "create", "-n", "iris2017", "--manifest-id", service["manifest"]["id"], "-o", "json")
    assert "an identical image exists" in rebuilt.stderr and "Step 1/" not in rebuilt.stderr, \
        "a new image of the same manifest through the API is not built again either"
    assert rebuilt.json()["version"] == 3
    cli("service", "delete", "-i", recreated["id"])


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[MomaServer]:
    """A server whose worker looks for work only when it starts: an image asked for later
    stays NotStarted, so Ctrl-C lands while the CLI waits on the build, every time."""
    server = MomaServer(tmp_path / "idle-home", {"MOMA_WORKER_POLL_SECONDS": "3600"}).start()
    yield server
    server.stop()


def test_ctrl_c_while_the_image_builds_prints_the_command_that_finishes(idle_server: MomaServer,
                                                                       project_2017: Path, tmp_path: Path):
    home = tmp_path / "cli-home"
    home.mkdir()
    shutil.copy(idle_server.home / "admin-token", home / "admin-token")
    cli = Cli(home, idle_server.url)
    process = cli.popen("service", "create", "realtime", "-n", "later", *project_args(project_2017), "--cpu", "0.5",
                        "--collect-model-data", "true", "-q")
    assert process.stderr is not None
    seen = []
    while not (line := process.stderr.readline()).startswith("image later version 1: NotStarted"):
        assert line, f"the CLI ended before waiting on the build: {seen}"
        seen.append(line)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr

    image, = idle_server.client().pages("/images")
    assert image["creationState"] == "NotStarted", "the build is still the server's to run"
    operation = stderr.split("the server carries on with operation ")[1].split(".")[0]
    assert f"check it with: moma --url {idle_server.url} operation show -i {operation} --wait" in stderr
    assert (f"once it has succeeded: moma --url {idle_server.url} service create realtime -n later --image-id "
            f"{image['id']} --cpu 0.5 --collect-model-data true") in stderr
    assert "Traceback" not in stderr


def test_image_create_from_files_with_models_dependencies_and_requirements(cli: Cli, project: Path):
    """`image create -f` with two models (-m twice), a dependency (-d) and a requirements
    file (-p): the manifest names them all; the same command again reuses the models,
    the manifest and the image (no build); --new-model-version registers the models again
    and so makes a new manifest and a new image."""
    (project / "helper.py").write_text("GREETING = 'hello'\n")
    (project / "multi-labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    shutil.copy(project / "model.pkl", project / "multi-model.pkl")  # names no other test of the server registers
    args = ("image", "create", "-n", "multi", "-f", str(project / "score.py"), "-r", "python",
            "-m", str(project / "multi-model.pkl"), "-m", str(project / "multi-labels.txt"),
            "-d", str(project / "helper.py"), "-p", str(project / "requirements.txt"), "-q")
    first = cli(*args, "-o", "json")
    image = first.json()
    assert image["creationState"] == "Succeeded", first
    for model in ("multi-model", "multi-labels"):
        assert f"model {model} version 1: registered (" in first.stderr, first
    manifest = image["manifest"]
    assert len(manifest["modelIds"]) == 2 and manifest["driverProgram"] == "driver", manifest
    assert [(asset["id"], asset["url"].rsplit("/", 1)[-1]) for asset in manifest["assets"]] == [
        ("driver", "score.py"), ("helper.py", "helper.py")], manifest["assets"]
    assert manifest["targetRuntime"]["properties"]["pipRequirements"].endswith("/requirements.txt"), manifest

    again = cli(*args, "-o", "json")
    for model in ("multi-model", "multi-labels"):
        assert f"model {model} version 1: reused, same content" in again.stderr, again
    assert f"image multi version 1: reused, built from this manifest ({image['id']})" in again.stderr, again
    assert again.json()["id"] == image["id"]

    newer = cli(*args, "--new-model-version", "-o", "json")
    for model in ("multi-model", "multi-labels"):
        assert f"model {model} version 2: registered (" in newer.stderr, newer
    assert "manifest multi version 2: created (" in newer.stderr, newer
    rebuilt = newer.json()
    assert rebuilt["creationState"] == "Succeeded" and rebuilt["version"] == 2 and rebuilt["id"] != image["id"]
