"""The builder against the real Docker engine: the iris example end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from builder.errors import UnpackError
from builder.manifest import load_manifest

from .conftest import train

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}


def layers(docker_client, reference: str) -> list[str]:
    return docker_client.images.get(reference).attrs["RootFS"]["Layers"]


def test_iris_image_scores_a_row(builder, options, iris_project: Path, run_image, docker_client):
    lines: list[str] = []
    result = builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-score", tag="1"),
                           on_log=lines.append)

    assert result.reference == "iris-score:1" and not result.reused
    assert any(line.startswith("Step ") for line in lines), "the build log streams to the caller"
    assert result.log_path.read_text().count("Step ") == sum(line.startswith("Step ") for line in lines)

    image = docker_client.images.get("iris-score:1")
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert "5001/tcp" in image.attrs["Config"]["ExposedPorts"]
    labels = image.labels
    assert labels["moma.content-hash"] == result.content_hash
    assert labels["moma.manifest.name"] == "iris"
    assert json.loads(labels["moma.models"])[0]["name"] == "iris"
    assert json.loads(labels["moma.models"])[0]["version"] == 1
    assets = json.loads(labels["moma.assets"])
    assert set(assets) == {"driver:driver", "model:iris"}
    assert all(value.startswith("sha256:") and len(value) == 71 for value in assets.values())
    assert "scikit-learn==1.9.1" in labels["moma.python-packages"].split(",")

    service = run_image("iris-score:1")
    assert service.wait_until_answering("/").text.strip('"\n') == "Healthy"
    answer = requests.post(service.url + "/score", json=ROW, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == ["setosa"]


def test_identical_request_builds_nothing(builder, options, iris_project: Path):
    spec = load_manifest(iris_project / "manifest.yml")
    first = builder.build(spec, options(name="iris-same", tag="1"))
    lines: list[str] = []
    second = builder.build(spec, options(name="iris-same-again", tag="7"), on_log=lines.append)

    assert second.reused and second.image_id == first.image_id
    assert second.content_hash == first.content_hash
    assert not any(line.startswith("Step ") for line in lines)


def test_new_model_version_rebuilds_only_the_model_layer(builder, options, iris_project: Path, docker_client):
    spec = load_manifest(iris_project / "manifest.yml")
    first = builder.build(spec, options(name="iris-layers", tag="1"))
    train(iris_project, c=0.01)
    lines: list[str] = []
    second = builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-layers", tag="2"),
                           on_log=lines.append)

    assert not second.reused and second.image_id != first.image_id
    before, after = layers(docker_client, "iris-layers:1"), layers(docker_client, "iris-layers:2")
    assert len(before) == len(after)
    assert before[:-1] == after[:-1], "only the models layer may change"
    assert before[-1] != after[-1]
    built_steps = [line for line in lines if "Using cache" not in line and line.startswith(" --->") is False]
    steps = [line for line in lines if line.startswith("Step ")]
    before_models = next(index for index, line in enumerate(steps) if '"models/"' in line) - 1  # not FROM
    assert sum("Using cache" in line for line in lines) >= before_models >= 3, "\n".join(built_steps)


def test_images_with_the_same_packages_share_one_packages_layer(builder, options, iris_project: Path, docker_client):
    """The second image starts from the packages layer the first one made (not from one of
    the first build's intermediate images, which carry the same label), and that layer has
    byte-compiled packages without their tests."""
    builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-shared", tag="1"))
    (iris_project / "score.py").write_text((iris_project / "score.py").read_text() + "\n# another driver\n")
    lines: list[str] = []
    builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-shared", tag="2"),
                  on_log=lines.append)

    assert any("reusing the installed layer" in line for line in lines), "\n".join(lines)
    first, second = layers(docker_client, "iris-shared:1"), layers(docker_client, "iris-shared:2")
    base = len(docker_client.images.get(docker_client.images.get("iris-shared:1").labels[
        "org.opencontainers.image.base.name"]).attrs["RootFS"]["Layers"])
    assert first[:base + 1] == second[:base + 1]
    found = docker_client.containers.run(
        "iris-shared:2", ["sh", "-c", "cd /opt/moma/venv/lib/python3*/site-packages && "
                          "ls -d sklearn/tests scipy/linalg/tests 2>/dev/null; ls sklearn/__pycache__ | head -1"],
        remove=True, network_mode="none").decode().split()
    assert len(found) == 1 and found[0].endswith(".pyc"), found


def test_driver_whose_init_raises_reports_it(builder, options, iris_project: Path, run_image):
    (iris_project / "score.py").write_text("def init():\n    raise RuntimeError('model file is corrupt')\n\n"
                                           "def run(data):\n    return data\n")
    result = builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-broken", tag="1"))
    service = run_image(result.reference)

    ready = service.wait_until_answering("/readyz")
    assert ready.status_code == 503
    assert "model file is corrupt" in ready.text
    score = requests.post(service.url + "/score", json=ROW, timeout=10)
    assert score.status_code == 503
    assert score.json()["code"] == "not_ready"
    assert "RuntimeError: model file is corrupt" in service.logs()


def test_unsafe_model_archive_fails_before_building(builder, options, iris_project: Path, docker_client):
    import io
    import tarfile

    with tarfile.open(iris_project / "model.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("../../escape.pkl")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"abc"))
    manifest = (iris_project / "manifest.yml").read_text().replace("url: model.pkl",
                                                                   "url: model.tar.gz\n    unpack: true")
    (iris_project / "manifest.yml").write_text(manifest)
    before = {image.id for image in docker_client.images.list()}

    with pytest.raises(UnpackError, match="escape.pkl"):
        builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-unsafe", tag="1"))
    assert {image.id for image in docker_client.images.list()} == before
    assert not (iris_project.parent / "escape.pkl").exists()


def test_archive_bomb_model_fails_before_building(builder, options, iris_project: Path, docker_client):
    from tests.builder.test_unpack_bombs import tar_gz_of_zeros

    tar_gz_of_zeros(iris_project / "model.tar.gz", "model.pkl", 1024)
    manifest = (iris_project / "manifest.yml").read_text().replace("url: model.pkl",
                                                                   "url: model.tar.gz\n    unpack: true")
    (iris_project / "manifest.yml").write_text(manifest)
    before = {image.id for image in docker_client.images.list()}

    inflates = r"model.tar.gz: the compressed stream inflates \d+ bytes to \d+, more than 100:1"
    with pytest.raises(UnpackError, match=inflates):
        builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-bomb", tag="1"))
    assert {image.id for image in docker_client.images.list()} == before


SECRET = "postgresql://moma:s3cr3t-4b1e@db.internal/moma"


@pytest.mark.parametrize(
    "line",
    [
        "six @ https://127.0.0.1:9/${MOMA_DATABASE_URL}/six-1.16.0-py2.py3-none-any.whl",
        'six==1.16.0; python_version == "${MOMA_DATABASE_URL}"',
    ],
    ids=["direct-reference", "marker"],
)
def test_requirements_cannot_read_the_servers_environment(line: str, builder, options, iris_project: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    from builder.errors import RequirementsError

    monkeypatch.setenv("MOMA_DATABASE_URL", SECRET)
    (iris_project / "requirements.txt").write_text(f"scikit-learn==1.9.1\n{line}\n")
    lines: list[str] = []
    with pytest.raises(RequirementsError) as caught:
        builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-env", tag="1"),
                      on_log=lines.append)

    assert f"line 2: {line!r} contains '$': requirements are never expanded" in str(caught.value)
    log = builder.config.build_log_dir.glob("*.log")
    assert not [path for path in log if "s3cr3t" in path.read_text()]
    assert not [entry for entry in lines if "s3cr3t" in entry]


EXAMPLE_2017 = Path(__file__).parents[2] / "examples" / "iris-2017"
SETOSA = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


@pytest.fixture
def project_2017(tmp_path: Path) -> Path:
    """A copy of examples/iris-2017 with its model trained, plus a wheel the package index
    does not have, given as an asset and named in the conda file's pip list."""
    import shutil
    import subprocess
    import sys

    from tests.builder.fixture_wheels import make_wheel

    project = tmp_path / "iris-2017"
    shutil.copytree(EXAMPLE_2017, project, ignore=shutil.ignore_patterns("iris_model*", "__pycache__"))
    subprocess.run([sys.executable, str(project / "train.py"), str(project)], check=True, stdout=subprocess.DEVNULL)
    wheel = make_wheel(project, "iris-labels", "1.0", {"iris_labels/__init__.py": "NAMES = ['setosa']\n"})
    text = (project / "manifest.yml").read_text()
    text = text.replace("models:\n", f"  - id: labels\n    url: {wheel.name}\nmodels:\n")
    (project / "manifest.yml").write_text(text)
    conda = project / "aml_config" / "conda_dependencies.yml"
    conda.write_text(conda.read_text() + "    - iris-labels==1.0\n")
    return project


def test_a_2017_project_builds_on_the_nearest_python_and_scores(builder, options, project_2017: Path, run_image):
    lines: list[str] = []
    result = builder.build(load_manifest(project_2017 / "manifest.yml"), options(name="iris-2017", tag="1"),
                           on_log=lines.append)

    log = "\n".join(lines)
    assert "asks for Python 3.5.2, which no image can have today" in log
    assert "building on Python 3.11, the nearest supported" in log
    assert ("conda packages installed from PyPI, as wheels: scikit-learn==1.9.1.* (conda 'scikit-learn=1.9.1'), "
            "numpy, pandas") in log
    assert "left out azureml-requirements, azure-ml-api-sdk==0.1.0a11: the 2017 Azure ML SDK" in log
    assert "from azureml.datacollector import ModelDataCollector" in log
    assert "ignored --index-url https://azuremldownloads.azureedge.net/python-repository/preview" in log

    labels = result.labels
    assert (labels["moma.python-requested"], labels["moma.python"]) == ("3.5.2", "3.11")
    packages = labels["moma.python-packages"].split(",")
    assert "scikit-learn==1.9.1" in packages and "iris-labels==1.0" in packages
    assert not [pin for pin in packages if pin.startswith(("azure-ml", "azureml"))]

    service = run_image(result.reference)
    assert service.wait_until_answering("/readyz").status_code == 200, service.logs()
    answer = requests.post(service.url + "/score", json={"input_df": [SETOSA]}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.json()) == ["setosa"]

    container = service.container.get_wrapped_container()
    assert container.labels["moma.python-requested"] == "3.5.2" and container.labels["moma.python"] == "3.11"
    code, output = container.exec_run(["python", "-c", "import iris_labels, os; print(iris_labels.NAMES, "
                                       "sorted(os.listdir('/var/azureml-app')))"])
    assert code == 0, output
    assert output.decode().strip() == ("['setosa'] ['iris_model', 'model_config_map.json', 'score.py', "
                                       "'service_schema.json']"), "the wheel is installed, not copied into the app"
