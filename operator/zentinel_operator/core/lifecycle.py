"""The incident lifecycle as pure functions: detection, deduplication, severity, acknowledgement,
escalation per the runbook's matrix, resolution and flapping.

Every function takes the incident's current status and what is observed now, and returns the new
status plus the side effects to perform (notifications, events, metric observations). The caller
writes the status only when it changed. Nothing here reads a clock: ``now`` is passed in, so a
restarted operator computes the same result from the same state (level, not edge).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..models.common import Category, ConditionStatus, Severity
from ..models.incident import (
    DeliveryState,
    EscalationRecord,
    FindingRecord,
    IncidentState,
    TimelineEntry,
    ZentinelIncidentStatus,
)
from ..models.policy import ZentinelIncidentPolicySpec
from ..names import ANN_ACKNOWLEDGED_BY, ANN_RESOLUTION_NOTE, ANN_RESOLVED_BY
from .conditions import get_condition, set_condition
from .durations import format_duration, parse_duration
from .notify_payloads import paged_receivers
from .remediation import IN_FLIGHT
from .snapshot import Finding

ACKNOWLEDGED = "Acknowledged"
MITIGATED = "Mitigated"
RESOLVED = "Resolved"
ESCALATED = "Escalated"

LEVEL_PRIMARY = "primary"
LEVEL_SECONDARY = "secondary"
LEVEL_MANAGEMENT = "management"
_LEVEL_RANK = {None: 0, LEVEL_PRIMARY: 1, LEVEL_SECONDARY: 2, LEVEL_MANAGEMENT: 3}

NAME_RE = re.compile(r"^inc-(\d{8})-(\d{3,})$")


# ----------------------------------------------------------------------------- effects
@dataclasses.dataclass(frozen=True)
class Notification:
    """A message for the receivers of one escalation level (sent by the notifier)."""

    event: str  # trigger | escalate | acknowledge | resolve
    level: str
    receivers: tuple[str, ...]
    severity: Severity
    message: str


@dataclasses.dataclass(frozen=True)
class EventNote:
    reason: str
    message: str
    type: str = "Normal"


@dataclasses.dataclass(frozen=True)
class MetricNote:
    """An observation for the operator's own metrics."""

    name: str  # opened | acknowledged | resolved | escalated | reopened
    severity: Severity
    category: Category
    seconds: float | None = None
    level: str | None = None


@dataclasses.dataclass
class Outcome:
    status: ZentinelIncidentStatus
    notifications: list[Notification] = dataclasses.field(default_factory=list)
    events: list[EventNote] = dataclasses.field(default_factory=list)
    metrics: list[MetricNote] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Step:
    """One step's outcome as it is made, and what each of its parts is recorded with."""

    out: Outcome
    category: Category
    now: dt.datetime
    policy: ZentinelIncidentPolicySpec
    generation: int | None


@dataclasses.dataclass(frozen=True)
class HumanInput:
    """What people asked of the incident through kubectl, annotations or the CLI."""

    acknowledged_by: str | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    severity_override: Severity | None = None
    severity_override_reason: str | None = None


def human_input(obj: Mapping[str, Any]) -> HumanInput:
    """People's input from the spec (kubectl patch, CLI) or the annotations (kubectl annotate)."""
    spec = obj.get("spec") or {}
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    override = spec.get("severityOverride")
    return HumanInput(
        acknowledged_by=spec.get("acknowledgedBy") or ann.get(ANN_ACKNOWLEDGED_BY) or None,
        resolved_by=spec.get("resolvedBy") or ann.get(ANN_RESOLVED_BY) or None,
        resolution_note=spec.get("resolutionNote") or ann.get(ANN_RESOLUTION_NOTE) or None,
        severity_override=Severity(override) if override else None,
        severity_override_reason=spec.get("severityOverrideReason"),
    )


# --------------------------------------------------------------------------- identity
def fingerprint(zentinel: str, category: Category | str) -> str:
    """One open incident per Zentinel and category."""
    return f"{zentinel}/{Category(category).value}"


