"""An image's Python packages layer: made once per wheel set, shared by every image with
the same packages.

The packages are installed into ``/opt/moma/venv`` by the script of
``templates/python-packages.sh.j2``, run in a container of the base image that has no
network and holds uv's wheel and the wheel set in ``/tmp``; the container's file system,
which the script leaves holding only the venv, is committed as an image: the base plus
one layer. Images with that base, wheel set and script are built ``FROM`` it, so the
layer is written and stored once. Done as a stage of the image's own Dockerfile instead,
the wheels would be a layer of that stage, and the venv would be copied into the image
(``COPY --from``, which hashes and writes all of it again).

The image has no tag; its label ``moma.python-deps`` holds its key (base image id, wheel
set, script). Docker removes an untagged image with its last child, so it lives as long
as an image built from it; one from which nothing was built (a build that failed after
it) is dangling and goes with ``docker image prune``.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Callable

from .dockerfile import UV_DIRECTORY
from .engine import DockerEngine
from .wheelhouse import WheelSet

LineSink = Callable[[str], None]
LABEL = "moma.python-deps"
WHEELS_DIRECTORY = "/tmp/moma-wheels"


def python_deps_key(base_id: str, script: str, wheels: WheelSet) -> str:
    identity = {"base": base_id, "script": script, "wheelSet": wheels.key, "wheels": list(wheels.wheels)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def find_python_deps(engine: DockerEngine, key: str, base_id: str) -> str | None:
    """The newest deps image of that key. Images built from one inherit its label, the
    intermediate images of their builds too; the deps image is the one whose parent is the
    base image itself."""
    for image_id, parent in engine.images_labelled(LABEL, key):
        if parent == base_id:
            return image_id
    return None


def make_python_deps(engine: DockerEngine, *, base_reference: str, key: str, script: str, wheels: WheelSet,
                     uv_wheel: Path, work: Path, log: LineSink) -> str:
    """Install the wheel set on the base image and commit it; the new image's id."""
    log(f"Python packages: installing {len(wheels.wheels)} wheels on {base_reference} (layer {key[:12]})")
    archive = work / "python-deps.tar"
    uv_directory, wheels_directory = Path(UV_DIRECTORY).name, Path(WHEELS_DIRECTORY).name
    with tarfile.open(archive, "w") as tar:
        for directory in (uv_directory, wheels_directory):
            tar.addfile(_directory(directory))
        tar.add(uv_wheel, f"{uv_directory}/{uv_wheel.name}", filter=_owned_by_root)
        for name in wheels.wheels:
            tar.add(wheels.directory / name, f"{wheels_directory}/{name}", filter=_owned_by_root)
    try:
        return engine.run_and_commit(base_reference, script, archive, labels={LABEL: key}, on_line=log)
    finally:
        archive.unlink(missing_ok=True)


def _directory(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE
    return _owned_by_root(member)


def _owned_by_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode = 0o755 if member.isdir() else 0o644
    return member
