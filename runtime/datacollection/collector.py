"""The driver API of the original: ``ModelDataCollector(model_name, identifier='default',
feature_names=None)`` and ``.collect(data, user_correlation_id='')``.

A collector encodes its rows in the calling thread (so data the driver changes after
``collect()`` returns is not seen) and queues them; it never raises and never waits.
When collection is off (no ``AML_MODEL_DC_STORAGE_ENABLED=true`` with a sink, no
``AML_MODEL_DC_DEBUG=true``) ``collect()`` returns at once. Inside a request the rows
carry the request id (``x-ms-request-id``), and the request's sampling decision is the
same for every collector and for automatic capture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ..logs import REQUEST_ID
from .rows import Target, UnsupportedData, shape

log = logging.getLogger("moma.runtime")


class ModelDataCollector:
    """Collect model inputs or predictions to ``.../{identifier}/{yyyy}/{mm}/{dd}/data.csv``.

    ``model_name`` is looked up in the image's ``model_config_map.json`` for the
    model's id and version; the other keyword arguments of the original
    (``model_management_account_id``, ``webservice_name``, ``model_id``,
    ``model_version``) are used only where the runtime does not know better.
    ``designation`` is accepted as the later SDK's name for ``identifier``.
    """

    def __init__(self, model_name: str, identifier: str = "default",
                 feature_names: Sequence[str] | None = None,
                 model_management_account_id: str = "unknown", webservice_name: str = "unknown",
                 model_id: str = "unknown", model_version: str = "unknown", *,
                 designation: str | None = None) -> None:
        from . import current  # the package's per-process hub

        self.model_name = str(model_name)
        self.identifier = str(designation or identifier or "default")
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.model_management_account_id = model_management_account_id
        self.webservice_name = webservice_name
        self.model_id = model_id
        self.model_version = model_version
        self._current = current
        self._target: tuple[Any, Target] | None = None
        self._warned = False
        hub = current()
        if hub is not None:
            hub.driver_collects(self.identifier)

    def _resolve(self, hub: Any) -> Target:
        cached = self._target
        if cached is not None and cached[0] is hub:
            return cached[1]
        target = hub.target_for(self.model_name, self.identifier, self.model_id,
                                self.model_version, self.webservice_name)
        self._target = (hub, target)
        return target

    def collect(self, input_data: Any, user_correlation_id: str = "") -> None:
        """Queue ``input_data`` (list, dict, numpy array, pandas DataFrame...) as rows."""
        hub = self._current()
        if hub is None:
            return
        request_id = REQUEST_ID.get() or ""
        if not hub.sampled(request_id):
            return
        try:
            target = self._resolve(hub)
            names, rows = shape(input_data, self.feature_names)
            ts = time.time()
            encoded = hub.encoder.encode(target, names, rows, ts,
                                         str(user_correlation_id or ""), request_id)
            hub.put(target, ts, encoded)
        except Exception as exc:  # noqa: BLE001 - collecting must never fail run()
            hub.recorder.dc_dropped("unsupported" if isinstance(exc, UnsupportedData)
                                    else "error", 1)
            if not self._warned:
                self._warned = True
                log.warning("data collection: %s/%s cannot collect this value (%s: %s); "
                            "such values are dropped and counted", self.model_name,
                            self.identifier, type(exc).__name__, exc)

    def __repr__(self) -> str:
        return (f"ModelDataCollector({self.model_name!r}, identifier={self.identifier!r}, "
                f"feature_names={self.feature_names!r})")