def fingerprint_label(fp: str) -> str:
    """A label-value-safe form of the fingerprint (63 characters at most)."""
    return hashlib.sha256(fp.encode()).hexdigest()[:40]


def next_incident_name(day: dt.date, existing: Iterable[str]) -> str:
    """``inc-YYYYMMDD-NNN`` with NNN one above the highest of that day."""
    stamp = day.strftime("%Y%m%d")
    highest = 0
    for name in existing:
        m = NAME_RE.match(name)
        if m and m.group(1) == stamp:
            highest = max(highest, int(m.group(2)))
    return f"inc-{stamp}-{highest + 1:03d}"


def name_after(name: str) -> str:
    """The next candidate name after a conflict on ``name``."""
    m = NAME_RE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not an incident name")
    return f"inc-{m.group(1)}-{int(m.group(2)) + 1:03d}"


# ------------------------------------------------------------------------------ helpers
def response_target(policy: ZentinelIncidentPolicySpec, severity: Severity) -> dt.timedelta:
    return parse_duration(policy.response_targets.for_severity(severity))


def add_timeline(
    status: ZentinelIncidentStatus, policy: ZentinelIncidentPolicySpec, when: dt.datetime, type_: str, message: str
) -> None:
    """Append one entry to ``status.timeline`` (in place), keeping it within the policy's limit."""
    status.timeline.append(TimelineEntry(time=when, type=type_, message=message))
    limit = policy.lifecycle.timeline_limit
    if len(status.timeline) > limit:
        # Keep the first entry (detection) and the most recent ones.
        status.timeline = [status.timeline[0], *status.timeline[-(limit - 1) :]]


def _record(finding: Finding) -> FindingRecord:
    return FindingRecord(
        category=finding.category,
        severity=finding.severity,
        summary=finding.summary,
        evidence=list(finding.evidence)[:20],
    )


def _cond(
    status: ZentinelIncidentStatus,
    type_: str,
    value: bool,
    reason: str,
    message: str,
    now: dt.datetime,
    generation: int | None,
) -> None:
    status.conditions = set_condition(status.conditions, type_, value, reason, message, now=now, generation=generation)


def _state(status: ZentinelIncidentStatus, remediating: bool) -> IncidentState:
    remediating = remediating or bool(status.remediations and status.remediations[-1].state in IN_FLIGHT)
    if status.resolved_at is not None:
        return IncidentState.RESOLVED
    if status.healthy_since is not None:
        return IncidentState.MONITORING
    if remediating:
        return IncidentState.MITIGATING
    if status.acknowledged_at is not None:
        return IncidentState.ACKNOWLEDGED
    return IncidentState.DETECTED


def _receivers_notified(status: ZentinelIncidentStatus, policy: ZentinelIncidentPolicySpec) -> tuple[str, ...]:
    levels = policy.escalation.for_severity(status.effective_severity)
    names: list[str] = list(levels.primary)
    for esc in status.escalations:
        names += esc.receivers
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------- detection
def new_incident(
    finding: Finding, *, now: dt.datetime, policy: ZentinelIncidentPolicySpec, generation: int | None = 1
) -> Outcome:
    """Status of a freshly detected incident, and the primary page."""
    severity = finding.severity
    status = ZentinelIncidentStatus(
        observed_generation=generation,
        severity=severity,
        severity_reason=f"detected: {finding.summary}",
        summary=finding.summary,
        count=1,
        detected_at=now,
        last_seen_at=now,
        response_due_at=now + response_target(policy, severity),
        escalation_level=LEVEL_PRIMARY,
        findings=[_record(finding)],
    )
    _cond(status, ACKNOWLEDGED, False, "Unacknowledged", "Waiting for a person to acknowledge", now, generation)
    _cond(status, MITIGATED, False, "NotMitigated", "The signal is still present", now, generation)
    _cond(status, RESOLVED, False, "Open", "The incident is open", now, generation)
    _cond(status, ESCALATED, False, "WithinResponseTarget", "Primary paged", now, generation)
    add_timeline(status, policy, now, "Detected", f"{severity.value} {finding.category.value}: {finding.summary}")
    levels = policy.escalation.for_severity(severity)
    status.escalations.append(
        EscalationRecord(level=LEVEL_PRIMARY, at=now, reason="detected", receivers=list(levels.primary))
    )
    status.state = _state(status, remediating=False)
    out = Outcome(status=status)
    out.notifications.append(
        Notification("trigger", LEVEL_PRIMARY, tuple(levels.primary), severity, f"{severity.value} {finding.summary}")
    )
    out.events.append(
        EventNote("IncidentDetected", f"{severity.value} {finding.category.value}: {finding.summary}", "Warning")
    )
    out.metrics.append(MetricNote("opened", severity, finding.category))
    return out


