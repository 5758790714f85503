"""A post-mortem draft in the runbook's template, built from the incident record: pure, no I/O.

The runbook's template (``incident-response.md``, "Post-Mortem Template") has a Summary, a Timeline
table, the Root Cause, Action Items and Lessons Learned. The draft fills what the operator knows:

- **Summary**: date, duration, severity (and the peak, when it moved), computed impact (the findings,
  the error counters in the evidence bundles, the routes with errors, the pods affected), and for
  SEV1/SEV2 the post-mortem's due date (48 hours after resolution, ``status.postmortemDue``);
- **Timeline**: one row per timeline entry, per condition transition the timeline does not already
  show (it is bounded), per remediation step and per escalation, oldest first; then the same as a
  Mermaid ``timeline`` chart;
- **Root Cause**: a hint from triage (category, finding, evidence, whether a config change caused it,
  causes found in the logs, what resolved it), for people to confirm or replace;
- **Action Items**: seeded from what went wrong (failed or refused remediations, actions left to a
  person, escalations, flapping, certificates, config rollbacks), owner ``TBD``, with due dates;
- **Lessons Learned**: the runbook's two questions with what the record already answers;
- **Evidence**: the evidence bundles and how long they are kept.

``now`` matters only while the incident is open (duration so far, due dates); a resolved incident
renders the same text every time, so the caller can tell a real change from a re-render.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.common import Category, ConditionStatus, Severity
from ..models.incident import RecordState, RemediationRecord, TimelineEntry, ZentinelIncident
from ..names import LABEL_INCIDENT
from .redact import redact

POSTMORTEM_KEY = "postmortem.md"
DUE_AFTER_RESOLUTION = dt.timedelta(hours=48)
ACTION_DUE = {Severity.SEV1: dt.timedelta(days=7), Severity.SEV2: dt.timedelta(days=7)}
ACTION_DUE_DEFAULT = dt.timedelta(days=30)
CHART_LIMIT = 30

RUNBOOK_SECTIONS = {
    Category.PROCESS_CRASH: "Process Crash",
    Category.HEALTH_CHECK_FAILURE: "Initial Triage Decision Tree (health check)",
    Category.UPSTREAM_FAILURE: "Upstream Failure",
    Category.HIGH_ERROR_RATE: "High Error Rate",
    Category.PERFORMANCE_DEGRADATION: "High Error Rate (elevated latency)",
    Category.MEMORY_EXHAUSTION: "Memory Exhaustion",
    Category.CERTIFICATE_EXPIRING: "TLS/Certificate Issues",
    Category.CERTIFICATE_INVALID: "TLS/Certificate Issues",
    Category.CONFIG_ERROR: "Process Crash (restore last known good config)",
    Category.TRAFFIC_SPIKE: "DDoS/Attack Response",
    Category.METRICS_UNAVAILABLE: "Quick Diagnostic Commands",
    Category.EXTERNAL_ALERT: "Initial Triage Decision Tree",
}

# Timeline entry types, as the runbook's template names the moments.
_ENTRY_LABELS = {
    "Detected": "First alert triggered; incident declared",
    "Acknowledged": "Acknowledged",
    "Escalated": "Escalated",
    "Action": "Action",
    "Mitigated": "Mitigation applied",
    "SignalsHealthy": "Signals healthy",
    "Resolved": "Full resolution",
    "Recurred": "Signal back",
    "Reopened": "Reopened",
    "SeverityRaised": "Severity raised",
    "SeverityLowered": "Severity lowered",
    "SeverityOverridden": "Severity set by hand",
}
# A condition transition that a timeline entry of these types at the same time already shows.
_COVERED_BY = {
    ("Acknowledged", ConditionStatus.TRUE): {"Acknowledged"},
    ("Mitigated", ConditionStatus.TRUE): {"Mitigated", "SignalsHealthy", "Resolved"},
    ("Mitigated", ConditionStatus.FALSE): {"Recurred", "Reopened", "Detected"},
    ("Resolved", ConditionStatus.TRUE): {"Resolved"},
    ("Resolved", ConditionStatus.FALSE): {"Reopened", "Detected"},
    ("Escalated", ConditionStatus.TRUE): {"Escalated"},
    ("Escalated", ConditionStatus.FALSE): {"Detected"},
    ("Acknowledged", ConditionStatus.FALSE): {"Detected"},
}
_LOG_CAUSES = (
    "config error",
    "config reload REJECTED",
    "port conflict",
    "certificate error",
    "out of memory",
)
_CONFIG_HINT = re.compile(r"\bconfig(uration)?\b.*\b(change|error|revision|reject|not found|valid)", re.IGNORECASE)
_ROUTE_IN_EVIDENCE = re.compile(r"(?:^|[:,]\s*)([A-Za-z0-9_./-]+) \d+(?:\.\d+)?% \(")
_SEVERITY_IN_TEXT = re.compile(r"\bSEV([1-4])\b")


@dataclasses.dataclass(frozen=True)
class Row:
    time: dt.datetime
    label: str
    text: str
    phase: str  # detection | response | resolution, for the chart's sections
    order: int = 0


# ------------------------------------------------------------------------------- text
def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _stamp(t: dt.datetime) -> str:
    return _utc(t).strftime("%Y-%m-%d %H:%M:%S")


def _day(t: dt.datetime) -> str:
    return _utc(t).strftime("%Y-%m-%d")


def human_duration(delta: dt.timedelta) -> str:
    """The runbook's "X hours Y minutes" (days and seconds where they matter)."""
    total = max(0, int(delta.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)

    def unit(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    if days:
        return f"{unit(days, 'day')} {unit(hours, 'hour')}"
    if hours:
        return f"{unit(hours, 'hour')} {unit(minutes, 'minute')}"
    if minutes:
        return f"{unit(minutes, 'minute')} {unit(seconds, 'second')}" if seconds else unit(minutes, "minute")
    return unit(seconds, "second")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


# --------------------------------------------------------------------------- analysis
def peak_severity(incident: ZentinelIncident) -> Severity | None:
    """The worst severity the incident had: its findings, its severity changes, its current severity."""
    st = incident.status
    seen = [f.severity for f in st.findings]
    if st.severity is not None:
        seen.append(st.severity)
    for entry in st.timeline:
        if entry.type in ("Detected", "SeverityRaised", "SeverityLowered", "SeverityOverridden", "Reopened"):
            seen += [Severity(f"SEV{m}") for m in _SEVERITY_IN_TEXT.findall(entry.message)]
    return min(seen, key=lambda s: s.rank) if seen else None


def _evidence_lines(incident: ZentinelIncident) -> list[str]:
    return [line for f in incident.status.findings for line in f.evidence]


def config_caused(incident: ZentinelIncident) -> bool:
    if incident.spec.category == Category.CONFIG_ERROR:
        return True
    if any(r.action == "configRollback" and r.state != RecordState.REFUSED for r in incident.status.remediations):
        return True
    texts = _evidence_lines(incident) + [f.summary for f in incident.status.findings]
    return any(_CONFIG_HINT.search(t) for t in texts)


def log_causes(incident: ZentinelIncident) -> list[str]:
    return [line for line in _evidence_lines(incident) if line.startswith(_LOG_CAUSES)]


def affected_routes(incident: ZentinelIncident, evidence_summary: Mapping[str, Any] | None) -> list[str]:
    routes: set[str] = set()
    for line in _evidence_lines(incident):
        if "route" in line:
            routes.update(m for m in _ROUTE_IN_EVIDENCE.findall(line))
    for figures in ((evidence_summary or {}).get("impact") or {}).values():
        for route, row in (figures.get("routes") or {}).items():
            if row.get("errors", 0) > 0:
                routes.add(route)
    return sorted(routes)


def _impact_lines(incident: ZentinelIncident, evidence_summary: Mapping[str, Any] | None) -> list[str]:
    st = incident.status
    lines: list[str] = []
    if st.findings:
        lines.append("; ".join(dict.fromkeys(f.summary for f in st.findings)))
    elif st.summary:
        lines.append(st.summary)
    impact = (evidence_summary or {}).get("impact") or {}
    totals: dict[str, tuple[float, float]] = {}
    for phase in ("detection", "resolution"):
        routes = (impact.get(phase) or {}).get("routes") or {}
        if routes:
            totals[phase] = (
                sum(float(r.get("errors", 0)) for r in routes.values()),
                sum(float(r.get("requests", 0)) for r in routes.values()),
            )
    if totals:
        parts = [f"{_count(e)} of {_count(r)} requests at {phase}" for phase, (e, r) in totals.items()]
        text = "5xx answers counted by the pods' counters: " + ", ".join(parts)
        if "detection" in totals and "resolution" in totals and totals["resolution"][0] > totals["detection"][0]:
            text += f" (at least {_count(totals['resolution'][0] - totals['detection'][0])} during the incident)"
        lines.append(text)
    routes = affected_routes(incident, evidence_summary)
    if routes:
        lines.append("routes with errors: " + ", ".join(f"`{r}`" for r in routes))
    return lines


# --------------------------------------------------------------------------- timeline
def _entry_phase(entry_type: str) -> str:
    if entry_type in ("Detected", "Reopened", "Recurred"):
        return "detection"
    if entry_type in ("Mitigated", "SignalsHealthy", "Resolved"):
        return "resolution"
    return "response"


def _describe_record(rec: RemediationRecord) -> str:
    text = f"`{rec.action}` ({rec.mode})"
    if rec.target:
        text += f" on {rec.target}"
    return text


def _covered(entries: Sequence[TimelineEntry], when: dt.datetime, types: set[str], needle: str = "") -> bool:
    at = _utc(when)
    return any(_utc(e.time) == at and e.type in types and (not needle or needle in e.message) for e in entries)


def timeline_rows(incident: ZentinelIncident) -> list[Row]:
    """Rows from the timeline, the condition transitions, the remediation records and escalations, oldest first."""
    st = incident.status
    rows: list[Row] = []
    for entry in st.timeline:
        label = _ENTRY_LABELS.get(entry.type, entry.type)
        rows.append(Row(entry.time, label, entry.message, _entry_phase(entry.type), 0))

    for cond in st.conditions:
        if cond.last_transition_time is None or cond.status == ConditionStatus.UNKNOWN:
            continue
        covered_by = _COVERED_BY.get((cond.type, cond.status), set())
        if covered_by and _covered(st.timeline, cond.last_transition_time, covered_by):
            continue
        initial = st.detected_at is not None and _utc(cond.last_transition_time) == _utc(st.detected_at)
        if initial and cond.status == ConditionStatus.FALSE:
            continue  # the initial state, shown by the detection row
        phase = "resolution" if cond.type in ("Mitigated", "Resolved") and cond.status == ConditionStatus.TRUE else ""
        rows.append(
            Row(
                cond.last_transition_time,
                f"Condition {cond.type}={cond.status.value}",
                f"{cond.reason}: {cond.message}" if cond.message else cond.reason,
                phase or "response",
                1,
            )
        )

    for rec in st.remediations:
        events: list[tuple[dt.datetime | None, str, str]] = [
            (rec.started_at, "Remediation started", _describe_record(rec)),
            (
                rec.finished_at,
                f"Remediation {rec.state}",
                _describe_record(rec)
                + (f"; before: {rec.before}; after: {rec.after}" if rec.before or rec.after else "")
                + (f": {rec.reason}" if rec.reason and rec.state in (RecordState.FAILED, RecordState.REFUSED) else ""),
            ),
            (rec.verified_at, "Remediation verified", _describe_record(rec) + " took effect"),
        ]
        if rec.started_at is None and rec.finished_at is None and rec.verified_at is None:
            continue
        for when, label, text in events:
            if when is None:
                continue
            if _covered(st.timeline, when, {"Action", "Mitigated"}, rec.action):
                continue
            rows.append(Row(when, label, text, "response", 2))

    for esc in st.escalations:
        if esc.level == "primary":
            continue  # paged at detection: the detection row says so
        if _covered(st.timeline, esc.at, {"Escalated"}):
            continue
        receivers = f" ({', '.join(esc.receivers)})" if esc.receivers else ""
        rows.append(Row(esc.at, f"Escalated to {esc.level}", esc.reason + receivers, "response", 3))

    rows.sort(key=lambda r: (_utc(r.time), r.order))
    return rows


def _period(t: dt.datetime, multi_day: bool) -> str:
    """A Mermaid timeline period: no ``:`` or ``#`` allowed there, so 10:02 is written 10h02."""
    u = _utc(t)
    return u.strftime("%d %b %Hh%M") if multi_day else u.strftime("%Hh%M")


def _event_text(text: str, limit: int = 70) -> str:
    """Mermaid timeline event text: one line, no ``: `` (it starts another event), no ``%%`` comments."""
    clean = " ".join(text.split()).replace("%%", "%").replace("#", "No.").replace("`", "")
    clean = re.sub(r":(\s|$)", r" -\1", clean).strip()
    return clean if len(clean) <= limit else clean[: limit - 3].rstrip() + "..."


def mermaid(incident: ZentinelIncident, rows: Sequence[Row]) -> str:
    severity = incident.status.severity.value if incident.status.severity else "SEV?"
    title = f"{incident.metadata.name} - {severity} {incident.spec.category.value} on {incident.spec.zentinel_ref.name}"
    lines = ["```mermaid", "timeline", f"    title {_event_text(title, 120)}"]
    picked = list(rows)
    if len(picked) > CHART_LIMIT:
        picked = [*picked[: CHART_LIMIT // 2], *picked[-(CHART_LIMIT - CHART_LIMIT // 2) :]]
    multi_day = len({_day(r.time) for r in picked}) > 1
    section = None
    period = None
    for row in picked:
        if row.phase != section:
            section = row.phase
            period = None
            lines.append(f"    section {section.capitalize()}")
        text = _event_text(f"{row.label} - {row.text}" if row.text else row.label)
        p = _period(row.time, multi_day)
        if p == period:
            lines.append(f"        {' ' * len(p)} : {text}")
        else:
            lines.append(f"        {p} : {text}")
            period = p
    if not picked:
        lines.append("    section Detection")
        lines.append("        unknown : no timeline recorded")
    lines.append("```")
    return "\n".join(lines)


# ------------------------------------------------------------------------ action items
@dataclasses.dataclass(frozen=True)
class ActionItem:
    action: str
    due: dt.datetime
    owner: str = "TBD"
    status: str = "Open"


def action_items(incident: ZentinelIncident, *, now: dt.datetime) -> list[ActionItem]:
    st = incident.status
    severity = st.effective_severity
    base = st.resolved_at or now
    due = base + ACTION_DUE.get(severity, ACTION_DUE_DEFAULT)
    items: list[ActionItem] = []

    def add(text: str, when: dt.datetime | None = None) -> None:
        if all(i.action != text for i in items):
            items.append(ActionItem(action=text, due=when or due))

    if st.postmortem_due is not None:
        add("Hold the post-mortem review; confirm the root cause and complete this document", st.postmortem_due)
    else:
        add("Confirm the root cause and complete this document")
    for rec in st.remediations:
        what = _describe_record(rec)
        if rec.state == RecordState.FAILED:
            add(f"Find out why {what} did not help" + (f" ({rec.reason})" if rec.reason else ""))
        elif rec.state == RecordState.REFUSED:
            add(f"Review why {what} was refused" + (f" ({rec.reason})" if rec.reason else ""))
        elif rec.state in (RecordState.PENDING_APPROVAL, RecordState.DRY_RUN) and rec.action != "page":
            add(f"Decide whether {what} should run automatically next time (it stayed {rec.state})")
    itemized = {r.action for r in st.remediations if r.state in (RecordState.FAILED, RecordState.REFUSED)}
    for esc in st.escalations:
        # An escalation because an action failed or was refused is already an item above.
        if esc.level != "primary" and not any(re.search(rf"\b{re.escape(a)}\b", esc.reason) for a in itemized):
            add(f"Review the response: escalated to {esc.level} ({esc.reason})")
    if st.flap_count:
        add(f"Stop the flapping: the incident reopened {st.flap_count} time(s) after resolving")
    certificate = incident.spec.category in (Category.CERTIFICATE_EXPIRING, Category.CERTIFICATE_INVALID) or any(
        r.action == "certificateRotation" for r in st.remediations
    )
    if certificate:
        add("Automate certificate renewal and alert well before expiry (policy renewBeforeDays)")
    if any(r.action == "configRollback" for r in st.remediations) or config_caused(incident):
        add("Add config validation in CI (zentinel test -c) so a bad config never reaches the proxy")
    if incident.spec.category == Category.MEMORY_EXHAUSTION or any(r.action == "memoryLimit" for r in st.remediations):
        add("Right-size the memory limit and the connection limits for the observed load")
    return items


# ------------------------------------------------------------------------------ render
def _summary(incident: ZentinelIncident, evidence_summary: Mapping[str, Any] | None, now: dt.datetime) -> list[str]:
    st = incident.status
    start = st.detected_at or incident.metadata.creation_timestamp or now
    lines = ["## Summary", f"- **Date**: {_day(start)}"]
    if st.resolved_at is not None:
        lines.append(
            f"- **Duration**: {human_duration(st.resolved_at - start)} "
            f"({_stamp(start)} to {_stamp(st.resolved_at)} UTC)"
        )
    else:
        lines.append(f"- **Duration**: {human_duration(now - start)} so far (not resolved; since {_stamp(start)} UTC)")
    severity = st.severity.value if st.severity else "unknown"
    peak = peak_severity(incident)
    peak_text = f" (peak {peak.value})" if peak is not None and st.severity is not None and peak != st.severity else ""
    lines.append(f"- **Severity**: {severity}{peak_text}")
    impact = _impact_lines(incident, evidence_summary)
    lines.append(f"- **Impact**: {impact[0] if impact else '[Brief description of user impact]'}")
    lines += [f"  - {line}" for line in impact[1:]]
    pods = list((evidence_summary or {}).get("podsAffected") or [])
    lines.append(f"- **Pods affected**: {', '.join(f'`{p}`' for p in pods) if pods else 'none recorded'}")
    category = incident.spec.category
    lines.append(f'- **Category**: {category.value} (runbook: "{RUNBOOK_SECTIONS.get(category, category.value)}")')
    lines.append(f"- **Zentinel**: `{incident.metadata.namespace}/{incident.spec.zentinel_ref.name}`")
    source = "the operator's own signals" if incident.spec.source == "operator" else incident.spec.source
    lines.append(f"- **Detected by**: {source}")
    if st.acknowledged_at is not None:
        lines.append(
            f"- **Acknowledged**: by {st.acknowledged_by or 'someone'}, "
            f"{human_duration(st.acknowledged_at - start)} after detection"
        )
    else:
        lines.append("- **Acknowledged**: not acknowledged")
    if st.resolved_at is not None:
        lines.append(f"- **Resolved**: by {st.resolved_by or 'unknown'} at {_stamp(st.resolved_at)} UTC")
    lines.append(f"- **Occurrences**: seen {st.count} time(s), reopened {st.flap_count} time(s)")
    if st.postmortem_due is not None:
        lines.append(
            f"- **Post-mortem due**: {_stamp(st.postmortem_due)} UTC ({severity}: within 48 hours of resolution)"
        )
    elif st.severity in (Severity.SEV1, Severity.SEV2):
        lines.append(f"- **Post-mortem due**: 48 hours after resolution ({severity})")
    else:
        lines.append(f"- **Post-mortem**: optional for {severity} (required within 48 hours for SEV1/SEV2)")
    return lines


def _root_cause(incident: ZentinelIncident) -> list[str]:
    st = incident.status
    category = incident.spec.category
    lines = [
        "## Root Cause",
        "_Hint from the operator's triage; confirm it or replace it with the detailed explanation._",
        "",
        f'- **Category**: {category.value} (runbook: "{RUNBOOK_SECTIONS.get(category, category.value)}")',
    ]
    for finding in st.findings:
        lines.append(f"- **Finding** ({finding.severity.value}): {finding.summary}")
        lines += [f"  - {line}" for line in finding.evidence[:12]]
    if config_caused(incident):
        lines.append("- **Config-caused**: yes: the trouble follows a config change or a config that does not load")
    else:
        lines.append("- **Config-caused**: no sign of a config change")
    causes = log_causes(incident)
    lines.append("- **Causes in the logs**:" + ("" if causes else " none matched the runbook's causes"))
    lines += [f"  - {c}" for c in causes]
    fixes = [r for r in st.remediations if r.state == RecordState.SUCCEEDED]
    if fixes:
        lines.append("- **What mitigated it**: " + ", ".join(_describe_record(r) for r in fixes))
    elif st.resolved_by and st.resolved_by != "operator":
        lines.append(f"- **What resolved it**: resolved by hand by {st.resolved_by}")
    elif st.resolved_at is not None:
        lines.append("- **What resolved it**: the signals recovered without a successful remediation")
    lines += ["", "[Detailed explanation]"]
    return lines


def _lessons(incident: ZentinelIncident) -> list[str]:
    st = incident.status
    good: list[str] = []
    better: list[str] = []
    if st.detected_at is not None:
        good.append(
            f"Detected and classified automatically ({incident.spec.category.value}) at {_stamp(st.detected_at)} UTC"
        )
    for r in st.remediations:
        if r.state == RecordState.SUCCEEDED:
            good.append(f"Mitigated by {_describe_record(r)}" + (" (verified)" if r.verified_at else ""))
        elif r.state == RecordState.FAILED:
            better.append(f"{_describe_record(r)} did not help")
    if st.acknowledged_at is not None and st.response_due_at is not None and st.acknowledged_at <= st.response_due_at:
        good.append("Acknowledged within the response target")
    if any(e.level != "primary" for e in st.escalations):
        better.append("Escalation was needed: " + "; ".join(e.reason for e in st.escalations if e.level != "primary"))
    if st.flap_count:
        better.append(f"The incident flapped ({st.flap_count} reopening(s))")
    lines = ["## Lessons Learned", "- What went well:"]
    lines += [f"  - {g}" for g in good] + ["  - "]
    lines.append("- What could be improved:")
    lines += [f"  - {b}" for b in better] + ["  - "]
    return lines


def _evidence(incident: ZentinelIncident, evidence_summary: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Evidence"]
    bundles = list((evidence_summary or {}).get("bundles") or [])
    if not bundles:
        return [*lines, "No evidence bundle is recorded for this incident."]
    lines += [
        "Evidence bundles are ConfigMaps owned by the incident (`kubectl get configmaps "
        f"-n {incident.metadata.namespace} -l {LABEL_INCIDENT}={incident.metadata.name}`); "
        "`MANIFEST.json` in the first one lists every item with its size and sha256. Secrets are redacted.",
        "",
        "| Phase | Collected (UTC) | ConfigMaps | Items | Size | Notes |",
        "|-------|-----------------|------------|-------|------|-------|",
    ]
    for b in bundles:
        collected = b.get("collectedAt")
        when = _stamp(dt.datetime.fromisoformat(collected)) if collected else "-"
        notes = []
        if b.get("truncated"):
            notes.append("some items cut to the size cap")
        if b.get("deleted"):
            notes.append("deleted after its retention")
        lines.append(
            f"| {b.get('phase')} | {when} | {', '.join(f'`{c}`' for c in b.get('chunks', []))} | "
            f"{b.get('items', 0)} | {_bytes(int(b.get('bytes', 0)))} | {_cell('; '.join(notes)) or '-'} |"
        )
    until = (evidence_summary or {}).get("retentionUntil")
    if until and all(b.get("deleted") for b in bundles):
        when = _stamp(dt.datetime.fromisoformat(until))
        lines += ["", f"Deleted at the end of the policy's evidence retention ({when} UTC)."]
    elif until:
        lines += ["", f"Kept until {_stamp(dt.datetime.fromisoformat(until))} UTC (the policy's evidence retention)."]
    return lines


def render(incident: ZentinelIncident, *, evidence_summary: Mapping[str, Any] | None, now: dt.datetime) -> str:
    """The post-mortem draft as Markdown (secrets redacted)."""
    rows = timeline_rows(incident)
    lines = [
        f"# Incident Post-Mortem: {incident.metadata.name}",
        "",
        "> Draft written by the Zentinel incident operator from the incident record. Edit it freely: the operator "
        "only rewrites it while nobody has changed it.",
        "",
        *_summary(incident, evidence_summary, now),
        "",
        "## Timeline",
        "| Time (UTC) | Event |",
        "|------------|-------|",
    ]
    lines += [f"| {_stamp(r.time)} | **{_cell(r.label)}**: {_cell(r.text)} |" for r in rows]
    if not rows:
        lines.append("| - | no timeline recorded |")
    lines += ["", mermaid(incident, rows), "", *_root_cause(incident), "", "## Action Items"]
    lines += ["| Action | Owner | Due Date | Status |", "|--------|-------|----------|--------|"]
    lines += [
        f"| {_cell(i.action)} | {i.owner} | {_day(i.due)} | {i.status} |" for i in action_items(incident, now=now)
    ]
    lines += ["", *_lessons(incident), "", *_evidence(incident, evidence_summary), ""]
    return redact("\n".join(lines))
