"""Manifest → image, from top to bottom: fetch, resolve, render, hash, reuse or build,
then push / save / hand over the context."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from . import dockerfile as dockerfiles
from .assets import FetchedManifest, fetch_manifest
from .base_images import base_image_id
from .config import BuilderConfig
from .content_hash import LABEL as CONTENT_HASH_LABEL
from .content_hash import content_hash, tree_digest
from .context import AccountContext, assemble_context
from .engine import DockerEngine, split_reference
from .errors import BuilderError, BuildError, ManifestError
from .manifest import NAME_PATTERN, ManifestSpec
from .python_deps import find_python_deps, make_python_deps, python_deps_key
from .requirements import parse_pip_requirements, requirement_name
from .scratch import scratch_directory
from .unpack import UnpackLimits
from .wheelhouse import LocalWheel, Wheelhouse, WheelSet

LineSink = Callable[[str], None]
OUTPUTS = ("image", "tar", "context")
LABEL_PREFIX = "moma."
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REGISTRY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


@dataclass(frozen=True)
class BuildOptions:
    name: str | None = None  # image repository; default: the manifest name, lower-cased
    namespace: str = ""  # repository prefix, e.g. the account: <namespace>/<name>
    tag: str = "latest"
    output: str = "image"  # image | tar | context
    dest: Path | None = None  # the tar file or context directory
    push: str | None = None  # registry[:port][/namespace]
    build_id: str | None = None
    account: AccountContext = field(default_factory=AccountContext)
    labels: dict[str, str] = field(default_factory=dict)  # extra labels, part of the image's identity
    no_cache: bool = False


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    reference: str  # name:tag on the local engine ('' for --output context)
    location: str  # pushed reference, tar path, context dir, or the local reference
    image_id: str | None
    content_hash: str | None
    reused: bool
    log_path: Path
    labels: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class _Outcome:
    reference: str
    location: str
    image_id: str | None
    content_hash: str | None
    reused: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class _ContextParts:
    """Everything the build context is made of, ready to be written out. ``wheels`` and
    ``installer`` only when the Dockerfile installs the Python packages itself."""

    manifest: FetchedManifest
    dockerfile: str
    account: AccountContext
    limits: UnpackLimits
    wheels: WheelSet | None = None
    installer: Path | None = None

    def assemble(self, directory: Path) -> None:
        assemble_context(directory, dockerfile=self.dockerfile, manifest=self.manifest, wheels=self.wheels,
                         installer=self.installer, runtime_source=runtime_source(), account=self.account,
                         limits=self.limits)


@dataclass(frozen=True)
class _Renderer:
    """The Dockerfile of one image, for a deps image id ('' installs in a stage of its own)."""

    runtime_type: str
    base_reference: str
    uv_wheel: str
    driver: str
    labels: dict[str, str]

    def __call__(self, deps_image: str | None) -> str:
        return dockerfiles.render_dockerfile(dockerfiles.DockerfileContext(
            moma_version=moma_version(), runtime_type=self.runtime_type, base_image=self.base_reference,
            uv_wheel=self.uv_wheel, driver=self.driver, labels=tuple(sorted(self.labels.items())),
            deps_image=deps_image or ""))

    def python_packages(self) -> str:
        return dockerfiles.render_python_packages(self.runtime_type, self.uv_wheel)


class _Deps:
    """The image with this build's Python packages installed (builder/python_deps.py)."""

    def __init__(self, engine: DockerEngine, base_reference: str, base_id: str, wheels: WheelSet,
                 script: str) -> None:
        self.engine = engine
        self.base_reference = base_reference
        self.base_id = base_id
        self.key = python_deps_key(base_id, script, wheels)
        self.image_id: str | None = None

    def find(self, log: LineSink) -> bool:
        self.image_id = find_python_deps(self.engine, self.key, self.base_id)
        if self.image_id is not None:
            log(f"Python packages: reusing the installed layer {self.key[:12]} ({self.image_id[:19]})")
        return self.image_id is not None

    def make(self, script: str, wheels: WheelSet, installer: Path, work: Path, log: LineSink) -> None:
        self.image_id = make_python_deps(self.engine, base_reference=self.base_id, key=self.key,
                                         script=script, wheels=wheels, uv_wheel=installer, work=work, log=log)

    def vanished(self, log: LineSink) -> bool:
        """Whether the deps image went (removed with the last image built from it by
        another party while this build started from it): then it is made again."""
        if self.image_id is None or self.engine.image_id(self.image_id) is not None:
            return False
        log(f"the Python packages layer {self.key[:12]} was removed meanwhile: installing it again")
        self.image_id = None
        return True


