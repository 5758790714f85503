"""What every procedure shares: the ladders, the tree's order, and the collection of findings."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from ...models.common import Category, Severity
from ...models.policy import Ladder, Thresholds
from ..snapshot import Finding, MetricsSignal

Health = Literal["Healthy", "Degraded", "Down", "Unknown"]


# Ties between equally severe findings are broken in the tree's order: the first finding names the
# procedure the runbook sends the on-call engineer to.
_ORDER = {
    category: index
    for index, category in enumerate(
        (
            Category.PROCESS_CRASH,
            Category.HEALTH_CHECK_FAILURE,
            Category.UPSTREAM_FAILURE,
            Category.HIGH_ERROR_RATE,
            Category.PERFORMANCE_DEGRADATION,
            Category.MEMORY_EXHAUSTION,
            Category.CONFIG_ERROR,
            Category.CERTIFICATE_INVALID,
            Category.CERTIFICATE_EXPIRING,
            Category.TRAFFIC_SPIKE,
            Category.METRICS_UNAVAILABLE,
            Category.EXTERNAL_ALERT,
        )
    )
}


def ladder_severity(value: float, ladder: Ladder, *, higher_is_worse: bool, inclusive: bool = False) -> Severity | None:
    """The worst rung of ``ladder`` that ``value`` crosses, or ``None`` when it crosses none.

    Higher-is-worse ladders (error rate, latency, ...) are crossed strictly above a rung, as the
    runbook's "> 10 % error rate" reads. Lower-is-worse ladders (certificate days left) are crossed at
    or below a rung: ``0`` days left is already expired.

    ``inclusive=True`` makes a higher-is-worse rung crossed at the rung itself. Triage uses it for the
    two ladders whose rungs name an amount *reached* rather than a limit to exceed: the number of
    failing routes (``sev2: 2`` is "multiple routes failing") and the share of an upstream's targets
    that are unhealthy (``sev2: 0.5`` is half of them, ``sev1: 1.0`` all of them).

    A value that is not a number (NaN) crosses nothing.
    """
    if math.isnan(value):
        return None
    for severity, threshold in ladder.rungs():
        if not higher_is_worse:
            crossed = value <= threshold
        elif inclusive:
            crossed = value >= threshold
        else:
            crossed = value > threshold
        if crossed:
            return severity
    return None


def overall_health(findings: Iterable[Finding]) -> Health:
    """The Zentinel's health column: ``Down`` on any SEV1, ``Degraded`` on any other finding,
    ``Unknown`` when the only findings say the operator could not see (metrics unavailable), and
    ``Healthy`` when there is nothing to report."""
    found = list(findings)
    if not found:
        return "Healthy"
    if any(f.severity == Severity.SEV1 for f in found):
        return "Down"
    if all(f.category == Category.METRICS_UNAVAILABLE for f in found):
        return "Unknown"
    return "Degraded"


class Findings:
    """At most one finding per category; a second one for a category is merged into the first."""

    def __init__(self) -> None:
        self._by_category: dict[Category, Finding] = {}

    def get(self, category: Category) -> Finding | None:
        return self._by_category.get(category)

    def add(self, finding: Finding) -> None:
        old = self._by_category.get(finding.category)
        if old is None:
            self._by_category[finding.category] = finding
            return
        worse = finding if finding.severity.worse_than(old.severity) else old
        self._by_category[finding.category] = Finding(
            category=finding.category,
            severity=worse.severity,
            summary=worse.summary,
            evidence=unique((*old.evidence, *finding.evidence)),
            subjects=unique((*old.subjects, *finding.subjects)),
            config_caused=old.config_caused or finding.config_caused,
        )

    def replace(self, finding: Finding) -> None:
        self._by_category[finding.category] = finding

    def result(self) -> list[Finding]:
        return sorted(self._by_category.values(), key=lambda f: (f.severity.rank, _ORDER.get(f.category, 99)))


def unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def enough_requests(metrics: MetricsSignal, thresholds: Thresholds) -> bool:
    requests = metrics.requests
    return requests is not None and math.isfinite(requests) and requests > 0 and requests >= thresholds.min_requests
