"""`make bench-service`: how fast services come up and change images.

Starts a real `moma serve`, builds two iris images through the API, then for each
compute (local, and swarm when this engine is a swarm manager or `--swarm-init` is
given) measures, --repeat times (medians printed):
  - create: POST /services → first 200 from /score (key on);
  - update: PUT with the other image → every one of 20 fresh connections in a row
    answers from the new generation (the runtime's /readyz names its instance).
Target (issue "Services"): < 5 s to first score on local for the iris model.

    python bench/bench_service.py [--repeat 3] [--swarm-init]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_flow import create_image, operation_id, register_iris, wait_operation  # noqa: E402
from bench.moma_server import MomaServer  # noqa: E402

EXAMPLE = ROOT / "examples" / "iris"
LABEL = "moma.bench=service"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--swarm-init", action="store_true", help="docker swarm init for the run, leave after")
    arguments = parser.parse_args()
    client = docker.from_env()
    joined_swarm = arguments.swarm_init and _swarm_init(client)
    with tempfile.TemporaryDirectory(prefix="moma-bench-service-") as work:
        settings = {"MOMA_IMAGE_LABELS": LABEL, "MOMA_WORKER_POLL_SECONDS": "0.1"}
        server = MomaServer(Path(work) / "home", settings).start()
        try:
            api = server.client()
            images = [_image(api, Path(work), name, c) for name, c in (("bench-a", 1.0), ("bench-b", 0.05))]
            computes = ["local"] + (["swarm"] if _is_manager(client) else [])
            if "swarm" in computes:
                api.call("POST", "/computes", json={"name": "swarm", "type": "swarm"})
            for compute in computes:
                _measure(api, compute, images, arguments.repeat)
        finally:
            server.stop()
            for image in client.images.list(filters={"label": LABEL}):
                client.images.remove(image.id, force=True)
            if joined_swarm:
                subprocess.run(["docker", "swarm", "leave", "--force"], check=False, capture_output=True)


def _measure(api, compute: str, images: list[str], repeat: int) -> None:  # type: ignore[no-untyped-def]
    creates, updates = [], []
    for run in range(repeat):
        started = time.monotonic()
        body = {"imageId": images[0], "name": f"bench-{compute}-{run}", "computeResource": {"id": compute},
                "autoScaler": {"autoscaleEnabled": False}, "numReplicas": 1}
        operation = wait_operation(api, operation_id(api.call("POST", "/services", json=body)))
        if operation["state"] != "Succeeded":
            print(f"{compute}: the service did not start: {operation.get('error')}")
            return
        service_id = operation["resourceLocation"].rsplit("/", 1)[-1]
        service = api.call("GET", f"/services/{service_id}").json()
        key = api.call("GET", f"/services/{service_id}/keys").json()["primaryKey"]
        _first_score(service["scoringUri"], key)
        creates.append(time.monotonic() - started)

        before = _instance(service["scoringUri"])
        started = time.monotonic()
        api.call("PUT", f"/services/{service_id}", json={"imageId": images[1]})
        _all_new(service["scoringUri"], before)
        updates.append(time.monotonic() - started)
        deleted = api.call("DELETE", f"/services/{service_id}")
        removal = wait_operation(api, deleted.headers["Operation-Location"].rsplit("/", 1)[-1])
        assert removal["state"] == "Succeeded", removal  # the next create must not queue behind it
    print(f"{compute}: create → first score  median {statistics.median(creates):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in creates)})" + ("   target < 5 s" if compute == "local" else ""))
    print(f"{compute}: update → all traffic new median {statistics.median(updates):5.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in updates)})")


def _image(api, work: Path, name: str, c: float) -> str:  # type: ignore[no-untyped-def]
    project = work / name
    project.mkdir()
    for file in ("score.py", "requirements.txt"):
        shutil.copy(EXAMPLE / file, project / file)
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(project), "--c", str(c)], check=True,
                   stdout=subprocess.DEVNULL)
    operation = wait_operation(api, create_image(api, register_iris(api, project, name)["manifest"]["id"], name))
    assert operation["state"] == "Succeeded", operation
    return operation["resourceLocation"].rsplit("/", 1)[-1]


def _first_score(url: str, key: str) -> None:
    while True:
        try:
            if requests.post(url, json={"data": [[5.1, 3.5, 1.4, 0.2]]}, timeout=5,
                             headers={"Authorization": f"Bearer {key}"}).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)


def _instance(scoring_uri: str) -> str:
    answer = requests.get(scoring_uri.rsplit("/", 1)[0] + "/readyz", timeout=5, headers={"Connection": "close"})
    return answer.json().get("instance", "")


def _all_new(scoring_uri: str, old: str, in_a_row: int = 20) -> None:
    streak = 0
    while streak < in_a_row:
        try:
            streak = streak + 1 if _instance(scoring_uri) not in ("", old) else 0
        except (requests.RequestException, ValueError):
            streak = 0
        time.sleep(0.02)


def _is_manager(client: docker.DockerClient) -> bool:
    return bool(client.info().get("Swarm", {}).get("ControlAvailable"))


def _swarm_init(client: docker.DockerClient) -> bool:
    if _is_manager(client):
        return False
    subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True, capture_output=True)
    return True


if __name__ == "__main__":
    main()