class Builder:
    def __init__(self, config: BuilderConfig, engine: DockerEngine | None = None,
                 wheelhouse: Wheelhouse | None = None) -> None:
        self.config = config
        self._engine = engine
        self.wheelhouse = wheelhouse or Wheelhouse(config.wheelhouse_dir)

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = DockerEngine.from_env()
        return self._engine

    def build(self, spec: ManifestSpec, options: BuildOptions = BuildOptions(),
              on_log: LineSink = lambda line: None) -> BuildResult:
        _check_options(options)
        build_id = options.build_id or uuid.uuid4().hex
        log_path = self.config.build_log_dir / f"{build_id}.log"
        started = time.monotonic()
        with BuildLog(log_path, on_log) as log, scratch_directory("moma-build-") as work:
            try:
                outcome = self._build(spec, options, build_id, work, log)
            except BuilderError as exc:
                if isinstance(exc, BuildError) and exc.log_path is None:
                    exc.log_path = log_path
                log(f"FAILED: {exc}")
                raise
            seconds = time.monotonic() - started
            log(f"done in {seconds:.1f} s: {outcome.location}")
        return BuildResult(build_id=build_id, log_path=log_path, seconds=seconds, **vars(outcome))

    def _build(self, spec: ManifestSpec, options: BuildOptions, build_id: str, work: Path,
               log: LineSink) -> "_Outcome":
        dockerfiles.check_runtime_supported(spec.runtime_type)
        name = image_name(options.name or spec.name)
        if options.namespace:
            name = f"{image_name(options.namespace)}/{name}"
        log(f"build {build_id}: manifest {spec.name!r} → {name}:{options.tag}")
        manifest = fetch_manifest(spec, work / "fetched", self.config)
        log(f"fetched {len(manifest.files)} files ({_size(sum(f.size for f in manifest.files))})")
        dependencies = manifest.dependencies
        python_version = dependencies.python_version
        for note in dependencies.notes:
            log(note)
        installer = self.wheelhouse.installer(log)
        wheels = self.wheelhouse.wheels_for(
            image_requirements(spec.runtime_type, dependencies.requirements), python_version, log,
            binary_only=dependencies.binary_only, local_wheels=_wheel_assets(manifest, work / "wheel-assets"),
            origins=dict(dependencies.origins))
        base_reference = self.config.base_image(python_version, spec.runtime_type)
        labels = image_labels(manifest, base_reference, wheels) | options.labels
        render = _Renderer(spec.runtime_type, base_reference, installer.name, manifest.driver.filename,
                           labels)
        if options.output == "context":
            context = _ContextParts(manifest, render(""), options.account, self._unpack_limits(), wheels, installer)
            return self._write_context(context, options, name, labels, log)

        base_id = base_image_id(self.engine, self.config, python_version, log, spec.runtime_type)
        reference = f"{name}:{options.tag}"
        deps = _Deps(self.engine, base_reference, base_id, wheels, render.python_packages())
        if not options.no_cache and deps.find(log):
            digest = self._digest(render(deps.image_id), base_id, manifest, options)
            existing = self._reuse(digest, reference, log)
            if existing is not None:
                return self._outcome(existing, name, reference, digest, True, labels, options, log)

        def build_once() -> tuple[str, str]:
            if deps.image_id is None:
                deps.make(render.python_packages(), wheels, installer, work, log)
            dockerfile = render(deps.image_id)
            digest = self._digest(dockerfile, base_id, manifest, options)
            shutil.rmtree(work / "context", ignore_errors=True)
            _ContextParts(manifest, dockerfile, options.account, self._unpack_limits()).assemble(work / "context")
            log(f"building {reference} on the Docker engine")
            return self.engine.build(work / "context", tag=reference, labels={CONTENT_HASH_LABEL: digest},
                                     on_line=log, no_cache=options.no_cache), digest

        try:
            image_id, digest = build_once()
        except BuildError:
            if not deps.vanished(log):
                raise
            image_id, digest = build_once()
        return self._outcome(image_id, name, reference, digest, False, labels, options, log)

    def _digest(self, dockerfile: str, base_id: str, manifest: FetchedManifest, options: BuildOptions) -> str:
        return content_hash(dockerfile=dockerfile, base_image_id=base_id, manifest=manifest,
                            runtime_digest=tree_digest(runtime_source()), account=options.account.as_json())

    def _outcome(self, image_id: str, name: str, reference: str, digest: str, reused: bool, labels: dict[str, str],
                 options: BuildOptions, log: LineSink) -> "_Outcome":
        location = self._output(image_id, name, options, log) or reference
        return _Outcome(reference=reference, location=location, image_id=image_id, content_hash=digest,
                        reused=reused, labels=labels | {CONTENT_HASH_LABEL: digest})

    def _reuse(self, digest: str, reference: str, log: LineSink) -> str | None:
        existing = self.engine.find_image_by_label(CONTENT_HASH_LABEL, digest)
        if existing is not None:
            repository, tag = split_reference(reference)
            self.engine.tag(existing, repository, tag)
            log(f"an identical image exists ({existing[:19]}): tagged it {reference}, nothing to build")
        return existing

    def _write_context(self, context: "_ContextParts", options: BuildOptions, name: str, labels: dict[str, str],
                       log: LineSink) -> "_Outcome":
        dest = (options.dest or Path(f"{name.replace('/', '-')}-context")).resolve()
        if dest.exists() and any(dest.iterdir()):
            raise BuildError(f"{dest} exists and is not empty; choose another --dest")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        try:
            context.assemble(staging)
            if dest.exists():
                dest.rmdir()
            os.rename(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"build context written to {dest} (build it with: docker build {dest})")
        return _Outcome(reference="", location=str(dest), image_id=None, content_hash=None, reused=False,
                        labels=labels)

    def _output(self, image_id: str, name: str, options: BuildOptions, log: LineSink) -> str | None:
        if options.push:
            repository = f"{options.push.rstrip('/')}/{name}"
            self.engine.tag(image_id, repository, options.tag)
            log(f"pushing {repository}:{options.tag}")
            self.engine.push(repository, options.tag, log)
            return f"{repository}:{options.tag}"
        if options.output == "tar":
            dest = (options.dest or Path(f"{name.replace('/', '-')}-{options.tag}.tar")).resolve()
            log(f"saving {name}:{options.tag} to {dest}")
            self.engine.save(f"{name}:{options.tag}", dest)
            return str(dest)
        return None

    def _unpack_limits(self) -> UnpackLimits:
        return UnpackLimits(max_total_bytes=self.config.max_unpacked_bytes,
                            max_members=self.config.max_archive_members,
                            max_inflation_ratio=self.config.max_inflation_ratio,
                            inflation_grace_bytes=self.config.inflation_grace_bytes)


