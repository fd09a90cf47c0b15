"""Scale-out throughput: image builds and service creations per minute with 1 and 2
workers, and API reads per second with 1 and 2 replicas behind HAProxy.

An installation as docs/scale-out.md deploys one, all on this machine: two
`moma serve --no-worker` replicas and the workers on the PostgreSQL database of
--database-url (empty or a moma one; the run works in an account of its own) and the
blob storage of --artifact-storage (Azurite will do), each process with its own
$MOMA_HOME. Each worker builds and runs services on this machine's engine with one
build slot and one service slot, so that the number of workers is what changes.

Builds: --builds images of the iris example, each its own manifest and driver (a
comment apart: an identical manifest's image would be reused, not built), created at
once; the time until every one has succeeded. One build before the first round makes
the wheelhouse and the shared packages layer, so that both rounds build on them alike.
Services: --builds services of the first image on the local compute, created at once,
then deleted. API: wrk (--connections, --duration) on `GET models?count=100` (the
account holds --models models) through an HAProxy with one replica, then one with both.

    python bench/bench_scale.py --database-url postgresql://moma@127.0.0.1/moma \\
        --artifact-storage 'DefaultEndpointsProtocol=http;…' [--builds 4] [--models 300]
    make bench-scale DATABASE_URL=… ARTIFACT_STORAGE=…
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from bench.api_flow import create_image, operation_id, register_iris, upload, wait_operation  # noqa: E402
from bench.installation import Installation  # noqa: E402
from bench.load_balancer import HAProxy  # noqa: E402
from management.client import ApiClient, Scope  # noqa: E402

EXAMPLE = ROOT / "examples" / "iris"
LABEL = "moma.bench-scale"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL (an empty database, or a moma one)")
    parser.add_argument("--artifact-storage", required=True,
                        help="Azure Storage connection string (Azurite will do)")
    parser.add_argument("--builds", type=int, default=4, help="builds (and services) per round")
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=16)
    arguments = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="moma-bench-scale-") as directory:
        root = Path(directory)
        database_url, artifact_storage = arguments.database_url, arguments.artifact_storage
        project = iris_project(root / "iris")
        installation = Installation(root / "installation", database_url, artifact_storage,
                                    f"{LABEL}={run}", MOMA_WORKER_BUILD_SLOTS="1", MOMA_WORKER_SERVICE_SLOTS="1",
                                    MOMA_ACCOUNT_BUILD_SLOTS="8", MOMA_ACCOUNT_SERVICE_SLOTS="8")
        try:
            installation.start()
            client = account(installation, f"bench{run}")
            rows = []
            installation.worker("worker1")
            timed_builds(client, project, 1, "warm")  # the wheelhouse and the packages layer, made once
            for workers in (1, 2):
                if workers == 2:
                    installation.worker("worker2")
                built = timed_builds(client, project, arguments.builds, f"w{workers}")
                rows.append((f"image builds per minute, {workers} worker(s)", per_minute(built)))
                created = timed_services(client, built[1][0], arguments.builds, f"w{workers}")
                rows.append((f"service creations per minute, {workers} worker(s)", per_minute(created)))
            register_models(client, arguments.models)
            for replicas in (1, 2):
                rows.append((f"GET models?count=100 per second, {replicas} replica(s) behind HAProxy",
                             api_rate(installation, root, client, replicas, arguments)))
        finally:
            installation.stop()
            remove_images(run)
    print(f"{arguments.builds} builds and services per round, {arguments.models} models, "
          f"wrk -c{arguments.connections} -d{arguments.duration}s:")
    for what, value in rows:
        print(f"  {what:62} {value:8.1f}")


def iris_project(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("score.py", "requirements.txt"):
        (directory / name).write_bytes((EXAMPLE / name).read_bytes())
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(directory)], check=True, stdout=subprocess.DEVNULL)
    return directory


def account(installation: Installation, name: str) -> ApiClient:
    installation.client().call("POST", "/api/admin/accounts", json={"accountName": name}, account=False)
    return installation.client(Scope(account=name))


def per_minute(timed: tuple[float, list[str]]) -> float:
    seconds, done = timed
    return len(done) * 60 / seconds


def wait_all(client: ApiClient, operations: list[str]) -> list[str]:
    """The resource ids of the operations, once every one has succeeded."""
    with ThreadPoolExecutor(len(operations)) as pool:
        done = list(pool.map(lambda operation: wait_operation(client, operation, timeout=1200), operations))
    failed = [operation for operation in done if operation["state"] != "Succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} operations did not succeed, e.g. {failed[0]}")
    return [operation["resourceLocation"].rsplit("/", 1)[-1] for operation in done]


def timed_builds(client: ApiClient, project: Path, count: int, prefix: str) -> tuple[float, list[str]]:
    manifests = [register_iris(client, own_driver(project, f"{prefix}{number}"), f"{prefix}m{number}")["manifest"]["id"]
                 for number in range(count)]
    started = time.monotonic()
    operations = [create_image(client, manifest, f"{prefix}i{number}") for number, manifest in enumerate(manifests)]
    images = wait_all(client, operations)
    return time.monotonic() - started, images


def own_driver(project: Path, name: str) -> Path:
    """A copy of the project whose driver differs by a comment: an image of its own (an
    identical manifest's image would be reused, not built)."""
    copy = project.parent / name
    shutil.copytree(project, copy)
    with open(copy / "score.py", "a") as driver:
        driver.write(f"# bench build {name}\n")
    return copy


def timed_services(client: ApiClient, image_id: str, count: int, prefix: str) -> tuple[float, list[str]]:
    started = time.monotonic()
    try:
        operations = [operation_id(client.call("POST", "/services", json={
            "imageId": image_id, "name": f"{prefix}s{number}", "computeResource": {"id": "local", "type": "Cluster"},
            "autoScaler": {}, "containerResourceReservation": {}})) for number in range(count)]
        services = wait_all(client, operations)
        return time.monotonic() - started, services
    finally:
        delete_services(client)


def delete_services(client: ApiClient) -> None:
    """Delete every service of the account, and wait until their containers are gone."""
    deleting = [client.call("DELETE", f"/services/{service['id']}").headers["Operation-Location"].rsplit("/", 1)[-1]
                for service in client.pages("/services")]
    if deleting:
        wait_all(client, deleting)


def register_models(client: ApiClient, count: int) -> None:
    url = upload(client, EXAMPLE / "score.py")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda number: client.call("POST", "/models", json={
            "name": f"model{number}", "tags": [], "description": "bench", "url": url,
            "mimeType": "application/octet-stream", "unpack": False}), range(count)))


def api_rate(installation: Installation, root: Path, client: ApiClient, replicas: int,
             arguments: argparse.Namespace) -> float:
    balancer = HAProxy(root / f"haproxy-{replicas}", installation.balancer.backends[:replicas]).start()
    try:
        path = f"{client.scope.path}/models?api-version=2017-09-01-preview&count=100"
        done = subprocess.run(["wrk", "-t2", f"-c{arguments.connections}", f"-d{arguments.duration}s",
                               "-H", f"Authorization: Bearer {installation.token}", f"{balancer.url}{path}"],
                              capture_output=True, text=True, check=True).stdout
    finally:
        balancer.stop()
    if re.search(r"Non-2xx or 3xx responses", done):
        raise SystemExit(f"errors under load:\n{done}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1))  # type: ignore[union-attr]


def remove_images(run: str) -> None:
    client = docker.from_env()
    for image in client.images.list(filters={"label": f"{LABEL}={run}"}):
        client.images.remove(image.id, force=True)
    client.close()


if __name__ == "__main__":
    main()
