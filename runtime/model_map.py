"""``model_config_map.json``, written into the app root by the image builder (as the
original did): the image's models by name, with their ids and versions, and the
account they belong to::

    {"models": {"iris": {"id": "0123abcd", "version": 3}},
     "accountContext": {"subscriptionId": ..., "resourceGroupName": ..., "accountName": ...}}

Data collection files rows under these names; the Open Inference Protocol routes
answer to them. A missing or unreadable file reads as no models and no account.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

log = logging.getLogger("moma.runtime")

FILE_NAME = "model_config_map.json"


@dataclasses.dataclass(frozen=True)
class MappedModel:
    name: str
    id: str | None
    version: str | None


@dataclasses.dataclass(frozen=True)
class ModelMap:
    models: tuple[MappedModel, ...] = ()
    account: dict[str, str] = dataclasses.field(default_factory=dict)


def load_model_map(app_root: str) -> ModelMap:
    path = os.path.join(app_root, FILE_NAME)
    try:
        with open(path, "rb") as fh:
            document: Any = json.load(fh)
    except FileNotFoundError:
        return ModelMap()
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s); the image's models are unknown", path, exc)
        return ModelMap()
    if not isinstance(document, dict):
        return ModelMap()
    entries = document.get("models")
    models = []
    for name, entry in (entries.items() if isinstance(entries, dict) else ()):
        entry = entry if isinstance(entry, dict) else {}
        models.append(MappedModel(str(name), _text(entry.get("id")), _text(entry.get("version"))))
    account = document.get("accountContext")
    account = {str(k): str(v) for k, v in account.items() if v} if isinstance(account, dict) else {}
    return ModelMap(tuple(models), account)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
