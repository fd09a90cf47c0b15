"""CPU and memory in Kubernetes notation, parsed exactly (Decimal, no float rounding):
cpu ``0.5``, ``500m``, ``2``; memory ``1G`` (10^9), ``512Mi`` (2^20), ``1e9``, ``2048``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?(?:[eE]\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?$")
_FACTORS = {
    None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
MIN_MEMORY = 6 * 2**20  # Docker refuses less than 6 MiB


def parse_cpu(text: str) -> Decimal:
    """Cores; at least one millicore."""
    match = _CPU.match(text.strip())
    if not match:
        raise ValueError(f"cpu {text!r} is not a Kubernetes CPU quantity (like 0.5, 500m or 2)")
    cores = Decimal(match.group(1)) / (1000 if match.group(2) else 1)
    if cores < Decimal("0.001"):
        raise ValueError(f"cpu {text!r} is below one millicore")
    return cores


def parse_memory(text: str) -> int:
    """Bytes, a whole number of them."""
    match = _MEMORY.match(text.strip())
    if not match:
        raise ValueError(f"memory {text!r} is not a Kubernetes memory quantity (like 512Mi, 1G or 2048)")
    try:
        value = Decimal(match.group(1)) * _FACTORS[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"memory {text!r} is not a number") from None
    if value != value.to_integral_value():
        raise ValueError(f"memory {text!r} is not a whole number of bytes")
    if value < MIN_MEMORY:
        raise ValueError(f"memory {text!r} is less than the 6Mi a container needs")
    return int(value)
