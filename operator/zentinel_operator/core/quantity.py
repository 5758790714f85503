"""Kubernetes resource quantities."""

from __future__ import annotations

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_quantity(text: str | None) -> int | None:
    """Kubernetes memory quantity to bytes (``512Mi`` -> 536870912); None when absent or unreadable."""
    if not text:
        return None
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)]) * _UNITS[suffix])
            except ValueError:
                return None
    try:
        return int(float(text))
    except ValueError:
        return None


def format_memory(value: int) -> str:
    """Bytes as a quantity, in whole Mi where exact enough (``805306368`` -> ``768Mi``)."""
    mib = value / 2**20
    return f"{round(mib)}Mi" if mib >= 1 else str(value)
