"""Memory Exhaustion from usage near the limit (an OOMKill is judged with the crash, step 1)."""

from __future__ import annotations

import math

from ...models.common import Category
from ...models.policy import Thresholds
from ..snapshot import Finding, Snapshot
from . import fmt
from .findings import Findings, ladder_severity


def check_memory_usage(snapshot: Snapshot, thresholds: Thresholds, out: Findings) -> None:
    metrics = snapshot.metrics
    limit = snapshot.workload.memory_limit_bytes
    if metrics is None or not metrics.available or metrics.memory_bytes is None or not limit or limit <= 0:
        return
    if not math.isfinite(metrics.memory_bytes):
        return
    share = metrics.memory_bytes / limit
    severity = ladder_severity(share, thresholds.memory_share_of_limit, higher_is_worse=True)
    if severity is None:
        return
    lines = [
        f"memory {fmt.size(metrics.memory_bytes)} of {fmt.size(limit)} limit ({fmt.pct(share)}) on the largest pod"
    ]
    if metrics.open_connections is not None and math.isfinite(metrics.open_connections):
        lines.append(f"{fmt.count(metrics.open_connections)} open connections")
    threshold = fmt.threshold_text(thresholds.memory_share_of_limit, severity, fmt.pct)
    out.add(
        Finding(
            Category.MEMORY_EXHAUSTION,
            severity,
            f"Memory at {fmt.pct(share)} of the {fmt.size(limit)} limit{threshold}",
            evidence=tuple(lines),
        )
    )