def can_reopen(status: ZentinelIncidentStatus, *, now: dt.datetime, policy: ZentinelIncidentPolicySpec) -> bool:
    """A resolved incident whose signal returns within the reopen window is reopened (flapping)."""
    if status.resolved_at is None:
        return False
    return now - status.resolved_at <= parse_duration(policy.lifecycle.reopen_window)


# ------------------------------------------------------------------------------ one pass
def step(
    status: ZentinelIncidentStatus,
    *,
    category: Category,
    finding: Finding | None,
    human: HumanInput,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
    generation: int | None,
    remediating: bool = False,
    new_occurrence: bool = False,
    signal_known: bool = True,
) -> Outcome:
    """Advance an existing incident by one observation.

    ``finding`` is what triage says about this incident's category now (None: signal absent).
    ``new_occurrence`` marks a deduplicated repeat that did not come from the continuous signal
    (for example a second alert delivery with a new start time); it counts like a recurrence.
    ``signal_known=False`` says the signal could not be observed this pass (no metric rates yet
    after a restart, an endpoint down): the signal state is left as it is, but people's input and
    escalation timers are still handled. Unknown is never taken for healthy.
    """
    st = status.model_copy(deep=True)
    st.observed_generation = generation
    out = Outcome(status=st)
    s = _Step(out, category, now, policy, generation)
    severity = st.severity or (finding.severity if finding else Severity.SEV4)

    if st.resolved_at is not None:
        if finding is not None and can_reopen(st, now=now, policy=policy):
            _reopen(s, finding)
        st.state = _state(st, remediating=False)
        return out

    # --- people first: a manual resolution ends everything else.
    if human.resolved_by:
        _resolve(
            s,
            by=human.resolved_by,
            reason="ResolvedByUser",
            message=f"Resolved by {human.resolved_by}"
            + (f": {human.resolution_note}" if human.resolution_note else ""),
        )
        return out

    if human.acknowledged_by and st.acknowledged_at is None:
        st.acknowledged_at = now
        st.acknowledged_by = human.acknowledged_by
        _cond(st, ACKNOWLEDGED, True, "AcknowledgedByUser", f"Acknowledged by {human.acknowledged_by}", now, generation)
        add_timeline(st, policy, now, "Acknowledged", f"Acknowledged by {human.acknowledged_by}")
        mtta = (now - st.detected_at).total_seconds() if st.detected_at else None
        out.metrics.append(MetricNote("acknowledged", severity, category, seconds=mtta))
        out.events.append(EventNote("IncidentAcknowledged", f"Acknowledged by {human.acknowledged_by}"))
        out.notifications.append(
            Notification(
                "acknowledge",
                LEVEL_PRIMARY,
                _receivers_notified(st, policy),
                severity,
                f"Acknowledged by {human.acknowledged_by}",
            )
        )

    # --- the signal
    if not signal_known:
        pass
    elif finding is not None:
        recurred = st.healthy_since is not None or new_occurrence
        if recurred:
            st.count += 1
            add_timeline(st, policy, now, "Recurred", f"Signal back: {finding.summary}")
        st.healthy_since = None
        st.last_seen_at = now
        st.summary = finding.summary
        st.findings = [_record(finding)]
        if st.mitigated_at is not None or recurred:
            _cond(st, MITIGATED, False, "SignalReturned", finding.summary, now, generation)
        _severity_from_finding(s, finding)
    elif st.healthy_since is None:
        st.healthy_since = now
        _cond(st, MITIGATED, True, "SignalsHealthy", "The signal is gone; watching before resolving", now, generation)
        add_timeline(st, policy, now, "SignalsHealthy", "The signal is gone")
    elif now - st.healthy_since >= parse_duration(policy.lifecycle.resolve_after):
        held = format_duration(now - st.healthy_since)
        _resolve(s, by="operator", reason="SignalsHealthy", message=f"Signals healthy for {held}")
        return out

    # --- a person's severity override
    _apply_override(s, human)

    # --- escalation per the matrix
    _escalate(s)
    _page_added_receivers(s)

    st.state = _state(st, remediating)
    return out


