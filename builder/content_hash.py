"""The identity of an image: a sha256 over everything that goes into it.

Two requests with the same hash would build the same image, so the second one reuses
the first instead of building. The hash covers the rendered Dockerfile (template
version, base reference, driver name), the base image id, the Python requirements,
the runtime's files, and each asset's and model's digest and placement. The
Dockerfile carries the labels that describe the content, and names the image with the
Python packages installed (builder/python_deps.py), so those are covered too and labels
are always true of the image they are on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

from .assets import FetchedManifest

FORMAT = 1
LABEL = "moma.content-hash"  # on every image moma builds


def tree_digest(root: Path) -> str:
    """sha256 over the relative paths and contents of the files under root, skipping caches."""
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(root)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = Path(directory, name)
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def content_hash(
    *,
    dockerfile: str,
    base_image_id: str,
    manifest: FetchedManifest,
    runtime_digest: str,
    account: Mapping[str, str],
) -> str:
    identity = {
        "format": FORMAT,
        "dockerfile": hashlib.sha256(dockerfile.encode()).hexdigest(),
        "baseImageId": base_image_id,
        "python": manifest.dependencies.python_version,
        "requirements": sorted(manifest.dependencies.requirements),
        "runtime": runtime_digest,
        "files": [
            {"role": f.role, "key": f.key, "file": f.filename, "sha256": f.sha256, "unpack": f.unpack}
            for f in manifest.files
        ],
        "account": dict(sorted(account.items())),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
