"""The Zentinel's own status from a snapshot, its findings and its open incidents (pure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from ..models.common import Category, Condition, ConditionStatus, Severity
from ..models.incident import ZentinelIncident
from ..models.zentinel import SignalSummary, ZentinelStatus
from .conditions import READY, get_condition, set_condition
from .lifecycle import EventNote
from .snapshot import Finding, Snapshot

DEGRADED_CONDITION = "PassDegraded"
MAX_FAILURE_MESSAGE = 2000
WATCHED_MESSAGE = "Every stage of the last pass succeeded; the proxy's health is in the Healthy condition"


@dataclasses.dataclass(frozen=True, order=True)
class StageFailure:
    """One stage of a pass that failed: ``Gather``, ``Incidents``, ``Revisions``, ``Remediation``, ``Evidence``,
    ``Notifications`` or ``Status``; ``what`` names the object and the API's reason, never a secret value."""

    stage: str
    what: str


def pass_condition(
    conditions: Sequence[Condition],
    failures: Sequence[StageFailure],
    *,
    now: dt.datetime,
    generation: int | None,
) -> tuple[list[Condition], EventNote | None]:
    """``PassDegraded``: True while any stage of the pass fails, naming the stages and what failed.

    Returns the new conditions and the Event to post: a Warning when the condition turns True or what
    fails changes, a Normal one when it clears; None while nothing changes (no Event every interval).
    """
    old = get_condition(conditions, DEGRADED_CONDITION)
    if not failures:
        new = set_condition(
            conditions,
            DEGRADED_CONDITION,
            False,
            "AllStagesSucceeded",
            "Every stage of the last pass succeeded",
            now=now,
            generation=generation,
        )
        if old is not None and old.status == ConditionStatus.TRUE:
            return new, EventNote("PassRecovered", f"Every stage succeeded again (was: {old.message})")
        return new, None
    unique = sorted(set(failures))
    stages = list(dict.fromkeys(f.stage for f in unique))
    reason = ",".join(f"{stage}Failed" for stage in stages)
    message = "; ".join(f"{f.stage.lower()}: {f.what}" for f in unique)
    if len(message) > MAX_FAILURE_MESSAGE:
        message = message[: MAX_FAILURE_MESSAGE - 1] + "…"
    new = set_condition(conditions, DEGRADED_CONDITION, True, reason, message, now=now, generation=generation)
    if old is not None and old.status == ConditionStatus.TRUE and old.message == message:
        return new, None
    return new, EventNote(DEGRADED_CONDITION, message, "Warning")


def observable_categories(snapshot: Snapshot) -> set[Category]:
    """Categories whose signal was really observed this pass; for the others, unknown is not healthy."""
    cats = {Category.METRICS_UNAVAILABLE}
    if snapshot.workload.exists:
        cats |= {Category.PROCESS_CRASH, Category.HEALTH_CHECK_FAILURE, Category.MEMORY_EXHAUSTION}
    m = snapshot.metrics
    if m is not None and m.available and m.interval_seconds is not None:
        cats |= {Category.HIGH_ERROR_RATE, Category.PERFORMANCE_DEGRADATION, Category.TRAFFIC_SPIKE}
    if snapshot.upstreams is not None and snapshot.upstreams.available:
        cats.add(Category.UPSTREAM_FAILURE)
    if snapshot.certificates:
        cats |= {Category.CERTIFICATE_EXPIRING, Category.CERTIFICATE_INVALID}
    if snapshot.config is not None:
        cats.add(Category.CONFIG_ERROR)
    return cats


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.2f}%"


def latency_step(seconds: float) -> str:
    """A latency for the status at a glance: the step of the 1-2-5 ladder at or above it (``≤1ms``, ``≤2ms``,
    ``≤5ms``, ``≤10ms`` ... ``≤1s``, ``≤2s``). A p99 moving by a millisecond from one scrape to the next is no
    change worth a status write; crossing a step is. Triage judges the exact value."""
    ms, step, factors = seconds * 1000, 1.0, (2.0, 2.5, 2.0)
    index = 0
    while step < ms * (1 - 1e-9) and step < 1e9:
        step *= factors[index % 3]
        index += 1
    return f"≤{step:.0f}ms" if step < 1000 else f"≤{step / 1000:g}s"


def summary(snapshot: Snapshot, now: dt.datetime) -> SignalSummary:
    ready = sum(1 for p in snapshot.pods if p.ready and not p.deleting)
    m = snapshot.metrics
    u = snapshot.upstreams
    certs = [c for c in snapshot.certificates if c.days_left is not None]
    soonest = min(certs, key=lambda c: c.days_left or 0.0) if certs else None
    cfg = snapshot.config
    return SignalSummary(
        pods=f"{ready}/{snapshot.workload.desired}" if snapshot.workload.exists else "no workload",
        error_rate=(
            _pct(m.error_rate)
            if m and m.available and m.interval_seconds
            else ("unavailable" if m and not m.available else None)
        ),
        latency_p99=(latency_step(m.latency_p99_seconds) if m and m.latency_p99_seconds is not None else None),
        upstreams=(
            f"{sum(1 for t in u.targets if t.status == 'healthy')}/{len(u.targets)} healthy"
            if u and u.available
            else ("unavailable" if u else None)
        ),
        certificates=(f"{soonest.name}: {soonest.days_left:.0f}d left" if soonest else None),
        config=(
            f"{cfg.revision} {'valid' if cfg.valid else 'INVALID'}"
            if cfg and cfg.present and cfg.revision
            else ("missing" if cfg and not cfg.present else None)
        ),
        observed_at=now,
    )