class BuildLog:
    """Every line goes to the caller as it happens and to the build's log file."""

    def __init__(self, path: Path, sink: LineSink) -> None:
        self.path = path
        self.sink = sink
        self._file: TextIO | None = None

    def __enter__(self) -> "BuildLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file:
            self._file.close()

    def __call__(self, line: str) -> None:
        if self._file:
            self._file.write(line + "\n")
            self._file.flush()
        self.sink(line)


def image_labels(manifest: FetchedManifest, base_reference: str, wheels: WheelSet) -> dict[str, str]:
    spec = manifest.spec
    models = [{"id": m.model_id, "name": m.key, "version": m.model.version} for m in manifest.models if m.model]
    digests = {f"{f.role}:{f.key}": f"sha256:{f.sha256}" for f in manifest.files}
    return {
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.description": spec.description[:512],
        "org.opencontainers.image.base.name": base_reference,
        f"{LABEL_PREFIX}version": moma_version(),
        f"{LABEL_PREFIX}runtime-type": spec.runtime_type,
        f"{LABEL_PREFIX}manifest.id": spec.id,
        f"{LABEL_PREFIX}manifest.name": spec.name,
        f"{LABEL_PREFIX}models": json.dumps(models, sort_keys=True),
        f"{LABEL_PREFIX}assets": json.dumps(digests, sort_keys=True),
        f"{LABEL_PREFIX}python": manifest.dependencies.python_version,
        **_requested_python_label(manifest),
        f"{LABEL_PREFIX}python-packages": ",".join(wheels.pins()),
        **_spark_label(wheels),
    }


