"""Step 3 of the tree, "Are all upstreams healthy?": Upstream Failure, and the circuit breakers
that explain 503s."""

from __future__ import annotations

import dataclasses
import math

from ...models.common import Category, Severity
from ...models.policy import Thresholds
from ..snapshot import Finding, Snapshot, TargetSignal, TargetStatus
from . import fmt
from .findings import Findings, ladder_severity, unique


def _target_text(target: TargetSignal) -> str:
    text = target.address
    if target.failure_rate is not None and math.isfinite(target.failure_rate):
        text += f" failure rate {fmt.pct(target.failure_rate)}"
    if target.last_error:
        text += f": {fmt.clip(target.last_error)}"
    return text


@dataclasses.dataclass(frozen=True)
class _Upstream:
    upstream: str
    total: int
    bad: tuple[TargetSignal, ...]
    severity: Severity | None

    @property
    def headline(self) -> str:
        return f"{self.upstream}: {len(self.bad)} of {self.total} targets unhealthy"

    @property
    def line(self) -> str:
        return f"upstream {self.headline} ({fmt.listing([_target_text(t) for t in self.bad])})"


def check_upstreams(snapshot: Snapshot, thresholds: Thresholds, out: Findings) -> None:
    """Step 3, "Are all upstreams healthy?", from ``/admin/upstreams``. ``unknown`` targets (no
    health check yet) count as neither healthy nor unhealthy, but stay in the denominator."""
    upstreams = snapshot.upstreams
    if upstreams is None or not upstreams.available:
        return
    ids = upstreams.upstream_ids()
    sick: list[_Upstream] = []
    for upstream in ids:
        targets = upstreams.targets_of(upstream)
        bad = tuple(sorted((t for t in targets if t.status == TargetStatus.UNHEALTHY), key=lambda t: t.address))
        if bad:
            share = len(bad) / len(targets)
            severity = ladder_severity(share, thresholds.unhealthy_upstream_share, higher_is_worse=True, inclusive=True)
            sick.append(_Upstream(upstream, len(targets), bad, severity))
    everything_down = bool(ids) and len(ids) == sum(1 for u in sick if len(u.bad) == u.total)
    judged = sorted(
        (u for u in sick if u.severity is not None or everything_down),
        key=lambda u: (u.severity.rank if u.severity else 9, -len(u.bad) / u.total, u.upstream),
    )
    if not judged:
        return
    worst = judged[0]
    if everything_down:
        severity = Severity.SEV1
        summary = f"All upstreams unreachable: every target of {fmt.plural(len(ids), 'upstream')} unhealthy"
    else:
        assert worst.severity is not None
        severity = worst.severity
        summary = f"Upstream {worst.headline}"
        if len(judged) > 1:
            summary = f"{len(judged)} upstreams with unhealthy targets, worst {worst.headline}"
    out.add(
        Finding(
            Category.UPSTREAM_FAILURE,
            severity,
            summary,
            evidence=tuple(u.line for u in judged),
            subjects=tuple(f"{t.upstream}/{t.address}" for u in judged for t in u.bad),
        )
    )


def check_circuit_breakers(snapshot: Snapshot, out: Findings) -> None:
    """Open circuit breakers explain 503s: evidence for Upstream Failure, or for High Error Rate."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available or not metrics.circuit_breakers_open:
        return
    if metrics.circuit_breakers_open <= 0:
        return
    line = (
        f"{fmt.plural(metrics.circuit_breakers_open, 'circuit breaker')} open "
        "(Zentinel answers 503 on the routes behind them)"
    )
    for category in (Category.UPSTREAM_FAILURE, Category.HIGH_ERROR_RATE):
        finding = out.get(category)
        if finding is not None:
            out.replace(dataclasses.replace(finding, evidence=unique((*finding.evidence, line))))
            return
