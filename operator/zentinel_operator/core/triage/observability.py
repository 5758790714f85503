"""Metrics Unavailable: what triage could not read, as a SEV4 finding rather than a crash."""

from __future__ import annotations

from ...models.common import Category, Severity
from ..snapshot import Finding, Snapshot
from . import fmt
from .findings import Findings


def check_observability(snapshot: Snapshot, admin_down: bool, out: Findings) -> None:
    """Bad data becomes a SEV4 finding, never a crash: metrics or ``/admin/upstreams`` that could not
    be read while the proxy runs. When neither answers on any pod, step 2 has already said so."""
    if admin_down:
        return
    lines: list[str] = []
    unseen: list[str] = []
    metrics, upstreams = snapshot.metrics, snapshot.upstreams
    if metrics is not None and not metrics.available:
        unseen.append("error rates, latency or memory")
        scraped = metrics.pods_failed + metrics.pods_scraped
        failed = f" ({metrics.pods_failed} of {scraped} pods failed)" if metrics.pods_failed else ""
        reason = f": {fmt.clip(metrics.error)}" if metrics.error else ""
        lines.append(f"metrics unavailable{reason}{failed}")
    if upstreams is not None and not upstreams.available:
        unseen.append("upstream health")
        reason = f": {fmt.clip(upstreams.error)}" if upstreams.error else ""
        lines.append(f"/admin/upstreams unavailable{reason}")
    if lines:
        out.add(
            Finding(
                Category.METRICS_UNAVAILABLE,
                Severity.SEV4,
                "Metrics unavailable: triage cannot see " + " or ".join(unseen),
                evidence=tuple(lines),
            )
        )
