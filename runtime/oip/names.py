"""The names an image's model answers to on the ``/v2/models/{name}`` routes.

The model of the Open Inference Protocol is the image's driver: one ``run()``, whatever
models it loads. It answers to

- the name of each model in ``model_config_map.json`` (the models of the manifest the
  image was built from: ``iris`` for examples/iris), with that model's version as its
  only version: ``/v2/models/iris/versions/1/infer``;
- in a service, the service's name (``MOMA_SERVICE_NAME``, set by the engines), as
  KServe names a model after its InferenceService: ``/v2/models/my-service/infer``;
  its version is the model's when the image has one model, else it has none;
- with neither (an app root run by hand), ``model``.

A name or version it does not answer to is a 404. Where a model name and the service's
name are the same, the model's version applies.
"""

from __future__ import annotations

import dataclasses

from ..errors import NotFound
from ..model_map import ModelMap

FALLBACK_NAME = "model"


@dataclasses.dataclass(frozen=True)
class ServedModel:
    name: str
    version: str | None

    @property
    def versions(self) -> list[str]:
        return [self.version] if self.version is not None else []


class ModelNames:
    def __init__(self, model_map: ModelMap, service_name: str | None) -> None:
        models = model_map.models
        served: dict[str, ServedModel] = {}
        if service_name:
            only = models[0].version if len(models) == 1 else None
            served[service_name] = ServedModel(service_name, only)
        for model in models:
            served[model.name] = ServedModel(model.name, model.version)
        if not served:
            served[FALLBACK_NAME] = ServedModel(FALLBACK_NAME, None)
        self.served = served

    @property
    def names(self) -> list[str]:
        return sorted(self.served)

    def find(self, name: str, version: str | None) -> ServedModel:
        """The model called ``name`` (at ``version``, when one is given); NotFound else."""
        model = self.served.get(name)
        if model is None:
            raise NotFound(f"unknown model {name!r}; this service's model answers to "
                           f"{', '.join(repr(n) for n in self.names)}")
        if version is not None and version != model.version:
            having = f"only version {model.version!r}" if model.version is not None \
                else "no versions"
            raise NotFound(f"model {name!r} has no version {version!r} ({having})")
        return model
