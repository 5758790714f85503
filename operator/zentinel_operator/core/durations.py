"""Durations as people write them in manifests: ``30s``, ``5m``, ``1h30m``, ``2d``, ``250ms``."""

from __future__ import annotations

import datetime as dt
import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``text``; raise :class:`DurationError` naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise DurationError("a duration must be a non-empty string such as 30s, 5m or 1h30m")
    pos = 0
    seconds = 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise DurationError(f"{text!r} is not a duration (use numbers with ms, s, m, h or d, e.g. 1h30m)")
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise DurationError(f"{text!r} is too long to be a duration") from None


def format_duration(delta: dt.timedelta) -> str:
    """Short human form: ``4m12s``, ``2h5m``, ``3d4h``."""
    total = int(delta.total_seconds())
    if total < 0:
        return "-" + format_duration(-delta)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
