"""The post-mortem draft: the runbook's sections, the timeline table and chart, root cause hints,
action items and the due date (SEV1/SEV2 only), from incidents built with the real lifecycle."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from zentinel_operator.core import lifecycle as lc
from zentinel_operator.core import postmortem as pm
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.models import ZentinelIncident
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.incident import RemediationRecord, ZentinelIncidentStatus
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec

T0 = dt.datetime(2026, 11, 27, 10, 2, 0, tzinfo=dt.UTC)
POLICY = ZentinelIncidentPolicySpec.model_validate(
    {
        "receivers": [
            {"name": "oncall", "type": "Webhook", "url": "http://x"},
            {"name": "lead", "type": "Webhook", "url": "http://y"},
        ],
        "escalation": {"sev2": {"primary": ["oncall"], "secondary": ["lead"]}},
    }
)
SECTIONS = ["Summary", "Timeline", "Root Cause", "Action Items", "Lessons Learned", "Evidence"]


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def wrap(status: ZentinelIncidentStatus, category: Category = Category.PROCESS_CRASH) -> ZentinelIncident:
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": "inc-20261127-001", "namespace": "prod", "uid": "u"},
            "spec": {
                "zentinelRef": {"name": "edge"},
                "category": category.value,
                "fingerprint": f"edge/{category.value}",
            },
            "status": status.dump(),
        }
    )


CRASH = Finding(
    Category.PROCESS_CRASH,
    Severity.SEV2,
    "2 of 3 Zentinel pods down (CrashLoopBackOff): config error",
    evidence=(
        "2 of 3 pods CrashLoopBackOff (edge-a: 5 restarts, last exit 1 Error; edge-b: 4 restarts)",
        'config error: edge-a (previous container): "Failed to load configuration file /etc/zentinel/zentinel.kdl"',
        "crash follows a config change 2m ago (revision 3a7bd3e2360a3d29)",
    ),
    config_caused=True,
)


def scripted() -> ZentinelIncident:
    """Detected at 10:02, rolled back (verified 10:05), a failed restart, escalated at 10:18 for want of an
    acknowledgement, acknowledged at 10:19 as the signal went, resolved at 10:25."""
    st = lc.new_incident(CRASH, now=T0, policy=POLICY).status
    rollback = RemediationRecord(
        id="inc/0/configRollback",
        action="configRollback",
        mode="Automatic",
        state="Running",
        target="edge-config",
        started_at=at(1),
        before="3a7bd3e2360a3d29",
        after="11aa22bb33cc44dd",
    )
    st.remediations = [rollback]
    st = lc.note_action(st, message="Starting configRollback [Running] - on edge-config", now=at(1), policy=POLICY)
    restart = RemediationRecord(
        id="inc/1/restart",
        action="restart",
        mode="Automatic",
        state="Failed",
        step=1,
        target="edge-b",
        started_at=at(4),
        finished_at=at(8),
        reason="the change did not take effect in time",
    )
    done = rollback.model_copy(update={"state": "Succeeded", "finished_at": at(3), "verified_at": at(3)})
    st.remediations = [done, restart]
    st = lc.note_action(
        st,
        message="configRollback [Succeeded] - on edge-config - before: 3a7bd3e2360a3d29; after: 11aa22bb33cc44dd",
        now=at(3),
        policy=POLICY,
    )
    st = lc.mark_mitigated(st, action="configRollback", now=at(3), policy=POLICY, generation=1)
    human = lc.HumanInput()
    st = lc.step(
        st, category=CRASH.category, finding=CRASH, human=human, now=at(16), policy=POLICY, generation=1
    ).status
    ack = lc.HumanInput(acknowledged_by="alice")
    st = lc.step(st, category=CRASH.category, finding=None, human=ack, now=at(17), policy=POLICY, generation=1).status
    st = lc.step(st, category=CRASH.category, finding=None, human=human, now=at(23), policy=POLICY, generation=1).status
    assert st.resolved_at == at(23)
    return wrap(st)


SUMMARY: dict[str, Any] = {
    "bundles": [
        {
            "phase": "detection",
            "chunks": ["inc-20261127-001-ev-detection-00"],
            "bytes": 34567,
            "items": 12,
            "collectedAt": T0.isoformat(),
        },
        {"phase": "resolution", "chunks": ["inc-20261127-001-ev-resolution-00"], "bytes": 2048, "items": 11},
    ],
    "impact": {
        "detection": {"routes": {"api": {"requests": 1000, "errors": 120}, "web": {"requests": 500, "errors": 0}}},
        "resolution": {"routes": {"api": {"requests": 3000, "errors": 200}}},
    },
    "podsAffected": ["edge-a", "edge-b"],
    "retentionUntil": (at(23) + dt.timedelta(days=30)).isoformat(),
}


def sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.MULTILINE)


def section(text: str, name: str) -> str:
    m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert m, name
    return m.group(1)


def table_rows(block: str) -> list[list[str]]:
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("|--")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]]


def test_sections_follow_the_runbook_template() -> None:
    text = pm.render(scripted(), evidence_summary=SUMMARY, now=at(60))
    assert text.startswith("# Incident Post-Mortem: inc-20261127-001\n")
    assert sections(text) == SECTIONS


def test_summary() -> None:
    summary = section(pm.render(scripted(), evidence_summary=SUMMARY, now=at(60)), "Summary")
    assert "- **Date**: 2026-11-27\n" in summary
    assert "- **Duration**: 23 minutes (2026-11-27 10:02:00 to 2026-11-27 10:25:00 UTC)" in summary
    assert "- **Severity**: SEV2\n" in summary
    assert "- **Impact**: 2 of 3 Zentinel pods down (CrashLoopBackOff): config error" in summary
    assert (
        "  - 5xx answers counted by the pods' counters: 120 of 1,500 requests at detection, "
        "200 of 3,000 requests at resolution (at least 80 during the incident)"
    ) in summary
    assert "  - routes with errors: `api`\n" in summary
    assert "- **Pods affected**: `edge-a`, `edge-b`" in summary
    assert "- **Acknowledged**: by alice, 17 minutes after detection" in summary
    assert "- **Resolved**: by operator at 2026-11-27 10:25:00 UTC" in summary


def test_timeline_rows_from_entries_records_and_conditions_without_duplicates() -> None:
    rows = table_rows(section(pm.render(scripted(), evidence_summary=None, now=at(60)), "Timeline"))
    assert rows == [
        [
            "2026-11-27 10:02:00",
            "**First alert triggered; incident declared**: SEV2 ProcessCrash: 2 of 3 Zentinel pods down "
            "(CrashLoopBackOff): config error",
        ],
        ["2026-11-27 10:03:00", "**Action**: Starting configRollback [Running] - on edge-config"],
        [
            "2026-11-27 10:05:00",
            "**Action**: configRollback [Succeeded] - on edge-config - before: 3a7bd3e2360a3d29; "
            "after: 11aa22bb33cc44dd",
        ],
        ["2026-11-27 10:05:00", "**Mitigation applied**: configRollback verified"],
        ["2026-11-27 10:06:00", "**Remediation started**: `restart` (Automatic) on edge-b"],
        [
            "2026-11-27 10:10:00",
            "**Remediation Failed**: `restart` (Automatic) on edge-b: the change did not take effect in time",
        ],
        ["2026-11-27 10:18:00", "**Escalated**: Not acknowledged within the SEV2 response target (15m)"],
        ["2026-11-27 10:19:00", "**Acknowledged**: Acknowledged by alice"],
        ["2026-11-27 10:19:00", "**Signals healthy**: The signal is gone"],
        ["2026-11-27 10:25:00", "**Full resolution**: Signals healthy for 6m"],
    ]


def test_condition_transitions_fill_in_what_a_bounded_timeline_dropped() -> None:
    inc = scripted()
    kept = [e for e in inc.status.timeline if e.type not in ("Acknowledged", "Escalated")]
    trimmed = inc.model_copy(update={"status": inc.status.model_copy(update={"timeline": kept})})
    rows = table_rows(section(pm.render(trimmed, evidence_summary=None, now=at(60)), "Timeline"))
    labels = [(r[0], r[1].split("**:")[0].strip("*")) for r in rows]
    assert ("2026-11-27 10:18:00", "Condition Escalated=True") in labels
    assert ("2026-11-27 10:19:00", "Condition Acknowledged=True") in labels
    # The escalation record shows too (the timeline lost it); the initial False conditions never do.
    assert ("2026-11-27 10:18:00", "Escalated to secondary") in labels
    assert not any(label.endswith("=False") for _, label in labels)


def test_rows_are_in_time_order() -> None:
    rows = pm.timeline_rows(scripted())
    assert [r.time for r in rows] == sorted(r.time for r in rows)


def test_mermaid_timeline_block() -> None:
    text = pm.render(scripted(), evidence_summary=None, now=at(60))
    block = re.search(r"```mermaid\n(.*?)\n```", text, flags=re.DOTALL)
    assert block is not None
    lines = block.group(1).splitlines()
    assert lines[0] == "timeline"
    assert lines[1] == "    title inc-20261127-001 - SEV2 ProcessCrash on edge"
    assert [ln.strip() for ln in lines if ln.strip().startswith("section")] == [
        "section Detection",
        "section Response",
        "section Resolution",
        "section Response",
        "section Resolution",
    ]
    events = [ln for ln in lines[2:] if not ln.strip().startswith("section")]
    assert events[0].strip().startswith("10h02 : First alert triggered")
    assert events[-1].strip() == "10h25 : Full resolution - Signals healthy for 6m"
    for ln in events:
        period, _, event = ln.strip().partition(" : ")
        assert ":" not in period and "#" not in period  # Mermaid's period token: [^#:\n]+
        assert not re.search(r":\s", event) and "%%" not in event and "`" not in event
    # A new section starts its own period, even at the same minute.
    assert [ln.strip().split(" : ")[0] for ln in events if "10h19" in ln] == ["10h19", "10h19"]


def test_mermaid_events_of_one_minute_share_the_period() -> None:
    rows = [
        pm.Row(at(1), "Action", "Starting restart: on edge-a", "response"),
        pm.Row(at(1), "Escalated", "remediation refused; lead paged #2", "response"),
        pm.Row(at(2), "Full resolution", "100%% fine", "resolution"),
    ]
    chart = pm.mermaid(scripted(), rows).splitlines()
    assert chart[3:] == [
        "    section Response",
        "        10h03 : Action - Starting restart - on edge-a",
        "              : Escalated - remediation refused; lead paged No.2",
        "    section Resolution",
        "        10h04 : Full resolution - 100% fine",
        "```",
    ]


def test_mermaid_chart_spanning_days_names_the_day() -> None:
    st = lc.new_incident(CRASH, now=T0, policy=POLICY).status
    st = lc.step(
        st,
        category=CRASH.category,
        finding=None,
        human=lc.HumanInput(resolved_by="bob"),
        now=T0 + dt.timedelta(days=1, hours=2),
        policy=POLICY,
        generation=1,
    ).status
    text = pm.render(wrap(st), evidence_summary=None, now=T0)
    assert "27 Nov 10h02 : " in text and "28 Nov 12h02 : " in text
    assert "- **Duration**: 1 day 2 hours" in text


def test_root_cause_hint() -> None:
    root = section(pm.render(scripted(), evidence_summary=None, now=at(60)), "Root Cause")
    assert '- **Category**: ProcessCrash (runbook: "Process Crash")' in root
    assert "- **Finding** (SEV2): 2 of 3 Zentinel pods down (CrashLoopBackOff): config error" in root
    assert "  - crash follows a config change 2m ago (revision 3a7bd3e2360a3d29)" in root
    assert "- **Config-caused**: yes" in root
    assert (
        '- **Causes in the logs**:\n  - config error: edge-a (previous container): "Failed to load configuration file'
    ) in root
    assert "- **What mitigated it**: `configRollback` (Automatic) on edge-config" in root
    assert "[Detailed explanation]" in root


def test_action_items_seeded_from_what_went_wrong() -> None:
    items = table_rows(section(pm.render(scripted(), evidence_summary=None, now=at(60)), "Action Items"))
    assert items == [
        [
            "Hold the post-mortem review; confirm the root cause and complete this document",
            "TBD",
            "2026-11-29",
            "Open",
        ],
        [
            "Find out why `restart` (Automatic) on edge-b did not help (the change did not take effect in time)",
            "TBD",
            "2026-12-04",
            "Open",
        ],
        [
            "Review the response: escalated to secondary (Not acknowledged within the SEV2 response target (15m))",
            "TBD",
            "2026-12-04",
            "Open",
        ],
        [
            "Add config validation in CI (zentinel test -c) so a bad config never reaches the proxy",
            "TBD",
            "2026-12-04",
            "Open",
        ],
    ]


def test_action_items_for_refusals_flapping_and_certificates() -> None:
    expiring = Finding(Category.CERTIFICATE_EXPIRING, Severity.SEV3, "certificate edge-tls expires in 5 days")
    st = lc.new_incident(expiring, now=T0, policy=POLICY).status
    st.remediations = [
        RemediationRecord(
            id="i/0/certificateRotation",
            action="certificateRotation",
            mode="NeedsApproval",
            state="Refused",
            finished_at=at(1),
            reason="issuer External: never rotated by the operator",
        ),
        RemediationRecord(id="i/1/restart", action="restart", mode="DryRun", state="DryRun", finished_at=at(2)),
    ]
    st.flap_count = 2
    st = lc.step(
        st,
        category=expiring.category,
        finding=None,
        human=lc.HumanInput(resolved_by="carol"),
        now=at(90),
        policy=POLICY,
        generation=1,
    ).status
    text = pm.render(wrap(st, Category.CERTIFICATE_EXPIRING), evidence_summary=None, now=at(100))
    actions = [row[0] for row in table_rows(section(text, "Action Items"))]
    assert actions == [
        "Confirm the root cause and complete this document",
        "Review why `certificateRotation` (NeedsApproval) was refused (issuer External: never rotated by the operator)",
        "Decide whether `restart` (DryRun) should run automatically next time (it stayed DryRun)",
        "Stop the flapping: the incident reopened 2 time(s) after resolving",
        "Automate certificate renewal and alert well before expiry (policy renewBeforeDays)",
    ]
    dues = {row[2] for row in table_rows(section(text, "Action Items"))}
    assert dues == {"2026-12-27"}  # SEV3: 30 days after resolution
    assert "- **What resolved it**: resolved by hand by carol" in section(text, "Root Cause")
    assert "- **Config-caused**: no sign of a config change" in section(text, "Root Cause")


@pytest.mark.parametrize("severity", [Severity.SEV1, Severity.SEV2])
def test_sev1_and_sev2_carry_a_due_date_48_hours_after_resolution(severity: Severity) -> None:
    finding = Finding(Category.HIGH_ERROR_RATE, severity, "High error rate: 40% of requests failing")
    st = lc.new_incident(finding, now=T0, policy=POLICY).status
    st = lc.step(
        st, category=finding.category, finding=None, human=lc.HumanInput(), now=at(1), policy=POLICY, generation=1
    ).status
    st = lc.step(
        st, category=finding.category, finding=None, human=lc.HumanInput(), now=at(7), policy=POLICY, generation=1
    ).status
    assert st.postmortem_due == at(7) + dt.timedelta(hours=48)
    text = pm.render(wrap(st, finding.category), evidence_summary=None, now=at(8))
    assert f"- **Post-mortem due**: 2026-11-29 10:09:00 UTC ({severity.value}: within 48 hours of resolution)" in text
    assert table_rows(section(text, "Action Items"))[0][2] == "2026-11-29"


@pytest.mark.parametrize("severity", [Severity.SEV3, Severity.SEV4])
def test_sev3_and_sev4_have_no_due_date(severity: Severity) -> None:
    finding = Finding(Category.PERFORMANCE_DEGRADATION, severity, "Elevated latency: p99 1.2s")
    st = lc.new_incident(finding, now=T0, policy=POLICY).status
    st = lc.step(
        st,
        category=finding.category,
        finding=None,
        human=lc.HumanInput(resolved_by="dan"),
        now=at(3),
        policy=POLICY,
        generation=1,
    ).status
    assert st.postmortem_due is None
    text = pm.render(wrap(st, finding.category), evidence_summary=None, now=at(8))
    assert "Post-mortem due" not in text
    assert f"- **Post-mortem**: optional for {severity.value} (required within 48 hours for SEV1/SEV2)" in text


def test_open_incident_renders_duration_so_far() -> None:
    st = lc.new_incident(CRASH, now=T0, policy=POLICY).status
    text = pm.render(wrap(st), evidence_summary=None, now=at(83))
    assert "- **Duration**: 1 hour 23 minutes so far (not resolved; since 2026-11-27 10:02:00 UTC)" in text
    assert "- **Post-mortem due**: 48 hours after resolution (SEV2)" in text


def test_peak_severity_is_shown_when_it_fell() -> None:
    st = lc.new_incident(
        CRASH.__class__(Category.PROCESS_CRASH, Severity.SEV1, "Proxy down"), now=T0, policy=POLICY
    ).status
    st = lc.step(
        st,
        category=Category.PROCESS_CRASH,
        finding=None,
        human=lc.HumanInput(severity_override=Severity.SEV3, severity_override_reason="one tenant only"),
        now=at(2),
        policy=POLICY,
        generation=1,
    ).status
    assert "- **Severity**: SEV3 (peak SEV1)" in pm.render(wrap(st), evidence_summary=None, now=at(3))


def test_a_resolved_incident_renders_the_same_whenever() -> None:
    inc = scripted()
    assert pm.render(inc, evidence_summary=SUMMARY, now=at(60)) == pm.render(
        inc, evidence_summary=SUMMARY, now=at(6000)
    )


def test_evidence_section() -> None:
    ev_text = section(pm.render(scripted(), evidence_summary=SUMMARY, now=at(60)), "Evidence")
    assert "kubectl get configmaps -n prod -l zentinel.io/incident=inc-20261127-001" in ev_text
    rows = table_rows(ev_text)
    assert rows[0] == ["detection", "2026-11-27 10:02:00", "`inc-20261127-001-ev-detection-00`", "12", "33.8 KiB", "-"]
    assert rows[1][0] == "resolution" and rows[1][1] == "-"
    assert "Kept until 2026-12-27 10:25:00 UTC" in ev_text
    none = section(pm.render(scripted(), evidence_summary=None, now=at(60)), "Evidence")
    assert "No evidence bundle is recorded for this incident." in none


def test_secrets_in_the_record_are_redacted_and_pipes_escaped() -> None:
    leaky = Finding(
        Category.HIGH_ERROR_RATE,
        Severity.SEV3,
        "High error rate | route api",
        evidence=("upstream said: Authorization: Bearer abc123planted", "GET /x?token=planted-token-9 503"),
    )
    st = lc.new_incident(leaky, now=T0, policy=POLICY).status
    text = pm.render(wrap(st, Category.HIGH_ERROR_RATE), evidence_summary=None, now=at(5))
    assert "abc123planted" not in text and "planted-token-9" not in text
    assert "High error rate \\| route api" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (42, "42 seconds"),
        (60, "1 minute"),
        (61, "1 minute 1 second"),
        (4980, "1 hour 23 minutes"),
        (7200, "2 hours 0 minutes"),
        (93600, "1 day 2 hours"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert pm.human_duration(dt.timedelta(seconds=seconds)) == text


def test_an_escalation_caused_by_a_refusal_is_one_action_item() -> None:
    st = lc.new_incident(CRASH, now=T0, policy=POLICY).status
    st.remediations = [
        RemediationRecord(
            id="i/0/configRollback",
            action="configRollback",
            mode="Automatic",
            state="Refused",
            finished_at=at(1),
            reason="no revision has been proven good yet",
        )
    ]
    st = lc.escalate_now(
        st,
        category=CRASH.category,
        reason="RemediationRefused",
        message="configRollback refused: no revision has been proven good yet",
        now=at(1),
        policy=POLICY,
        generation=1,
    ).status
    text = pm.render(wrap(st), evidence_summary=None, now=at(2))
    actions = [row[0] for row in table_rows(section(text, "Action Items"))]
    assert not any(a.startswith("Review the response") for a in actions)
    assert "Review why `configRollback` (Automatic) was refused (no revision has been proven good yet)" in actions


def test_evidence_deleted_after_its_retention() -> None:
    gone = {
        **SUMMARY,
        "bundles": [{**b, "deleted": True} for b in SUMMARY["bundles"]],
    }
    ev_text = section(pm.render(scripted(), evidence_summary=gone, now=at(60)), "Evidence")
    assert all(row[-1] == "deleted after its retention" for row in table_rows(ev_text))
    assert "Deleted at the end of the policy's evidence retention (2026-12-27 10:25:00 UTC)." in ev_text
