"""The worker carrying out an image operation (``worker/image_builds.py``) with a
stand-in builder (no Docker): the image built under the account's namespace, or failed
with a pointer to its log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.build import BuildResult
from builder.errors import BuildError
from management.config import Settings
from management.store import Store
from management.worker import Worker
from management.worker.image_builds import ImageBuilds, image_namespace, image_tag

from ..helpers import Api, image_of


class FakeBuilder:
    """Stands in for ``builder.build.Builder``: records the build, then fails or succeeds."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, Any]] = []

    def build(self, spec: Any, options: Any, on_log: Any = None) -> BuildResult:
        self.calls.append((spec, options))
        if self.error:
            raise self.error
        reference = f"{options.namespace}/{options.name}:{options.tag}"
        return BuildResult(build_id=options.build_id, reference=reference, location=reference, image_id="sha256:1",
                           content_hash="c" * 64, reused=False, log_path=Path("build.log"), labels={}, seconds=0.1)


def run_worker(store: Store, home: Path, builder: FakeBuilder) -> bool:
    settings = Settings.load(home=home)
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
