"""What is collected: automatic capture's two targets and the shape of the request body,
the sample rate, and the targets of drivers' own collectors.

Decisions are taken on the request thread (``wants``, ``sampled``: cheap, never raising);
shaping a captured request into rows (``shape``) runs on the drainer's thread.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import zlib
from typing import Any

from .context import UNKNOWN, ModelContext, ModelRef
from .items import Captured, Collected
from .rows import Encoder, InputShape, Names, Rows, Target, UnsupportedData, shape_prediction, shape_request

log = logging.getLogger("moma.runtime")

FULL_SAMPLE = 2 ** 32


class CapturePolicy:
    def __init__(self, encoder: Encoder, context: ModelContext | None = None,
                 sample_rate: float = 1.0, input_shape: InputShape | None = None) -> None:
        self.encoder = encoder
        self.context = context or ModelContext()
        self.sample_rate = sample_rate
        self._sample_below = int(sample_rate * FULL_SAMPLE)
        self.input_shape = input_shape
        self.inputs_target: Target | None = None      # None: request bodies not captured
        self.prediction_target: Target | None = None  # None: answers not captured

    # -- targets -----------------------------------------------------------------------------
    def target(self, model: ModelRef, identifier: str, service: str | None = None) -> Target:
        context = self.context
        if service and context.service == UNKNOWN:
            context = dataclasses.replace(context, service=service)
        return Target(context.prefix(model, identifier), identifier, model.id, model.name,
                      model.version, context.image_id)

    def target_for(self, model_name: str, identifier: str, model_id: str | None = None,
                   model_version: str | None = None, service: str | None = None) -> Target:
        """A driver collector's target: the model by name from model_config_map.json."""
        return self.target(self.context.model(model_name, model_id, model_version), identifier,
                           service)

    def capture_automatically(self, model: ModelRef) -> None:
        """Capture every scored request's body (``inputs``) and answer (``prediction``)."""
        self.inputs_target = self.target(model, "inputs")
        self.prediction_target = self.target(model, "prediction")

    def driver_collects(self, identifier: str) -> None:
        """The driver collects ``identifier`` itself: automatic capture of it stops (the
        two would write differently shaped rows into one file)."""
        if self.inputs_target is not None and self.inputs_target.identifier == identifier:
            self.inputs_target = None
        elif self.prediction_target is not None \
                and self.prediction_target.identifier == identifier:
            self.prediction_target = None
        else:
            return
        log.info("data collection: the driver collects %r itself; automatic capture of it "
                 "is off", identifier)

    @property
    def capturing(self) -> bool:
        return self.inputs_target is not None or self.prediction_target is not None

    # -- on the request thread ---------------------------------------------------------------
    def sampled(self, request_id: str | None) -> bool:
        """Keep this request? The same answer for every collector of one request."""
        if self._sample_below >= FULL_SAMPLE:
            return True
        if not request_id:
            return random.random() < self.sample_rate
        return zlib.crc32(request_id.encode("utf-8", "replace")) < self._sample_below

    def wants(self, request_id: str) -> bool:
        """Capture this scored request automatically?"""
        return self.capturing and self.sampled(request_id)

    # -- on the drainer's thread -------------------------------------------------------------
    def shape(self, captured: Captured) -> tuple[list[Collected], int]:
        """A captured request's rows per target, and how many targets could not be
        shaped (a body or answer that is not rows)."""
        collected: list[Collected] = []
        failed = 0
        for target, to_rows, raw in (
                (self.inputs_target, self._request_rows, captured.raw_input),
                (self.prediction_target, shape_prediction, captured.raw_output)):
            if target is None:
                continue
            try:
                names, rows = to_rows(raw)
                encoded = self.encoder.encode(target, names, rows, captured.timestamp,
                                              captured.correlation_id, captured.request_id)
            except (ValueError, TypeError, UnsupportedData, RecursionError) as exc:
                failed += 1
                log.debug("data collection: cannot shape %s: %s", target.identifier, exc)
                continue
            collected.append(Collected(target, captured.timestamp, encoded))
        return collected, failed

    def _request_rows(self, raw: Any) -> tuple[Names, Rows]:
        return shape_request(raw, self.input_shape)
