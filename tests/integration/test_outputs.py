"""The builder's outputs besides a local image: a registry push, a `docker save`
tarball, and a build context that plain `docker build` can build elsewhere."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from builder.errors import BuildError
from builder.manifest import load_manifest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (the engine trusts loopback registries)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry; .ci/run does it)")
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://{address}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("docker-registry did not start")
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def test_push_to_a_registry(builder, options, iris_project: Path, registry: str, docker_client, labels):
    result = builder.build(load_manifest(iris_project / "manifest.yml"),
                           options(name="iris-pushed", tag="3", push=registry))

    assert result.location == f"{registry}/iris-pushed:3"
    tags = requests.get(f"http://{registry}/v2/iris-pushed/tags/list", timeout=5).json()
    assert tags["tags"] == ["3"]
    manifest = requests.get(
        f"http://{registry}/v2/iris-pushed/manifests/3",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}, timeout=5,
    ).json()
    pushed_config = manifest["config"]["digest"]
    assert pushed_config == docker_client.images.get(result.reference).id


def test_tar_output_can_be_loaded(builder, options, iris_project: Path, tmp_path: Path):
    dest = tmp_path / "out" / "iris.tar"
    result = builder.build(load_manifest(iris_project / "manifest.yml"),
                           options(name="iris-saved", tag="1", output="tar", dest=dest))

    assert result.location == str(dest)
    with tarfile.open(dest) as archive:
        index = json.load(archive.extractfile("manifest.json"))
    assert index[0]["RepoTags"] == ["iris-saved:1"]
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_context_output_builds_with_plain_docker(builder, options, iris_project: Path, tmp_path: Path, docker_client,
                                                 labels, run_image):
    dest = tmp_path / "context"
    result = builder.build(load_manifest(iris_project / "manifest.yml"), options(output="context", dest=dest))

    assert result.location == str(dest) and result.image_id is None
    assert sorted(p.name for p in dest.iterdir()) == ["Dockerfile", "app", "models", "runtime", "uv", "wheels"]
    assert (dest / "models" / "model.pkl").exists() and (dest / "app" / "score.py").exists()
    image, _ = docker_client.images.build(path=str(dest), tag="iris-from-context:1", labels=labels, rm=True)
    assert image.labels["moma.manifest.name"] == "iris", "the labels travel in the Dockerfile"
    service = run_image("iris-from-context:1")
    assert service.wait_until_answering("/").status_code == 200
    answer = requests.post(service.url + "/score", json={"data": [[6.7, 3.0, 5.2, 2.3]]}, timeout=10)
    assert answer.json() == ["virginica"]


def test_context_output_refuses_a_non_empty_destination(builder, options, iris_project: Path, tmp_path: Path):
    dest = tmp_path / "context"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(BuildError, match="is not empty"):
        builder.build(load_manifest(iris_project / "manifest.yml"), options(output="context", dest=dest))
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
