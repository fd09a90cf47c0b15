"""Local files into the server's artifact store, the way the original CLI sent them to
blob storage: a file as it is, a directory tarred into ``<hex>.tar.gz`` (streamed to a
temporary file, never held in memory) and marked ``unpack``; http(s) URLs are passed on.
Models are registered from any of the three.

The original named a directory's tarball with a random uuid; here the tarball depends
only on the directory's content (members sorted, no owners, times or gzip timestamp)
and is named after its digest, so the same directory always becomes the same artifact
URL: that is what lets the one-shot commands find a model, manifest or image they made
before (``model_from``)."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import tarfile
import tempfile
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

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
    the file name the build gives it (the local name by default). The file's sha256 goes
    with it: the server keeps the bytes only if they are that (a file changed while it was
    sent is refused), and with blob storage streams them straight into it."""
    params = {"name": name or path.name, "sha256": sha256_of(path)}
    with path.open("rb") as body:
        response = client.call("POST", "/artifacts", params=params, data=body, headers={"Content-Type": OCTET_STREAM})
    return response.json()["url"]


@dataclass(frozen=True)
class LocalFile:
    """What a local path is sent as: the file itself, or its directory packed."""

    path: Path
    filename: str
    mime_type: str
    unpack: bool


@contextmanager
def packed(path: Path, name: str | None = None) -> Iterator[LocalFile]:
    """A file as it is (``unpack`` false), or a directory as a tarball to unpack, which
    lives until the block ends. Inside the tarball the directory keeps its name, so a
    driver loads it by that relative path."""
    if path.is_dir():
        with tempfile.TemporaryDirectory(prefix="moma-upload-") as work:
            tarball = pack_directory(path, Path(work))
            yield LocalFile(tarball, tarball.name, OCTET_STREAM, True)
    else:
        filename = name or path.name
        yield LocalFile(path, filename, mime_type(filename), False)


def pack_directory(source: Path, work: Path) -> Path:
    """``source`` as ``work/<first 32 hex of its sha256>.tar.gz``, the same bytes for the same content."""
    staging = work / "directory.tar.gz"
    with staging.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(source, arcname=source.resolve().name, filter=_content_only)  # add() walks in sorted order
    return staging.rename(work / f"{sha256_of(staging)[:32]}.tar.gz")


def _content_only(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mtime = 0
    return member


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def upload(client: ApiClient, path: Path, name: str | None = None) -> Uploaded:
    """A file or a directory (see ``packed``) into the artifact store."""
    with packed(path, name) as local:
        return Uploaded(upload_file(client, local.path, local.filename), local.mime_type, local.unpack,
                        local.filename)


def mime_type(filename: str) -> str:
    guessed, encoding = mimetypes.guess_type(filename)
    return guessed if guessed and not encoding else OCTET_STREAM


def register_model(client: ApiClient, source: str, name: str, tags: tuple[str, ...] = (),
                   description: str = "") -> dict[str, Any]:
    """Register ``source`` (a local file or directory, or an http(s) URL) as model ``name``:
    a new version each time, as the original did."""
    if is_url(source):
        path = source.split("?", 1)[0]
        return _register(client, name, tags, description, url=source, mimeType=mime_type(path.rsplit("/", 1)[-1]),
                         unpack=path.lower().endswith(ARCHIVE_SUFFIXES))
    with packed(local_path(source, "-m/--model")) as local:
        return _register_local(client, name, local, tags, description)


def model_from(client: ApiClient, source: str, name: str, *, reuse: bool) -> tuple[dict[str, Any], bool]:
    """(model, reused): with ``reuse``, the latest model ``name`` registered from these very
    bytes under the same file name (both files, or both directories); else, or when there
    is none, a new registration. An http(s) URL is always registered again: what it
    serves can change behind it."""
    if is_url(source):
        return register_model(client, source, name), False
    with packed(local_path(source, "-m/--model-file")) as local:
        found = _registered(client, name, local) if reuse else None
        return (found, True) if found is not None else (_register_local(client, name, local), False)


def _registered(client: ApiClient, name: str, local: LocalFile) -> dict[str, Any] | None:
    digest = sha256_of(local.path)
    found = None
    for model in client.pages("/models", {"name": name, "sha256": digest}):
        if artifact_of(model["url"]) == (digest, local.filename) and bool(model.get("unpack")) == local.unpack:
            found = model
    return found


def _register_local(client: ApiClient, name: str, local: LocalFile, tags: tuple[str, ...] = (),
                    description: str = "") -> dict[str, Any]:
    return _register(client, name, tags, description, url=upload_file(client, local.path, local.filename),
                     mimeType=local.mime_type, unpack=local.unpack)


def _register(client: ApiClient, name: str, tags: tuple[str, ...], description: str, **source: Any) -> dict[str, Any]:
    return client.call("POST", "/models", json={"name": name, "tags": list(tags), "description": description,
                                                **source}).json()


def artifact_of(url: str) -> tuple[str, str] | None:
    """(sha256, file name) of an ``artifact://sha256/<hex>/<name>`` URL; None for any other."""
    parts = urllib.parse.urlsplit(url)
    digest, _, name = parts.path.lstrip("/").partition("/")
    if parts.scheme != "artifact" or parts.netloc != "sha256" or not digest or not name:
        return None
    return digest, urllib.parse.unquote(name)


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
