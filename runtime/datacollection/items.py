"""What travels on the data-collection queue from request threads to the drainer: small
frozen records, told apart by their type."""

from __future__ import annotations

import dataclasses
from typing import Any

from .rows import Encoded, Target


@dataclasses.dataclass(frozen=True, slots=True)
class Captured:
    """A scored request for automatic capture, as the request had it; the drainer shapes
    it into rows (``CapturePolicy.shape``), off the request path."""
    timestamp: float
    correlation_id: str
    request_id: str
    raw_input: Any      # the POST body (bytes) or a GET's query arguments (dict)
    raw_output: bytes   # the response body


@dataclasses.dataclass(frozen=True, slots=True)
class Collected:
    """Rows encoded for one target: a driver's ``collect()`` (encoded in the caller, so
    later changes to its data are not seen), or a shaped ``Captured``."""
    target: Target
    timestamp: float
    encoded: Encoded


QueueItem = Captured | Collected