def health(open_incidents: Sequence[ZentinelIncident]) -> str:
    severities = [i.status.severity for i in open_incidents if i.status.severity]
    if not severities:
        return "Healthy"
    if Severity.SEV1 in severities:
        return "Down"
    return "Degraded"


def build_status(
    old: ZentinelStatus,
    snapshot: Snapshot,
    findings: Sequence[Finding],
    open_incidents: Sequence[ZentinelIncident],
    *,
    now: dt.datetime,
    generation: int | None,
) -> ZentinelStatus:
    st = old.model_copy(deep=True)
    st.observed_generation = generation
    st.summary = summary(snapshot, now)
    st.health = health(open_incidents)
    st.open_incidents = len(open_incidents)
    st.incidents = sorted(i.metadata.name for i in open_incidents)
    by_cat = {f.category: f for f in findings}

    def cond(type_: str, bad: list[Category], ok_reason: str, ok_message: str, known: bool) -> None:
        hits = [by_cat[c] for c in bad if c in by_cat]
        if hits:
            worst = min(hits, key=lambda f: f.severity.rank)
            st.conditions = set_condition(
                st.conditions, type_, False, worst.category.value, worst.summary, now=now, generation=generation
            )
        elif known:
            st.conditions = set_condition(
                st.conditions, type_, True, ok_reason, ok_message, now=now, generation=generation
            )
        else:
            st.conditions = set_condition(
                st.conditions,
                type_,
                ConditionStatus.UNKNOWN,
                "NotObserved",
                "No data for this signal yet",
                now=now,
                generation=generation,
            )

    observable = observable_categories(snapshot)
    worst_open = min(
        (i.status.severity for i in open_incidents if i.status.severity), key=lambda s: s.rank, default=None
    )
    if worst_open is None and not findings:
        st.conditions = set_condition(
            st.conditions, "Healthy", True, "NoOpenIncidents", "No open incidents", now=now, generation=generation
        )
    else:
        worst_f = min(findings, key=lambda f: f.severity.rank) if findings else None
        reason = worst_f.category.value if worst_f else "OpenIncidents"
        message = worst_f.summary if worst_f else f"{len(open_incidents)} open incident(s), signals recovering"
        st.conditions = set_condition(st.conditions, "Healthy", False, reason, message, now=now, generation=generation)
    cond(
        "ConfigValid",
        [Category.CONFIG_ERROR],
        "ConfigValid",
        f"Config {snapshot.config.revision} parses and passes structural checks" if snapshot.config else "",
        Category.CONFIG_ERROR in observable,
    )
    cond(
        "CertificatesValid",
        [Category.CERTIFICATE_INVALID, Category.CERTIFICATE_EXPIRING],
        "CertificatesValid",
        f"{len(snapshot.certificates)} certificate(s) valid",
        Category.CERTIFICATE_INVALID in observable,
    )
    cond(
        "UpstreamsHealthy",
        [Category.UPSTREAM_FAILURE],
        "AllTargetsHealthy",
        "Every upstream target healthy",
        Category.UPSTREAM_FAILURE in observable,
    )
    return st


def ready_condition(conditions: Sequence[Condition], *, now: dt.datetime, generation: int | None) -> list[Condition]:
    """The Zentinel's ``Ready`` (kstatus, ``kubectl wait``, Argo CD and Flux), from the conditions of the pass.

    Ready means the operator watches this generation of the Zentinel and can do its job: a pass completed
    (``Healthy`` was computed for this generation) and no stage of the last pass failed (``PassDegraded``
    is False). It does not follow the proxy's health: an incident is reported by ``Healthy``,
    ``status.health`` and the incidents, and a GitOps tool must not see the Zentinel as broken, and hold
    back a sync, while the fix for that incident is being rolled out.

    False with ``PassDegraded``'s reason and message (for example ``GatherFailed``: the workload cannot be
    read); Unknown until a pass completed for this generation; True otherwise.
    """
    degraded = get_condition(conditions, DEGRADED_CONDITION)
    healthy = get_condition(conditions, "Healthy")
    if degraded is not None and degraded.status == ConditionStatus.TRUE:
        status, reason, message = ConditionStatus.FALSE, degraded.reason, degraded.message
    elif healthy is None or (generation is not None and healthy.observed_generation != generation):
        status, reason, message = (
            ConditionStatus.UNKNOWN,
            "NotObserved",
            "No pass has completed for this generation yet",
        )
    else:
        status, reason, message = ConditionStatus.TRUE, "Watched", WATCHED_MESSAGE
    return set_condition(conditions, READY, status, reason, message, now=now, generation=generation)
