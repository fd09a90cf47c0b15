"""The builder's thin adapter over the Docker SDK: the only module of the builder that
talks to the engine, and the place where ``docker.errors`` become builder errors."""

from __future__ import annotations

import collections
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import docker
import docker.errors
import requests

from .errors import BaseImageError, BuildError, OutputError

LineSink = Callable[[str], None]
LOG_TAIL_LINES = 30


class DockerEngine:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def from_env(cls) -> "DockerEngine":
        try:
            client = docker.from_env(timeout=600)
            client.ping()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise BuildError(f"no Docker engine answers at {where}: {exc}; start one or set DOCKER_HOST") from exc
        return cls(client)

    def architecture(self) -> str:
        return str(self.client.info().get("Architecture", "x86_64"))

    def image_id(self, reference: str) -> str | None:
        try:
            return str(self.client.images.get(reference).id)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise BuildError(f"cannot inspect image {reference}: {exc.explanation or exc}") from exc

    def image_labels(self, reference: str) -> dict[str, str]:
        try:
            return dict(self.client.images.get(reference).labels or {})
        except docker.errors.ImageNotFound:
            return {}

    def find_image_by_label(self, key: str, value: str) -> str | None:
        images = self.client.images.list(filters={"label": f"{key}={value}"})
        return str(images[0].id) if images else None

    def images_labelled(self, key: str, value: str) -> list[tuple[str, str]]:
        """(id, parent id) of every image with that label, newest first, intermediate images
        (untagged parents of others) included: one listing, no inspection per image."""
        try:
            images = self.client.api.images(all=True, filters={"label": f"{key}={value}"})
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise BuildError(f"cannot list images: {_explain(exc)}") from exc
        images.sort(key=lambda image: int(image.get("Created") or 0), reverse=True)
        return [(str(image["Id"]), str(image.get("ParentId") or "")) for image in images]

    def run_and_commit(self, base: str, script: str, archive: Path, *, labels: dict[str, str],
                       on_line: LineSink) -> str:
        """Run ``script`` with ``/bin/sh`` as root in a new container of ``base`` that has no
        network and no capabilities, with the tar ``archive`` unpacked into ``/tmp`` first;
        commit its file system as an image with ``labels`` (and the base's command) and
        return the image id. The container is removed however this ends."""
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        try:
            base_command = (self.client.images.get(base).attrs.get("Config") or {}).get("Cmd")
            container = self.client.containers.create(
                base, command=["/bin/sh", "-c", script], user="0:0", working_dir="/", labels=labels,
                network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"])
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise BuildError(f"cannot start installing the Python packages: {_explain(exc)}") from exc
        try:
            with archive.open("rb") as data:
                container.put_archive("/tmp", data)
            container.start()
            for line in _lines_of(container.logs(stream=True, follow=True)):
                tail.append(line)
                on_line(line)
            code = container.wait().get("StatusCode")
            if code != 0:
                raise BuildError(f"installing the Python packages failed (exit status {code})", list(tail))
            changes = [f"CMD {json.dumps(base_command)}"] if base_command else []
            return str(container.commit(changes=changes).id)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise BuildError(f"installing the Python packages failed: {_explain(exc)}", list(tail)) from exc
        finally:
            _remove_quietly(container)

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        try:
            self.client.api.tag(image_id, repository, tag, force=True)
        except docker.errors.APIError as exc:
            raise BuildError(f"cannot tag {image_id} as {repository}:{tag}: {exc.explanation or exc}") from exc

    def build(self, context_dir: Path, *, tag: str, labels: dict[str, str], on_line: LineSink,
              no_cache: bool = False) -> str:
        """Build and return the image id, reading the engine's stream as it comes and
        failing on the first error chunk with the tail of the log."""
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        image_id = None
        try:
            stream = self.client.api.build(
                path=str(context_dir), tag=tag, labels=labels, rm=True, forcerm=True,
                pull=False, nocache=no_cache, decode=True,
            )
            for chunk in stream:
                for line in _lines(chunk.get("stream", "")):
                    tail.append(line)
                    on_line(line)
                if "error" in chunk:
                    message = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    on_line(f"ERROR: {message.strip()}")
                    raise BuildError(f"docker build failed: {message.strip()}", list(tail))
                image_id = (chunk.get("aux") or {}).get("ID", image_id)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            raise BuildError(f"docker build failed: {_explain(exc)}", list(tail)) from exc
        except requests.RequestException as exc:
            raise BuildError(f"lost the Docker engine during the build: {exc}", list(tail)) from exc
        if image_id is None:
            image_id = self.image_id(tag)
        if image_id is None:
            raise BuildError("docker build ended without producing an image", list(tail))
        return image_id

    def push(self, repository: str, tag: str, on_line: LineSink) -> str:
        """Push and return the pushed digest (``sha256:...``) when the registry reports it."""
        digest = ""
        try:
            for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise OutputError(f"push of {repository}:{tag} failed: {chunk['error'].strip()}")
                status = chunk.get("status")
                if status and "id" not in chunk:
                    on_line(status)
                digest = ((chunk.get("aux") or {}).get("Digest")) or digest
        except docker.errors.APIError as exc:
            raise OutputError(f"push of {repository}:{tag} failed: {_explain(exc)}") from exc
        except requests.RequestException as exc:
            raise OutputError(f"push of {repository}:{tag} failed: {exc}") from exc
        return digest

    def save(self, reference: str, dest: Path) -> None:
        """``docker save`` into ``dest``, streamed, written under a temporary name first."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in self.client.api.get_image(reference):  # by name: the tar names that tag
                    out.write(chunk)
            os.replace(temp_name, dest)
        except (docker.errors.APIError, requests.RequestException, OSError) as exc:
            Path(temp_name).unlink(missing_ok=True)
            raise OutputError(f"cannot save {reference} to {dest}: {exc}") from exc

    def pull(self, reference: str) -> str:
        """Pull an image; returns '' on success, else the engine's reason."""
        repository, tag = split_reference(reference)
        try:
            self.client.images.pull(repository, tag=tag)
        except (docker.errors.APIError, requests.RequestException) as exc:
            return _explain(exc) if isinstance(exc, docker.errors.APIError) else str(exc)
        return ""

    def import_rootfs(self, tarball: Path, reference: str, changes: list[str]) -> str:
        repository, tag = split_reference(reference)
        try:
            self.client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise BaseImageError(f"docker import of {reference} failed: {exc}") from exc
        image_id = self.image_id(reference)
        if image_id is None:
            raise BaseImageError(f"docker import of {reference} produced no image")
        return image_id

    def layer_sizes(self, reference: str) -> list[tuple[str, int]]:
        """(instruction, size in bytes) for each layer, oldest first."""
        history: Iterable[dict[str, Any]] = self.client.api.history(reference)
        return [(item.get("CreatedBy", ""), int(item.get("Size", 0))) for item in reversed(list(history))]


def split_reference(reference: str) -> tuple[str, str]:
    """``registry:5000/name:tag`` → (``registry:5000/name``, ``tag``); no tag → ``latest``."""
    repository, _, last = reference.rpartition("/")
    name, _, tag = last.partition(":")
    return (f"{repository}/{name}" if repository else name), (tag or "latest")


def _lines_of(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream that arrives in chunks of any size."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield from _lines(raw.decode(errors="replace"))
    yield from _lines(pending.decode(errors="replace"))


def _remove_quietly(container: Any) -> None:
    try:
        container.remove(force=True)
    except (docker.errors.APIError, requests.RequestException):  # gone already, or the engine went away
        pass


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip():
            yield line.rstrip()


def _explain(exc: Exception) -> str:
    return str(getattr(exc, "explanation", None) or getattr(exc, "msg", None) or exc)
