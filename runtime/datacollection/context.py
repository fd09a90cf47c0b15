"""Where rows go: the account, service and model they belong to, and the path of the
original layout.

The models and the account come from ``model_config_map.json`` (``model_map.py``),
the service name from ``MOMA_SERVICE_NAME``. A path is::

    {sub}/{rg}/{account}/{service}/{modelId}-{modelName}-{modelVersion}/{identifier}/{yyyy}/{mm}/{dd}/data.csv

in the blob container ``modeldata`` (and under ``modeldata/`` in a local directory).
Every segment is reduced to ``[A-Za-z0-9._-]`` so no name can escape the directory.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from ..model_map import load_model_map

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
        mapped = load_model_map(app_root)
        account = mapped.account
        models = tuple(ModelRef(model.id or UNKNOWN, model.name, model.version or UNKNOWN)
                       for model in mapped.models)
        return cls(subscription=account.get("subscriptionId") or UNKNOWN,
                   resource_group=account.get("resourceGroupName") or UNKNOWN,
                   account=account.get("accountName") or UNKNOWN,
                   service=service or UNKNOWN, image_id=image_id, models=models)

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