def _severity_from_finding(s: _Step, finding: Finding) -> None:
    out, st, now, policy = s.out, s.out.status, s.now, s.policy
    current = st.severity or finding.severity
    if finding.severity.worse_than(current):
        st.severity = finding.severity
        st.severity_reason = f"raised on new evidence: {finding.summary}"
        st.candidate_severity = None
        st.candidate_since = None
        due = now + response_target(policy, finding.severity)
        if st.acknowledged_at is None and (st.response_due_at is None or due < st.response_due_at):
            st.response_due_at = due
        add_timeline(
            st, policy, now, "SeverityRaised", f"{current.value} -> {finding.severity.value}: {finding.summary}"
        )
        levels = policy.escalation.for_severity(finding.severity)
        out.notifications.append(
            Notification(
                "trigger",
                LEVEL_PRIMARY,
                tuple(levels.primary),
                finding.severity,
                f"raised to {finding.severity.value}: {finding.summary}",
            )
        )
        out.events.append(EventNote("SeverityRaised", f"{current.value} -> {finding.severity.value}", "Warning"))
    elif current.worse_than(finding.severity):
        # Falling needs the lower reading to hold, and then it is written down with its reason.
        if st.candidate_severity != finding.severity or st.candidate_since is None:
            st.candidate_severity = finding.severity
            st.candidate_since = now
        elif now - st.candidate_since >= parse_duration(policy.lifecycle.resolve_after):
            held = format_duration(now - st.candidate_since)
            reason = f"signals at {finding.severity.value} level for {held}: {finding.summary}"
            add_timeline(st, policy, now, "SeverityLowered", f"{current.value} -> {finding.severity.value}: {reason}")
            out.events.append(EventNote("SeverityLowered", f"{current.value} -> {finding.severity.value}: {reason}"))
            st.severity = finding.severity
            st.severity_reason = f"lowered: {reason}"
            st.candidate_severity = None
            st.candidate_since = None
    else:
        st.candidate_severity = None
        st.candidate_since = None


def _apply_override(s: _Step, human: HumanInput) -> None:
    out, st, now, policy = s.out, s.out.status, s.now, s.policy
    if human.severity_override is None or human.severity_override == st.severity:
        return
    if not human.severity_override_reason:
        return  # the schema refuses this; never change severity without a reason
    old = st.severity
    st.severity = human.severity_override
    st.severity_reason = f"set by hand: {human.severity_override_reason}"
    st.candidate_severity = None
    st.candidate_since = None
    old_text = old.value if old else "none"
    add_timeline(
        st,
        policy,
        now,
        "SeverityOverridden",
        f"{old_text} -> {human.severity_override.value}: {human.severity_override_reason}",
    )
    out.events.append(EventNote("SeverityOverridden", f"{old_text} -> {human.severity_override.value}"))


