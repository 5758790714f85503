"""Step 2 of the tree, "Is the health endpoint responding?": Health Check Failure."""

from __future__ import annotations

from ...models.common import Category, Severity
from ..snapshot import Finding, Snapshot
from . import fmt
from .findings import Findings
from .pods import Pods, share_severity


def check_health(snapshot: Snapshot, pods: Pods, out: Findings) -> bool:
    """Step 2, "Is the health endpoint responding?". Zentinel's ``/health`` only proves the process
    is up (which step 1 already knows), so the signals are the pods' readiness and whether the admin
    endpoint answers at all. Returns whether the admin endpoint is unreachable on every running pod."""
    if not pods.ready:
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                Severity.SEV1,
                f"No Zentinel pod Ready: 0 of {pods.total} pods serve traffic",
                evidence=(
                    f"{len(pods.up)} of {pods.total} pods running but not Ready (readiness failing: "
                    f"{fmt.listing([p.name for p in pods.up])}); the Service has no endpoints",
                ),
                subjects=tuple(p.name for p in pods.up),
            )
        )
    elif pods.not_ready:
        n = len(pods.not_ready)
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                share_severity(n, pods.total),
                f"{n} of {pods.total} Zentinel pods running but not Ready",
                evidence=(
                    f"{n} of {pods.total} pods running but not Ready (readiness failing: "
                    f"{fmt.listing([p.name for p in pods.not_ready])})",
                ),
                subjects=tuple(p.name for p in pods.not_ready),
            )
        )

    metrics, upstreams = snapshot.metrics, snapshot.upstreams
    admin_down = (
        metrics is not None
        and not metrics.available
        and metrics.pods_scraped == 0
        and metrics.pods_failed > 0
        and metrics.pods_failed >= len(pods.up)
        and (upstreams is None or not upstreams.available)
    )
    if admin_down:
        assert metrics is not None
        # SEV2, not SEV1: the kubelet still finds these pods Ready, and a NetworkPolicy or a wrong
        # admin port explains an unreachable admin endpoint as well as a hung proxy does. Pods that
        # are not Ready are already judged above on their own.
        lines = [
            f"admin endpoint unreachable on every running pod ({metrics.pods_failed} of "
            f"{metrics.pods_failed + metrics.pods_scraped} metrics scrapes failed"
            + (f": {fmt.clip(metrics.error)})" if metrics.error else ")")
        ]
        if upstreams is not None and upstreams.error:
            lines.append(f"/admin/upstreams unreachable: {fmt.clip(upstreams.error)}")
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                Severity.SEV2,
                "Zentinel admin endpoint unreachable on every running pod",
                evidence=tuple(lines),
                subjects=tuple(p.name for p in pods.up),
            )
        )
    return admin_down
