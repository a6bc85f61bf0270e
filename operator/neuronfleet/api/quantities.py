"""Kubernetes resource quantities (``500m``, ``16Gi``, ``2``) as exact numbers.

The API server canonicalises quantities (``"32Gi"`` comes back as ``34359738368`` in some clients'
eyes, ``"4"`` as ``4``), so the operator compares a rendered child with the live one by value, and
the emulator's scheduler compares requests with allocatable capacity. Both need the API's quantity
grammar (k8s.io/apimachinery pkg/api/resource/quantity.go): a decimal number with an optional
binary (Ki..Ei) or decimal (m, k, M, G, T, P, E) suffix, or an exponent (``1e3``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["format_bytes", "parse"]

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_GRAMMAR = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def parse(value: Any) -> Decimal | None:
    """The quantity as a Decimal (cpu in cores, memory in bytes); None when it is not a quantity."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _GRAMMAR.match(str(value).strip())
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    except InvalidOperation:
        return None


def format_bytes(num_bytes: int) -> str:
    """Bytes as the kubelet reports memory: whole Ki."""
    return f"{num_bytes // 1024}Ki"