def _escalate(s: _Step) -> None:
    st, now, policy = s.out.status, s.now, s.policy
    severity = st.effective_severity
    levels = policy.escalation.for_severity(severity)
    level_rank = _LEVEL_RANK.get(st.escalation_level, 0)
    # Unacknowledged past the response target: the secondary.
    if st.acknowledged_at is None and st.response_due_at is not None and now >= st.response_due_at and level_rank < 2:
        receivers = levels.past_primary()
        target = format_duration(response_target(policy, severity))
        note = "" if levels.secondary else f"; no secondary for {severity.value}, primary paged again"
        message = f"Not acknowledged within the {severity.value} response target ({target}){note}"
        _escalate_to(s, LEVEL_SECONDARY, receivers, "ResponseTargetMissed", message)
        level_rank = 2
    # Unresolved too long: management (runbook: SEV1, director if > 30 min).
    if levels.management_after and st.detected_at is not None and level_rank < 3:
        after = parse_duration(levels.management_after)
        if now - st.detected_at >= after:
            message = f"{severity.value} unresolved after {format_duration(after)}: management informed"
            _escalate_to(s, LEVEL_MANAGEMENT, tuple(levels.management), "ManagementNotified", message)


def _page_added_receivers(s: _Step) -> None:
    """Receivers added to the policy get the open incidents they now cover that nobody was paged for.

    Covered: the incident's levels reached so far (primary, then secondary and management once
    escalated there) under the current policy. Nobody paged: no trigger or escalation has been
    delivered to any receiver (``status.deliveries``), for instance because the policy had no
    receivers when the incident opened or every one failed for good. An incident somebody was paged
    for, or that a person acknowledged, is left alone: the receivers paged already carry it, and a new
    receiver gets its later pages (escalation, a raised severity, a reopening). Each such page is an
    ``escalations`` entry at ``now`` naming the new receivers, so it is owed (and sent) once.
    """
    out, st, now, policy = s.out, s.out.status, s.now, s.policy
    if st.acknowledged_at is not None or st.resolved_at is not None:
        return
    if any(d.state == DeliveryState.DELIVERED.value and d.event in ("trigger", "escalate") for d in st.deliveries):
        return
    severity = st.effective_severity
    levels = policy.escalation.for_severity(severity)
    rank = _LEVEL_RANK.get(st.escalation_level, 1)
    reached: list[tuple[str, Sequence[str]]] = [(LEVEL_PRIMARY, levels.primary)]
    if rank >= 2:
        reached.append((LEVEL_SECONDARY, levels.past_primary()))
    if rank >= 3:
        reached.append((LEVEL_MANAGEMENT, levels.management))
    known = {r.name for r in policy.receivers}
    covered = paged_receivers(st, policy)
    for level, names in reached:
        added = [r for r in dict.fromkeys(names) if r in known and r not in covered]
        if not added:
            continue
        covered.update(added)
        message = f"{', '.join(added)} added to the policy and nobody paged yet: paged ({level})"
        st.escalations.append(EscalationRecord(level=level, at=now, reason=message, receivers=added))
        add_timeline(st, policy, now, "Paged", message)
        event = "trigger" if level == LEVEL_PRIMARY else "escalate"
        out.notifications.append(Notification(event, level, tuple(added), severity, message))
        out.events.append(EventNote("ReceiversPaged", message, "Warning"))


def _escalate_to(s: _Step, level: str, receivers: tuple[str, ...], reason: str, message: str) -> None:
    """Record one escalation level: status, condition, timeline, the page, the event, the metric."""
    out, st, category, now, policy, generation = s.out, s.out.status, s.category, s.now, s.policy, s.generation
    severity = st.effective_severity
    st.escalation_level = level
    st.escalations.append(EscalationRecord(level=level, at=now, reason=message, receivers=list(receivers)))
    _cond(st, ESCALATED, True, reason, message, now, generation)
    add_timeline(st, policy, now, "Escalated", message)
    out.notifications.append(Notification("escalate", level, receivers, severity, message))
    out.events.append(EventNote("IncidentEscalated", message, "Warning"))
    out.metrics.append(MetricNote("escalated", severity, category, level=level))


