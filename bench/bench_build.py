"""`make bench-build`: how fast the builder is on the iris example, one moma against another.

For each moma executable given (default: this checkout's), in one run: the cold build
(fresh wheelhouse and caches, ``--no-cache``), the rebuild after a model change, an
identical request, the time from ``docker run`` of the image to its first 200 on
``/score``, the image's size and its Python packages layer (the largest layer above the
base). The executables given run one after the other, each with its own MOMA_HOME.
Targets (issues "Image builder" and 19): identical request < 2 s, model-only rebuild
< 15 s, runtime + driver layers < 15 MB, cold build <= 0.5x and packages layer <= 0.85x
of the first moma's.

    python bench/bench_build.py [--repeat 3] [--moma before=/work/main/.venv/bin/moma --moma after=.venv/bin/moma]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iris"
MOMA = str(Path(sys.executable).parent / "moma")
LABEL = f"moma.bench={uuid.uuid4().hex[:8]}"
ROWS = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]}).encode()
MB = 1e6


@dataclass
class Result:
    cold: float
    rebuild: float
    identical: float
    first_200: float
    image_mb: float
    packages_mb: float
    runtime_driver_mb: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each warm case (median reported)")
    parser.add_argument("--moma", action="append", default=[], metavar="NAME=PATH",
                        help="a moma executable to measure, under a name (repeatable; default: this checkout's)")
    arguments = parser.parse_args()
    executables = [tuple(item.split("=", 1)) for item in arguments.moma] or [("moma", MOMA)]
    client = docker.from_env()
    results = {}
    try:
        for name, executable in executables:
            results[name] = measure(client, name, executable, arguments.repeat)
    finally:
        for image in client.images.list(filters={"label": LABEL}):
            client.images.remove(image.id, force=True)
    report(results, arguments.repeat)


def measure(client: docker.DockerClient, name: str, executable: str, repeat: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="moma-bench-") as work_dir:
        work = Path(work_dir)
        project = make_project(work / "iris")
        env = {"MOMA_HOME": str(work / "home"), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        cold = timed(build_command(executable, project, f"{name}-cold", "--no-cache"), env)
        rebuilds, identical = [], []
        for run in range(repeat):
            train(project, c=0.5 + run)
            rebuilds.append(timed(build_command(executable, project, f"{name}-model-{run}"), env))
            identical.append(timed(build_command(executable, project, f"{name}-same-{run}"), env))
        reference = f"bench-iris:{name}-model-{repeat - 1}"
        first = statistics.median(first_200(client, reference) for _ in range(repeat))
        packages, runtime_driver, image_size = layer_sizes(client, reference)
        return Result(cold, statistics.median(rebuilds), statistics.median(identical), first, image_size / MB,
                      packages / MB, runtime_driver / MB)


def make_project(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("score.py", "requirements.txt", "manifest.yml"):
        shutil.copy(EXAMPLE / name, directory / name)
    manifest = directory / "manifest.yml"
    manifest.write_text(manifest.read_text().replace("name: iris\n", "name: bench-iris\n", 1))
    train(directory, c=1.0)
    return directory


def train(directory: Path, c: float) -> None:
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(directory), "--c", str(c)], check=True,
                   stdout=subprocess.DEVNULL)


def build_command(executable: str, project: Path, tag: str, *extra: str) -> list[str]:
    # The bench label makes every image identifiable for clean-up; it is part of the
    # content, so the cold build cannot reuse an image from an earlier run either.
    return [executable, "build", str(project / "manifest.yml"), "--tag", tag, "--quiet", "--label", LABEL, *extra]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def first_200(client: docker.DockerClient, reference: str, deadline_s: float = 180.0) -> float:
    """Seconds from ``docker run`` (create + start) to the first 200 of a one-row ``/score``."""
    started = time.monotonic()
    container = client.containers.run(reference, detach=True, ports={"5001/tcp": ("127.0.0.1", None)},
                                      labels=dict([LABEL.split("=", 1)]))
    try:
        port = None
        while time.monotonic() - started < deadline_s:
            if port is None:
                container.reload()
                bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get("5001/tcp")
                port = bound[0]["HostPort"] if bound else None
            if port is not None and scored(port):
                return time.monotonic() - started
            time.sleep(0.02)  # polling interval, not synchronisation: the loop checks the condition
        raise TimeoutError(f"{reference} gave no 200 on /score within {deadline_s} s")
    finally:
        container.remove(force=True)


def scored(port: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=ROWS,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def layer_sizes(client: docker.DockerClient, reference: str) -> tuple[int, int, int]:
    """The Python packages layer (the largest above the base), runtime + driver layers, image."""
    image = client.images.get(reference)
    base = client.images.get(image.labels["org.opencontainers.image.base.name"])
    history = list(reversed(client.api.history(reference)))
    above_base = history[len(client.api.history(base.id)):]
    copies = [int(item["Size"]) for item in above_base if "COPY" in item["CreatedBy"]][-3:]
    return max(int(item["Size"]) for item in above_base), sum(copies[:2]), int(image.attrs["Size"])


def report(results: dict[str, Result], repeat: int) -> None:
    names = list(results)
    rows = [("cold build (fresh wheelhouse, --no-cache), s", "cold", "{:.1f}"),
            (f"rebuild after a model change (median of {repeat}), s", "rebuild", "{:.1f}"),
            (f"identical request, CLI end to end (median of {repeat}), s", "identical", "{:.2f}"),
            (f"docker run to first 200 on /score (median of {repeat}), s", "first_200", "{:.2f}"),
            ("image size, MB", "image_mb", "{:.1f}"),
            ("Python packages layer, MB", "packages_mb", "{:.1f}"),
            ("runtime + driver layers, MB", "runtime_driver_mb", "{:.2f}")]
    ratio = len(names) > 1
    print("| iris example | " + " | ".join(names) + (f" | {names[-1]} / {names[0]} |" if ratio else " |"))
    print("|---" * (len(names) + 1 + ratio) + "|")
    for label, field, form in rows:
        values = [getattr(results[name], field) for name in names]
        cells = [form.format(value) for value in values]
        if ratio:
            cells.append(f"{values[-1] / values[0]:.2f}x" if values[0] else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
