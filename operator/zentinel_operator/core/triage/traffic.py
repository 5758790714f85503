"""Traffic Spike: the request rate over its slow-moving baseline."""

from __future__ import annotations

import math

from ...models.common import Category
from ...models.policy import Thresholds
from ..snapshot import Finding, Snapshot
from . import fmt
from .findings import Findings, enough_requests, ladder_severity


def check_traffic(snapshot: Snapshot, thresholds: Thresholds, out: Findings) -> None:
    """Request rate over its slow-moving baseline. Not judged on an interval with fewer than
    ``min_requests`` requests (a tiny baseline makes any trickle look like a spike)."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available:
        return
    rps, baseline = metrics.requests_per_second, metrics.baseline_requests_per_second
    if rps is None or baseline is None or not math.isfinite(rps) or not math.isfinite(baseline) or baseline <= 0:
        return
    if metrics.requests is not None and not enough_requests(metrics, thresholds):
        return
    factor = rps / baseline
    severity = ladder_severity(factor, thresholds.traffic_spike_factor, higher_is_worse=True)
    if severity is None:
        return
    threshold = fmt.threshold_text(thresholds.traffic_spike_factor, severity, fmt.factor)
    out.add(
        Finding(
            Category.TRAFFIC_SPIKE,
            severity,
            f"Traffic spike: {fmt.factor(factor)} the usual request rate{threshold}",
            evidence=(
                f"{fmt.rate(rps)} req/s against a baseline of {fmt.rate(baseline)} req/s ({fmt.factor(factor)})",
            ),
        )
    )