def _requested_python_label(manifest: FetchedManifest) -> dict[str, str]:
    """What the environment file asked for, beside ``moma.python``, what the image has."""
    requested = manifest.dependencies.python_requested
    return {f"{LABEL_PREFIX}python-requested": requested} if requested else {}


def _wheel_assets(manifest: FetchedManifest, directory: Path) -> tuple[LocalWheel, ...]:
    """The manifest's ``.whl`` assets under their own file names, as pip needs them."""
    directory.mkdir(parents=True, exist_ok=True)
    staged = []
    for item in manifest.wheels:
        target = directory / item.filename
        if target.exists():
            raise ManifestError(f"assets ({item.key})", f"another asset is also named {item.filename!r}")
        shutil.copyfile(item.path, target)
        staged.append(LocalWheel(target, item.sha256))
    return tuple(staged)


def _spark_label(wheels: WheelSet) -> dict[str, str]:
    versions = [pin.split("==", 1)[1] for pin in wheels.pins() if pin.startswith("pyspark==")]
    return {f"{LABEL_PREFIX}spark-version": versions[0]} if versions else {}


def image_name(name: str) -> str:
    """Docker repositories are lower case; moma names are letters, digits and hyphens."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ManifestError("name", f"{name!r} is not a valid image name (letters, digits and inner hyphens, up to 32)")
    return name.lower()


def runtime_source() -> Path:
    spec = importlib.util.find_spec("runtime")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the moma runtime package is not installed")
    return Path(list(spec.submodule_search_locations)[0])


YIELDING_REQUIREMENTS = ("requirements-blob.txt", "requirements-telemetry.txt")
RUNTIME_REQUIREMENTS = {"Python": ("requirements.txt",), "SparkPython": ("requirements.txt", "requirements-spark.txt")}


def runtime_requirements(runtime_type: str = "Python") -> tuple[str, ...]:
    """What the runtime needs in an image of this type, from the runtime's pinned files."""
    requirements: tuple[str, ...] = ()
    for name in RUNTIME_REQUIREMENTS[runtime_type]:
        requirements += _runtime_file(name)
    return requirements


def image_requirements(runtime_type: str, user: tuple[str, ...]) -> tuple[str, ...]:
    """The runtime's pins, the user's requirements, and the yielding pins of
    ``runtime/requirements-blob.txt`` and ``requirements-telemetry.txt`` for every package
    the user does not name."""
    named = {requirement_name(line) for line in user}
    yielding = tuple(line for name in YIELDING_REQUIREMENTS for line in _runtime_file(name)
                     if requirement_name(line) not in named)
    return runtime_requirements(runtime_type) + user + yielding


def _runtime_file(name: str) -> tuple[str, ...]:
    return parse_pip_requirements((runtime_source() / name).read_text(encoding="utf-8"), f"runtime/{name}")


def moma_version() -> str:
    try:
        return importlib.metadata.version("moma")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _check_options(options: BuildOptions) -> None:
    if options.output not in OUTPUTS:
        raise ManifestError("--output", f"{options.output!r} is not one of {', '.join(OUTPUTS)}")
    if not _TAG.fullmatch(options.tag):
        raise ManifestError("--tag", f"{options.tag!r} is not a valid image tag")
    if options.push and not _REGISTRY.fullmatch(options.push):
        raise ManifestError("--push", f"{options.push!r} is not a registry address like 127.0.0.1:5000")
    if options.push and options.output != "image":
        raise ManifestError("--push", "pushing needs --output image")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"
