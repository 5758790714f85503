"""Steps 4 and 5 of the tree, "Is error rate elevated?" and its "otherwise": High Error Rate and
Performance Degradation (p99 latency)."""

from __future__ import annotations

import math

from ...models.common import Category, Severity
from ...models.policy import Thresholds
from ..snapshot import Finding, MetricsSignal, Snapshot
from . import fmt
from .findings import Findings, enough_requests, ladder_severity

_PROXY_ERROR_NOTES = {
    "502": "upstream returning invalid responses: check the upstream application's logs",
    "503": "all targets unhealthy or a circuit breaker open: follow the Upstream Failure procedure",
    "504": "upstream not responding in time (timeouts)",
}


def check_errors_and_latency(snapshot: Snapshot, thresholds: Thresholds, out: Findings) -> None:
    """Step 4, "Is error rate elevated?", then step 5, its "otherwise": Performance Degradation."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available:
        return
    judged = enough_requests(metrics, thresholds)
    evidence: list[str] = []
    candidates: list[tuple[Severity, str]] = []

    errors = metrics.errors
    # More errors than requests is bad data (a counter reset between two scrapes), not an outage.
    if judged and errors is not None and math.isfinite(errors) and 0 <= errors <= (metrics.requests or 0):
        assert metrics.requests is not None
        rate = errors / metrics.requests
        proxy = sorted(
            (code.removeprefix("proxy_error_"), count)
            for code, count in metrics.proxy_errors.items()
            if math.isfinite(count) and count > 0
        )
        breakdown = "".join(f"; {fmt.count(count)} proxy_error_{code}" for code, count in proxy)
        over = fmt.over(metrics)
        of = f"{fmt.count(metrics.errors)} of {fmt.count(metrics.requests)} requests"
        evidence.append(f"5xx rate {fmt.pct(rate)}{over} ({of}{breakdown})")
        evidence += [
            f"proxy_error_{code}: {_PROXY_ERROR_NOTES[code]}" for code, _ in proxy if code in _PROXY_ERROR_NOTES
        ]
        severity = ladder_severity(rate, thresholds.error_rate, higher_is_worse=True)
        if severity is not None:
            candidates.append(
                (severity, f"5xx rate {fmt.pct(rate)}{fmt.threshold_text(thresholds.error_rate, severity, fmt.pct)}")
            )

    failing = sorted(
        (
            r
            for r in metrics.routes
            if math.isfinite(r.requests)
            and r.requests > 0
            and r.requests >= thresholds.min_requests
            and r.error_rate > thresholds.failing_route_error_rate
        ),
        key=lambda r: (-r.error_rate, r.route),
    )
    if failing:
        routes = fmt.listing(
            [f"{r.route} {fmt.pct(r.error_rate)} ({fmt.count(r.errors)} of {fmt.count(r.requests)})" for r in failing]
        )
        evidence.append(
            f"{fmt.plural(len(failing), 'route')} failing (5xx above {fmt.pct(thresholds.failing_route_error_rate)}): "
            f"{routes}"
        )
        severity = ladder_severity(len(failing), thresholds.failing_routes, higher_is_worse=True, inclusive=True)
        if severity is not None:
            candidates.append((severity, f"{fmt.plural(len(failing), 'route')} failing"))

    if candidates and not failing:
        # The runbook's first command: "Identify error distribution by route".
        top = [r for r in metrics.routes if math.isfinite(r.errors) and r.errors > 0][:3]
        if top:
            evidence.append(
                "errors by route: "
                + fmt.listing(
                    [
                        f"{r.route} {fmt.pct(r.error_rate)} ({fmt.count(r.errors)} of {fmt.count(r.requests)})"
                        for r in top
                    ]
                )
            )

    latency = _latency(metrics, thresholds)
    if candidates:
        candidates.sort(key=lambda c: c[0].rank)
        severity, summary = candidates[0]
        if latency is not None:
            # Elevated latency is a listed symptom of High Error Rate: one incident, at the worse level.
            evidence.append(latency[1])
            if latency[0].worse_than(severity):
                severity = latency[0]
        out.add(
            Finding(
                Category.HIGH_ERROR_RATE,
                severity,
                f"High error rate: {summary}",
                evidence=tuple(evidence),
                subjects=tuple(r.route for r in failing),
            )
        )
    elif latency is not None:
        out.add(
            Finding(
                Category.PERFORMANCE_DEGRADATION,
                latency[0],
                f"Elevated latency: {latency[2]}",
                evidence=(latency[1],),
            )
        )


def _latency(metrics: MetricsSignal, thresholds: Thresholds) -> tuple[Severity, str, str] | None:
    """(severity, evidence, summary) for p99 latency. A p99 over a handful of requests is noise, so
    latency is not judged when the interval is known to hold fewer than ``min_requests`` requests."""
    p99 = metrics.latency_p99_seconds
    if p99 is None or not math.isfinite(p99):
        return None
    if metrics.requests is not None and not enough_requests(metrics, thresholds):
        return None
    severity = ladder_severity(p99, thresholds.latency_p99_seconds, higher_is_worse=True)
    if severity is None:
        return None
    over = fmt.over(metrics)
    basis = f" ({fmt.count(metrics.requests)} requests)" if metrics.requests is not None else ""
    threshold = fmt.threshold_text(thresholds.latency_p99_seconds, severity, fmt.seconds)
    return (
        severity,
        f"p99 latency {fmt.seconds(p99)}{over}{basis}",
        f"p99 {fmt.seconds(p99)}{threshold}",
    )
