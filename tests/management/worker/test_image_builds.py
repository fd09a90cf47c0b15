"""The worker carrying out an image operation (``worker/image_builds.py``) with a
stand-in builder (no Docker): the image built under the account's namespace, or failed
with a pointer to its log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder import fetch
from builder.build import BuildResult
from builder.errors import BuildError
from management.config import Settings
from management.store import Store
from management.worker import Worker
from management.worker.image_builds import ImageBuilds, image_namespace, image_tag

from ..helpers import Api, image_of


class FakeBuilder:
    """Stands in for ``builder.build.Builder``: records the build, then fails or succeeds."""

    def __init__(self, error: Exception | None = None, lines: tuple[str, ...] = ()) -> None:
        self.error = error
        self.lines = lines
        self.calls: list[tuple[Any, Any]] = []

    def build(self, spec: Any, options: Any, on_log: Any = lambda line: None) -> BuildResult:
        self.calls.append((spec, options))
        for line in self.lines:
            on_log(line)
        if self.error:
            on_log(f"FAILED: {self.error}")
            raise self.error
        reference = f"{options.namespace}/{options.name}:{options.tag}"
        return BuildResult(build_id=options.build_id, reference=reference, location=reference, image_id="sha256:1",
                           content_hash="c" * 64, reused=False, log_path=Path("build.log"), labels={}, seconds=0.1)


class FetchingBuilder(FakeBuilder):
    """Fetches the manifest's models as the real builder does (``builder.fetch``'s default
    fetcher, where the worker registers the artifact store), then succeeds."""

    def __init__(self, into: Path) -> None:
        super().__init__()
        self.into = into
        self.fetched: dict[str, bytes] = {}

    def build(self, spec: Any, options: Any, on_log: Any = lambda line: None) -> BuildResult:
        self.into.mkdir(parents=True, exist_ok=True)
        for model in spec.models:
            done = fetch.fetch(model.url, self.into / model.name, policy=fetch.FetchPolicy())
            self.fetched[model.name] = done.path.read_bytes()
        return super().build(spec, options, on_log)


def run_worker(store: Store, home: Path, builder: FakeBuilder, **settings_changes: Any) -> bool:
    settings = Settings.load(home=home, **settings_changes)
    worker = Worker(settings, store, {"Image": ImageBuilds(settings, store, builder)}, worker_id="test-worker")  # type: ignore[arg-type]
    return worker.run_once()


def test_worker_builds_the_image(api: Api, manifest: dict[str, Any], store: Store, home: Path) -> None:
    operation_id = api.create_image(manifest["id"], name="irisimg")
    builder = FakeBuilder()

    assert run_worker(store, home, builder)

    operation = api.ok("GET", f"/operations/{operation_id}")
    assert operation["state"] == "Succeeded" and "endTime" in operation
    image = image_of(api, operation_id)
    namespace = image_namespace(store.meta.installation_id(), store.accounts.ensure_default())
    assert (image["creationState"], image["imageLocation"]) == ("Succeeded", f"{namespace}/irisimg:{image_tag(image)}")
    spec, options = builder.calls[0]
    assert spec.driver_program == "driver" and [model.id for model in spec.models] == manifest["modelIds"]
    assert (options.build_id, options.namespace) == (image["id"], namespace)
    assert not run_worker(store, home, builder)


def test_a_failed_build_points_at_its_log(api: Api, manifest: dict[str, Any], store: Store, home: Path) -> None:
    operation_id = api.create_image(manifest["id"])

    assert run_worker(store, home, FakeBuilder(BuildError("pip install failed: no such package\nlog tail")))

    operation = api.ok("GET", f"/operations/{operation_id}")
    image = image_of(api, operation_id)
    assert operation["state"] == image["creationState"] == "Failed"
    assert "pip install failed" in operation["error"]["message"]
    assert f"/images/{image['id']}/buildLog" in operation["error"]["details"][0]["message"]
    assert image["error"] == operation["error"]


def test_the_build_log_is_read_through_a_replica_on_another_host(make_app, admin_token: str, store: Store,
                                                                  manifest: dict[str, Any], tmp_path: Path) -> None:
    """The worker and the API replica share the database only, no disk."""
    replica = Api(make_app(home=tmp_path / "replica-home").test_client(), admin_token)
    operation_id = replica.create_image(manifest["id"])
    lines = ("Step 1/9 : FROM python:3.11-slim", "Step 2/9 : RUN pip install")

    assert run_worker(store, tmp_path / "worker-home", FakeBuilder(BuildError("pip install failed"), lines=lines))

    image = image_of(replica, operation_id)
    response = replica.open("GET", image["imageBuildLogUri"])
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "\n".join(lines) + "\nFAILED: pip install failed\n"
    assert not (tmp_path / "replica-home" / "logs").exists()


@pytest.mark.slow
def test_a_worker_on_another_host_reads_artifacts_from_blob_storage(make_app, admin_token: str, store: Store,
                                                                   tmp_path: Path, azurite) -> None:
    """Uploaded through one API replica, built by a worker with a home of its own: no shared disk."""
    api = Api(make_app(artifact_storage=azurite.connection_string).test_client(), admin_token)
    data = b"model bytes of " + tmp_path.as_posix().encode()
    url = api.call("POST", "/artifacts", params={"name": "model.pkl"}, data=data,
                   content_type="application/octet-stream").get_json()["url"]
    model = api.register_model(url=url, unpack=False)
    operation_id = api.create_image(api.register_manifest([model["id"]])["id"])
    builder = FetchingBuilder(tmp_path / "fetched")

    assert run_worker(store, tmp_path / "worker-home", builder, artifact_storage=azurite.connection_string)

    assert api.ok("GET", f"/operations/{operation_id}")["state"] == "Succeeded"
    assert builder.fetched == {model["name"]: data}
    assert not (tmp_path / "worker-home" / "artifacts").exists()
