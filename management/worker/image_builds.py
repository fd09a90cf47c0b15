"""Image operations: build the image of a manifest with ``builder/`` and record the
outcome on the image and its operation together.

Images are tagged ``<account>-<hash>/<name>:<version>-<id>``: the hash is of the
installation and the account (two installations on one engine, or two accounts of one
name, never share a repository) and the id is the image's own (Docker repositories are
lower case: ``rt-Case`` and ``rt-case`` share one, and their versions count apart).
No other build ever moves such a tag, so a service redeployed from it runs its image."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from builder.build import Builder, BuildOptions
from builder.context import AccountContext
from builder.errors import BuilderError
from builder.manifest import ManifestSpec, parse_manifest

from .. import tracing
from ..artifacts import open_artifact_store, register
from ..config import Settings
from ..store import Account, Operation, Store
from .build_log import StoredBuildLog

log = logging.getLogger("moma.worker")
MODEL_FIELDS = ("id", "name", "version", "url", "mimeType", "unpack")
ACCOUNT_PART = 23  # of the 32 characters a repository path component may have here, before "-<hash>"


class ImageBuilds:
    def __init__(self, settings: Settings, store: Store, builder: Builder) -> None:
        self.settings = settings
        self.store = store
        self.builder = builder
        self._installation = ""
        register(open_artifact_store(settings))

    def __call__(self, operation: Operation, worker: str) -> None:
        account = self.store.accounts.get(operation.account_id)
        assert account is not None
        image = self.store.images.get(account.id, operation.resource_id)
        assert image is not None
        self.store.images.start(image["id"])
        try:
            with StoredBuildLog(self.store.build_logs, image["id"]) as build_log, \
                    tracing.span("build", {"moma.image.id": image["id"]}) as step:
                def on_log(line: str) -> None:
                    build_log(line)
                    if step is not None:
                        step.add_event(line)

                result = self.builder.build(self._spec(account, image["manifest"]), self._options(account, image),
                                            on_log=on_log)
        except BuilderError as exc:
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            self._failed(operation, worker, image, "ImageBuildFailed", first_line)
        except Exception as exc:  # the operation must end, whatever went wrong
            log.exception("image build %s failed unexpectedly", image["id"])
            self._failed(operation, worker, image, "InternalServerError", f"internal error: {exc}")
        else:
            done = self.store.images.complete(operation.id, worker, image["id"], "Succeeded",
                                              image_location=result.location, content_hash=result.content_hash)
            log.info("image %s %s: %s", image["id"], "built" if done else "built, but the lease was lost",
                     result.location)

    def _spec(self, account: Account, manifest: dict[str, Any]) -> ManifestSpec:
        models = self.store.models.get_many(account.id, manifest.get("modelIds") or [])
        body: dict[str, Any] = {key: manifest[key]
                                for key in ("id", "name", "description", "driverProgram", "modelType",
                                            "webserviceType", "modelIds", "targetRuntime", "assets")
                                if key in manifest}
        body["models"] = [{key: model[key] for key in MODEL_FIELDS if key in model} for model in models.values()]
        return parse_manifest(body)

    def _options(self, account: Account, image: dict[str, Any]) -> BuildOptions:
        if not self._installation:
            self._installation = self.store.meta.installation_id()
        return BuildOptions(
            name=image["name"], namespace=image_namespace(self._installation, account), tag=image_tag(image),
            push=self.settings.registry or None, build_id=image["id"],
            account=AccountContext(account.subscription_id, account.resource_group, account.name),
            labels=self.settings.extra_image_labels(),
        )

    def _failed(self, operation: Operation, worker: str, image: dict[str, Any], code: str, reason: str) -> None:
        log_uri = image.get("imageBuildLogUri", "")
        error = {"code": code, "message": f"image build failed: {reason}", "statusCode": 400,
                 "details": [{"code": "BuildLog", "message": f"build log: {log_uri}"}]}
        self.store.images.complete(operation.id, worker, image["id"], "Failed", error=error)


def image_namespace(installation: str, account: Account) -> str:
    digest = hashlib.sha256(f"{installation}/{account.id}".encode()).hexdigest()[:8]
    return f"{account.name.lower()[:ACCOUNT_PART].rstrip('-')}-{digest}"


def image_tag(image: dict[str, Any]) -> str:
    return f"{image['version']}-{image['id'].replace('-', '')[:12]}"
