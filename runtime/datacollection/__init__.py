"""Model data collection: model inputs and predictions to CSV (or JSON Lines) files in a
local directory and/or Azure Blob Storage, without slowing or failing scoring.

Two ways in, one queue per worker process:

- the driver API of the original, ``ModelDataCollector`` (also importable as
  ``azureml.datacollector`` through ``runtime/shims``);
- automatic capture: with collection on, every successful ``/score`` call's request
  body (identifier ``inputs``) and response (identifier ``prediction``) are queued by
  the app (``app.Gate``), unless the driver collects that identifier itself.

``configure()`` is called by ``create_app`` before the driver is imported; code that
uses a collector outside the runtime gets a hub configured from the environment on
first use. gunicorn's ``worker_exit`` hook (and ``atexit``) call ``shutdown()``, which
writes what is still queued. Files: ``settings.py`` (environment), ``context.py``
(model ids, paths), ``rows.py`` (shapes and formats), ``policy.py`` (what is
collected, sampling), ``items.py`` (queue items), ``drainer.py`` (queue, thread,
retries), ``hub.py`` (policy and drainer joined), ``sinks.py`` (local files, append
blobs, stdout), ``collector.py`` (driver API). See runtime/README.md, "Data collection".

Imports: the standard library and the rest of ``runtime`` only; numpy and pandas
values are recognised without importing them; ``azure.storage.blob`` is imported
only when ``AML_MODEL_DC_STORAGE`` is set and storage is enabled.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from .collector import ModelDataCollector
from .context import ModelContext
from .hub import Hub, NoRecorder, Recorder
from .rows import Encoder, InputShape, register_spark
from .settings import CollectionSettings
from .sinks import BlobSink, DebugSink, LocalSink, Sink

__all__ = ["ModelDataCollector", "configure", "current", "shutdown", "input_shape",
           "register_spark", "CollectionSettings"]

log = logging.getLogger("moma.runtime")

_lock = threading.Lock()
_hub: Hub | None = None
_configured = False
_atexit = False


def configure(settings: CollectionSettings | None = None, *, app_root: str = ".",
              recorder: Recorder | None = None, inputs: InputShape | None = None,
              environ: Mapping[str, str] | None = None) -> Hub | None:
    """Set up this process's hub (replacing and shutting down any earlier one).
    Returns None when collection is off."""
    global _hub, _configured, _atexit
    settings = settings or CollectionSettings.load(environ)
    hub = _build(settings, app_root, recorder, inputs)
    with _lock:
        previous, _hub, _configured = _hub, hub, True
        if not _atexit:
            atexit.register(shutdown)
            _atexit = True
    if previous is not None:
        previous.shutdown()
    if hub is not None:
        hub.start()
    return hub


def current() -> Hub | None:
    """This process's hub; configured from the environment on first use."""
    if not _configured:
        configure()
    return _hub


def shutdown(timeout: float | None = None) -> None:
    """Write what is queued (at most ``timeout`` seconds, default SHUTDOWN_TIMEOUT_S)."""
    hub = _hub
    if hub is not None:
        hub.shutdown(timeout)


def input_shape(schema: Any) -> InputShape | None:
    """What automatic capture needs of a ``schema.ServiceSchema``."""
    if schema is None:
        return None
    names, kinds, columns = [], [], []
    for spec in schema.inputs:
        names.append(spec.name)
        kinds.append(spec.kind)
        items = spec.swagger.get("items") if spec.swagger.get("type") == "array" else None
        properties = items.get("properties") if isinstance(items, dict) else None
        columns.append(tuple(properties) if isinstance(properties, dict) else None)
    return InputShape(tuple(names), tuple(kinds), tuple(columns))


def _build(settings: CollectionSettings, app_root: str, recorder: Recorder | None,
           inputs: InputShape | None) -> Hub | None:
    sinks: list[Sink] = []
    if settings.storage_enabled and settings.local_dir:
        sinks.append(LocalSink(settings.local_dir))
    if settings.storage_enabled and settings.connection_string:
        if _blob_installed():
            sinks.append(_LazyBlob(settings.connection_string,
                                   {"imageid": _ascii(settings.image_id),
                                    "service": _ascii(settings.service_name)}))
        else:
            log.error("data collection: AML_MODEL_DC_STORAGE is set but azure-storage-blob "
                      "is not installed in this image; nothing is written to blob storage")
    if settings.storage_enabled and not (settings.local_dir or settings.connection_string):
        log.warning("data collection: AML_MODEL_DC_STORAGE_ENABLED is true but neither "
                    "AML_MODEL_DC_STORAGE nor AML_MODEL_DC_LOCAL_DIR is set; collection is off")
    if settings.debug:
        sinks.append(DebugSink())
    if not sinks:
        return None
    context = ModelContext.load(app_root, settings.service_name, settings.image_id)
    encoder = Encoder(settings.format, settings.drop_fields, settings.hash_fields,
                      settings.hash_salt, settings.max_row_bytes)
    hub = Hub(encoder, sinks, queue_bytes=settings.queue_bytes,
              batch_bytes=settings.batch_bytes, flush_interval_s=settings.flush_interval_s,
              shutdown_timeout_s=settings.shutdown_timeout_s, sample_rate=settings.sample_rate,
              recorder=recorder or NoRecorder(), input_shape=inputs, context=context)
    if settings.auto:
        hub.policy.capture_automatically(context.default_model(settings.model_name))
    log.info("data collection on: sinks %s, format %s, automatic capture %s, sample rate %g",
             ", ".join(sink.name for sink in sinks), settings.format,
             "on" if settings.auto else "off", settings.sample_rate)
    return hub


def _blob_installed() -> bool:
    try:
        return importlib.util.find_spec("azure.storage.blob") is not None
    except (ImportError, ValueError):
        return False


def _ascii(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "_", text)[:256]


class _LazyBlob(Sink):
    """The blob sink, its client made (and azure-storage-blob imported) on the drainer
    thread at the first write, so a worker's start-up does not pay for it."""

    name = "blob"

    def __init__(self, connection_string: str, metadata: dict[str, str]) -> None:
        self._args = (connection_string, metadata)
        self._sink: BlobSink | None = None

    def write(self, path: str, header: bytes | None, block: bytes) -> None:
        sink = self._sink
        if sink is None:
            from .sinks import SinkError
            try:
                sink = self._sink = BlobSink(*self._args)
            except (ValueError, ImportError) as exc:
                raise SinkError(f"AML_MODEL_DC_STORAGE is not usable: {exc}") from exc
        sink.write(path, header, block)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
