"""Where rows go: the account, service and model they belong to, and the path of the
original layout.

``model_config_map.json`` in the app root (written by the image builder, as the
original did) holds ``{"models": {name: {"id", "version"}}, "accountContext":
{"subscriptionId", "resourceGroupName", "accountName"}}``. The service name comes
from ``MOMA_SERVICE_NAME``. A path is::

    {sub}/{rg}/{account}/{service}/{modelId}-{modelName}-{modelVersion}/{identifier}/{yyyy}/{mm}/{dd}/data.csv

in the blob container ``modeldata`` (and under ``modeldata/`` in a local directory).
Every segment is reduced to ``[A-Za-z0-9._-]`` so no name can escape the directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from typing import Any

log = logging.getLogger("moma.runtime")

CONTAINER = "modeldata"
UNKNOWN = "unknown"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def segment(value: Any) -> str:
    """One path segment: unsafe characters become ``_``; never empty, ``.`` or ``..``."""
    text = _UNSAFE.sub("_", str(value if value is not None else ""))[:128]
    return "_" if text in ("", ".", "..") else text


@dataclasses.dataclass(frozen=True)
class ModelRef:
    id: str
    name: str
    version: str

    @property
    def folder(self) -> str:
        return f"{segment(self.id)}-{segment(self.name)}-{segment(self.version)}"


@dataclasses.dataclass(frozen=True)
class ModelContext:
    subscription: str = UNKNOWN
    resource_group: str = UNKNOWN
    account: str = UNKNOWN
    service: str = UNKNOWN
    image_id: str = ""
    models: tuple[ModelRef, ...] = ()

    @classmethod
    def load(cls, app_root: str, service: str, image_id: str) -> "ModelContext":
        path = os.path.join(app_root, "model_config_map.json")
        document: Any = {}
        try:
            with open(path, "rb") as fh:
                document = json.load(fh)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("data collection: cannot read %s (%s); model ids are 'unknown'", path, exc)
        if not isinstance(document, dict):
            document = {}
        account = document.get("accountContext")
        account = account if isinstance(account, dict) else {}
        models = []
        entries = document.get("models")
        for name, entry in (entries.items() if isinstance(entries, dict) else ()):
            entry = entry if isinstance(entry, dict) else {}
            models.append(ModelRef(str(entry.get("id") or UNKNOWN), str(name),
                                   str(entry.get("version") or UNKNOWN)))
        return cls(subscription=str(account.get("subscriptionId") or UNKNOWN),
                   resource_group=str(account.get("resourceGroupName") or UNKNOWN),
                   account=str(account.get("accountName") or UNKNOWN),
                   service=service or UNKNOWN, image_id=image_id, models=tuple(models))

    def model(self, name: str, model_id: str | None = None,
              version: str | None = None) -> ModelRef:
        """The registered model called ``name``; unknown names keep the ids given (the
        original's ``model_id``/``model_version`` arguments) or ``unknown``."""
        for ref in self.models:
            if ref.name == name:
                return ref
        return ModelRef(str(model_id or UNKNOWN), str(name), str(version or UNKNOWN))

    def default_model(self, name: str | None = None) -> ModelRef:
        """The model automatic rows are filed under: ``name`` if given, else the first
        model of the map (by name), else ``unknown``."""
        if name:
            return self.model(name)
        if self.models:
            return min(self.models, key=lambda ref: ref.name)
        return ModelRef(UNKNOWN, UNKNOWN, UNKNOWN)

    def prefix(self, model: ModelRef, identifier: str) -> str:
        """The path up to the identifier; the day and file name follow."""
        return "/".join((segment(self.subscription), segment(self.resource_group),
                         segment(self.account), segment(self.service), model.folder,
                         segment(identifier)))


def day_path(prefix: str, timestamp: float, file_name: str) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(timestamp))
    return f"{prefix}/{day}/{file_name}"
