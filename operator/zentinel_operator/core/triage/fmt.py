"""How triage words what it found: counts, shares, durations, sizes and lists, each clipped."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

from ...models.common import Severity
from ...models.policy import Ladder
from ..durations import format_duration
from ..snapshot import MetricsSignal

LISTED = 3  # pods, targets, routes or log lines named in one evidence line
LOG_CHARS = 200  # a log line is clipped to this many characters


def threshold_text(ladder: Ladder, severity: Severity, shown: Callable[[float], str]) -> str:
    """`` (above the SEV2 threshold of 10%)``: the rung that was crossed, as the policy sets it."""
    value: float | None = getattr(ladder, severity.value.lower())
    return "" if value is None else f" (above the {severity.value} threshold of {shown(value)})"


def aware(when: dt.datetime) -> dt.datetime:
    """Naive timestamps are taken as UTC, so that comparing them never raises."""
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def listing(items: Sequence[str], *, sep: str = "; ") -> str:
    shown = sep.join(items[:LISTED])
    return shown if len(items) <= LISTED else f"{shown}{sep}and {len(items) - LISTED} more"


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LOG_CHARS else text[: LOG_CHARS - 1] + "…"


def count(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{round(value):,}"


def pct(share: float) -> str:
    """12.4%, 80%, 1.01%, 0.05%: three significant digits."""
    if not math.isfinite(share):
        return "?%"
    value = share * 100
    if value == 0:
        return "0%"
    if abs(value) < 0.01:
        return "<0.01%"
    return f"{value:.3g}%" if abs(value) < 1000 else f"{value:,.0f}%"


def seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}".rstrip("0").rstrip(".") + "s"


def over(metrics: MetricsSignal) -> str:
    """`` over 60s`` (the scrape interval the rates cover), or nothing when it is not known."""
    seconds = metrics.interval_seconds
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return ""
    whole = round(seconds)
    return f" over {whole}s" if whole < 120 else f" over {format_duration(dt.timedelta(seconds=whole))}"


def factor(value: float) -> str:
    return f"{value:.3g}x" if value < 1000 else f"{value:,.0f}x"


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def size(value: float) -> str:
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    return f"{value:.0f}B"
