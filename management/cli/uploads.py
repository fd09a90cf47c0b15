"""Local files into the server's artifact store, the way the original CLI sent them to
blob storage: a file as it is, a directory tarred into ``<uuid>.tar.gz`` (streamed to a
temporary file, never held in memory) and marked ``unpack``; http(s) URLs are passed on.
Models are registered from any of the three."""

from __future__ import annotations

import mimetypes
import re
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..client import ApiClient

OCTET_STREAM = "application/octet-stream"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
NAME_MAX = 32
ASSET_ID_MAX = 32


@dataclass(frozen=True)
class Uploaded:
    url: str
    mime_type: str
    unpack: bool
    filename: str


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def upload_file(client: ApiClient, path: Path, name: str | None = None) -> str:
    """Stream one file to ``POST <account>/artifacts``; its ``artifact://`` URL. ``name`` is
    the file name the build gives it (the local name by default)."""
    with path.open("rb") as body:
        response = client.call("POST", "/artifacts", params={"name": name or path.name}, data=body,
                               headers={"Content-Type": OCTET_STREAM})
    return response.json()["url"]


def upload(client: ApiClient, path: Path, name: str | None = None) -> Uploaded:
    """A file as it is (``unpack`` false), or a directory as a tarball to unpack. Inside the
    tarball the directory keeps its name, so a driver loads it by that relative path."""
    if path.is_dir():
        with tempfile.TemporaryDirectory(prefix="moma-upload-") as work:
            tarball = Path(work) / f"{uuid.uuid4()}.tar.gz"
            with tarfile.open(tarball, "w:gz") as archive:
                archive.add(path, arcname=path.resolve().name)
            return Uploaded(upload_file(client, tarball), OCTET_STREAM, True, tarball.name)
    filename = name or path.name
    return Uploaded(upload_file(client, path, filename), mime_type(filename), False, filename)


def mime_type(filename: str) -> str:
    guessed, encoding = mimetypes.guess_type(filename)
    return guessed if guessed and not encoding else OCTET_STREAM


def register_model(client: ApiClient, source: str, name: str, tags: tuple[str, ...] = (),
                   description: str = "") -> dict[str, Any]:
    """Register ``source`` (a local file or directory, or an http(s) URL) as model ``name``."""
    if is_url(source):
        path = source.split("?", 1)[0]
        body = {"url": source, "mimeType": mime_type(path.rsplit("/", 1)[-1]),
                "unpack": path.lower().endswith(ARCHIVE_SUFFIXES)}
    else:
        uploaded = upload(client, local_path(source, "-m/--model"))
        body = {"url": uploaded.url, "mimeType": uploaded.mime_type, "unpack": uploaded.unpack}
    return client.call("POST", "/models", json={"name": name, "tags": list(tags), "description": description,
                                                **body}).json()


def local_path(value: str, option: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise click.BadParameter(f"{value}: no such file or directory", param_hint=option)
    return path


def model_name(path: str) -> str:
    """A model name from a file name (``model.pkl`` → ``model``), as the API accepts it."""
    stem = Path(path.split("?", 1)[0].rstrip("/")).name.split(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:NAME_MAX].strip("-") or "model"


def asset_id(path: Path, taken: set[str]) -> str:
    """A readable asset id from a file name, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-.")[:ASSET_ID_MAX - 3] or "asset"
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate)
    return candidate