def _resolve(s: _Step, *, by: str, reason: str, message: str) -> None:
    out, st, category, now, policy, generation = s.out, s.out.status, s.category, s.now, s.policy, s.generation
    severity = st.effective_severity
    st.resolved_at = now
    st.resolved_by = by
    st.healthy_since = st.healthy_since or now
    st.candidate_severity = None
    st.candidate_since = None
    _cond(st, RESOLVED, True, reason, message, now, generation)
    if get_condition(st.conditions, MITIGATED) is None or by != "operator":
        _cond(st, MITIGATED, True, reason, message, now, generation)
    add_timeline(st, policy, now, "Resolved", message)
    if severity in (Severity.SEV1, Severity.SEV2):
        st.postmortem_due = now + dt.timedelta(hours=48)
    st.state = IncidentState.RESOLVED
    mttr = (now - st.detected_at).total_seconds() if st.detected_at else None
    out.metrics.append(MetricNote("resolved", severity, category, seconds=mttr))
    out.events.append(EventNote("IncidentResolved", message))
    out.notifications.append(Notification("resolve", LEVEL_PRIMARY, _receivers_notified(st, policy), severity, message))


def _reopen(s: _Step, finding: Finding) -> None:
    out, st, category, now, policy, generation = s.out, s.out.status, s.category, s.now, s.policy, s.generation
    resolved_for = format_duration(now - st.resolved_at) if st.resolved_at else "?"
    st.resolved_at = None
    st.resolved_by = None
    st.healthy_since = None
    st.postmortem_due = None
    st.flap_count += 1
    st.count += 1
    st.last_seen_at = now
    st.summary = finding.summary
    st.findings = [_record(finding)]
    if finding.severity.worse_than(st.effective_severity):
        st.severity = finding.severity
        st.severity_reason = f"raised on reopening: {finding.summary}"
    severity = st.severity or finding.severity
    if st.acknowledged_at is None:
        st.response_due_at = now + response_target(policy, severity)
    message = f"Signal back {resolved_for} after resolving (flap #{st.flap_count}): {finding.summary}"
    _cond(st, RESOLVED, False, "Reopened", message, now, generation)
    _cond(st, MITIGATED, False, "SignalReturned", finding.summary, now, generation)
    add_timeline(st, policy, now, "Reopened", message)
    levels = policy.escalation.for_severity(severity)
    out.notifications.append(Notification("trigger", LEVEL_PRIMARY, tuple(levels.primary), severity, message))
    out.events.append(EventNote("IncidentReopened", message, "Warning"))
    out.metrics.append(MetricNote("reopened", severity, category))


# ----------------------------------------------------------------------------- utilities
def is_open(status: ZentinelIncidentStatus) -> bool:
    return status.resolved_at is None


def mark_mitigated(
    status: ZentinelIncidentStatus,
    *,
    action: str,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
    generation: int | None,
) -> ZentinelIncidentStatus:
    """A remediation verified: the incident is Mitigated (it resolves once signals stay healthy)."""
    st = status.model_copy(deep=True)
    st.mitigated_at = now
    _cond(st, MITIGATED, True, "RemediationSucceeded", f"{action} verified", now, generation)
    add_timeline(st, policy, now, "Mitigated", f"{action} verified")
    return st


def worst(severities: Sequence[Severity]) -> Severity | None:
    return min(severities, key=lambda s: s.rank) if severities else None


def condition_status(status: ZentinelIncidentStatus, type_: str) -> ConditionStatus | None:
    cond = get_condition(status.conditions, type_)
    return cond.status if cond else None


def escalate_now(
    status: ZentinelIncidentStatus,
    *,
    category: Category,
    reason: str,
    message: str,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
    generation: int | None,
) -> Outcome:
    """Page the secondary at once (remediation refused or exhausted), if not already past that level."""
    st = status.model_copy(deep=True)
    out = Outcome(status=st)
    severity = st.effective_severity
    if _LEVEL_RANK.get(st.escalation_level, 0) >= 2:
        add_timeline(st, policy, now, "Escalated", f"{message} (already escalated)")
        return out
    levels = policy.escalation.for_severity(severity)
    receivers = levels.past_primary()
    _escalate_to(_Step(out, category, now, policy, generation), LEVEL_SECONDARY, receivers, reason, message)
    return out


def note_action(
    status: ZentinelIncidentStatus,
    *,
    message: str,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
) -> ZentinelIncidentStatus:
    """An action on the timeline (with its before and after state in the message)."""
    st = status.model_copy(deep=True)
    add_timeline(st, policy, now, "Action", message)
    return st
