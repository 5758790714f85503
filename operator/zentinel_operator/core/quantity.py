"""Kubernetes resource quantities.

Parsing is the official client's ``kubernetes.utils.quantity.parse_quantity`` (every suffix the API
server accepts: ``n u m k M G T P E``, ``Ki``..``Ei``, exponents), not a table of our own. That
module is pure ``Decimal`` arithmetic; the import-layer contract in ``pyproject.toml`` lets exactly
this module import it and keeps the rest of ``kubernetes`` out of the core.
"""

from __future__ import annotations

import math


def parse_quantity(text: str | None) -> int | None:
    """A memory quantity in bytes (``512Mi`` -> 536870912, ``2Pi``, ``1E``); None when absent or unreadable.

    Fractions of a byte round up, as the API server's ``Quantity.Value()`` does (``500m`` -> 1).
    """
    if not text:
        return None
    # Imported here so that importing the core does not load the whole client package.
    from kubernetes.utils.quantity import parse_quantity as k8s_parse_quantity

    try:
        value = k8s_parse_quantity(text)  # type: ignore[no-untyped-call]  # the client ships no annotations
    except ValueError:
        return None
    if not value.is_finite():
        return None
    result: int = math.ceil(value)
    return result


def format_memory(value: int) -> str:
    """Bytes as a quantity, in whole Mi where exact enough (``805306368`` -> ``768Mi``)."""
    mib = value / 2**20
    return f"{round(mib)}Mi" if mib >= 1 else str(value)
