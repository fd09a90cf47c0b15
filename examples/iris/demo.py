"""`make demo`: train the iris model, build it into an image, start it, score one row.

    python examples/iris/demo.py          # build, run, score; leaves the container running
    python examples/iris/demo.py --stop   # remove the demo container
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import docker
import requests

from builder.build import Builder, BuildOptions
from builder.config import BuilderConfig
from builder.manifest import load_manifest

HERE = Path(__file__).resolve().parent
CONTAINER = "moma-demo-iris"
ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}
sys.path.insert(0, str(HERE))
from train import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="remove the demo container and exit")
    arguments = parser.parse_args()
    client = docker.from_env()
    remove_container(client)
    if arguments.stop:
        print(f"removed {CONTAINER}")
        return 0

    config = BuilderConfig.from_env()
    project = prepare_project(config.home / "demo" / "iris")
    print(f"== building the iris example from {project / 'manifest.yml'}")
    result = Builder(config).build(load_manifest(project / "manifest.yml"), BuildOptions(name="iris", tag="demo"),
                                   on_log=print)
    print(f"== image {result.reference} ({'reused' if result.reused else 'built'} in {result.seconds:.1f} s)")

    container = client.containers.run(
        result.reference, name=CONTAINER, detach=True, ports={"5001/tcp": ("127.0.0.1", None)},
        read_only=True, tmpfs={"/tmp": "rw,size=64m"}, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        labels={"moma.demo": "iris"},
    )
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, container)

    answer = requests.post(f"{url}/score", json=ROW, timeout=10)
    print(f"== POST {url}/score {json.dumps(ROW)}")
    print(f"   {answer.status_code} {answer.text.strip()}")
    print("== score it yourself:")
    print(f"   curl -s -X POST {url}/score -H 'Content-Type: application/json' -d '{json.dumps(ROW)}'")
    print(f"== the container {CONTAINER} keeps running; stop it with: make demo-stop")
    return 0 if answer.ok else 1


def prepare_project(directory: Path) -> Path:
    """A copy of the example with a freshly trained model (the same model each time)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("score.py", "requirements.txt", "manifest.yml"):
        shutil.copy(HERE / name, directory / name)
    train(directory)
    return directory


def wait_ready(url: str, container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    print(container.logs().decode(errors="replace"), file=sys.stderr)
    raise SystemExit(f"the service did not become ready within {timeout:.0f} s")


def remove_container(client: docker.DockerClient) -> None:
    try:
        client.containers.get(CONTAINER).remove(force=True)
    except docker.errors.NotFound:
        pass


if __name__ == "__main__":
    sys.exit(main())
