"""`make bench-build`: how fast the builder is on the iris example.

Prints the cold build time (fresh wheelhouse, no layer cache), the rebuild after a
model change, an identical request, and the image's size against its base, with the
size of the runtime and driver layers. Targets (issue "Image builder"): identical
request < 2 s, model-only rebuild < 15 s, runtime + driver layers < 15 MB.

    python bench/bench_build.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iris"
MOMA = str(Path(sys.executable).parent / "moma")
LABEL = f"moma.bench={uuid.uuid4().hex[:8]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each warm case (median reported)")
    arguments = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="moma-bench-") as work_dir:
        work = Path(work_dir)
        project = make_project(work / "iris")
        env = {"MOMA_HOME": str(work / "home"), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        try:
            cold = timed(build_command(project, "cold", "--no-cache"), env)
            rebuilds, identical = [], []
            for run in range(arguments.repeat):
                train(project, c=0.5 + run)
                rebuilds.append(timed(build_command(project, f"model-{run}"), env))
                identical.append(timed(build_command(project, f"same-{run}"), env))
            report(client, cold, rebuilds, identical, f"bench-iris:model-{arguments.repeat - 1}")
        finally:
            for image in client.images.list(filters={"label": LABEL}):
                client.images.remove(image.id, force=True)


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


def build_command(project: Path, tag: str, *extra: str) -> list[str]:
    # The bench label makes every image identifiable for clean-up; it is part of the
    # content, so the cold build cannot reuse an image from an earlier run either.
    return [MOMA, "build", str(project / "manifest.yml"), "--tag", tag, "--quiet", "--label", LABEL, *extra]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def report(client: docker.DockerClient, cold: float, rebuilds: list[float], identical: list[float],
           reference: str) -> None:
    image = client.images.get(reference)
    base = client.images.get(image.labels["org.opencontainers.image.base.name"])
    history = list(reversed(client.api.history(reference)))
    copies = [int(item["Size"]) for item in history if "COPY" in item["CreatedBy"]][-4:]
    layer = dict(zip(("python packages", "runtime", "driver and assets", "models"), copies))
    mb = 1e6
    print(f"iris example, {len(rebuilds)} warm runs each (median):")
    print(f"  cold build (fresh wheelhouse, --no-cache)  {cold:7.1f} s")
    print(f"  rebuild after a model change               {statistics.median(rebuilds):7.1f} s   target < 15 s")
    print(f"  identical request (CLI, end to end)        {statistics.median(identical):7.2f} s   target < 2 s")
    print(f"  image size                                 {image.attrs['Size'] / mb:7.1f} MB")
    print(f"  base image ({base.tags[0]})            {base.attrs['Size'] / mb:7.1f} MB")
    for name, size in layer.items():
        print(f"    layer: {name:<22}                 {size / mb:7.2f} MB")
    print(f"  runtime + driver layers                    {(layer['runtime'] + layer['driver and assets']) / mb:7.2f} MB"
          "   target < 15 MB")


if __name__ == "__main__":
    main()
