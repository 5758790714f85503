from __future__ import annotations

import datetime as dt

import pytest

from zentinel_operator.core import lifecycle as lc
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.models.common import Category, ConditionStatus, Severity
from zentinel_operator.models.incident import IncidentState, ZentinelIncidentStatus
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
CAT = Category.HIGH_ERROR_RATE


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def finding(sev: Severity = Severity.SEV3, summary: str = "5xx rate 3%") -> Finding:
    return Finding(category=CAT, severity=sev, summary=summary, evidence=("5xx rate 3% over 60s",))


@pytest.fixture
def policy() -> ZentinelIncidentPolicySpec:
    return ZentinelIncidentPolicySpec.model_validate(
        {
            "receivers": [
                {"name": "oncall", "type": "Webhook", "url": "http://x"},
                {"name": "lead", "type": "Webhook", "url": "http://y"},
                {"name": "director", "type": "Webhook", "url": "http://z"},
            ],
            "escalation": {
                "sev1": {
                    "primary": ["oncall"],
                    "secondary": ["lead"],
                    "management": ["director"],
                    "managementAfter": "30m",
                },
                "sev2": {"primary": ["oncall"], "secondary": ["lead"]},
                "sev3": {"primary": ["oncall"]},
            },
            "lifecycle": {"resolveAfter": "5m", "reopenWindow": "1h", "timelineLimit": 10},
        }
    )


def step(
    st: ZentinelIncidentStatus,
    policy: ZentinelIncidentPolicySpec,
    when: dt.datetime,
    f: Finding | None,
    **human: object,
) -> lc.Outcome:
    return lc.step(
        st,
        category=CAT,
        finding=f,
        human=lc.HumanInput(**human),  # type: ignore[arg-type]
        now=when,
        policy=policy,
        generation=1,
    )


def cond(st: ZentinelIncidentStatus, type_: str) -> ConditionStatus | None:
    return lc.condition_status(st, type_)


def test_names_follow_the_runbook_ids() -> None:
    day = dt.date(2026, 11, 27)
    assert lc.next_incident_name(day, []) == "inc-20261127-001"
    assert lc.next_incident_name(day, ["inc-20261127-001", "inc-20261127-007", "inc-20261126-042"]) == (
        "inc-20261127-008"
    )
    assert lc.name_after("inc-20261127-008") == "inc-20261127-009"
    assert lc.next_incident_name(day, ["inc-20261127-999"]) == "inc-20261127-1000"


def test_new_incident_pages_primary_and_sets_conditions(policy: ZentinelIncidentPolicySpec) -> None:
    out = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy)
    st = out.status
    assert st.state == IncidentState.DETECTED and st.severity == Severity.SEV2 and st.count == 1
    assert st.response_due_at == at(15)  # runbook: SEV2 < 15 min
    assert cond(st, lc.ACKNOWLEDGED) == ConditionStatus.FALSE
    assert cond(st, lc.RESOLVED) == ConditionStatus.FALSE
    assert cond(st, lc.ESCALATED) == ConditionStatus.FALSE
    assert [n.event for n in out.notifications] == ["trigger"]
    assert out.notifications[0].receivers == ("oncall",)
    assert [m.name for m in out.metrics] == ["opened"]
    assert st.timeline[0].type == "Detected"


@pytest.mark.parametrize(
    ("sev", "minutes"), [(Severity.SEV1, 5), (Severity.SEV2, 15), (Severity.SEV3, 60), (Severity.SEV4, 240)]
)
def test_default_response_targets_are_the_runbook(sev: Severity, minutes: int) -> None:
    out = lc.new_incident(finding(sev), now=T0, policy=ZentinelIncidentPolicySpec())
    assert out.status.response_due_at == at(minutes)


def test_acknowledgement_records_person_and_mtta(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(), now=T0, policy=policy).status
    out = step(st, policy, at(3), finding(), acknowledged_by="alice")
    assert out.status.acknowledged_by == "alice" and out.status.state == IncidentState.ACKNOWLEDGED
    c = lc.get_condition(out.status.conditions, lc.ACKNOWLEDGED)
    assert c is not None and c.status == ConditionStatus.TRUE and "alice" in c.message
    assert c.last_transition_time == at(3)
    mtta = [m for m in out.metrics if m.name == "acknowledged"]
    assert mtta and mtta[0].seconds == 180
    # A second pass changes nothing about the acknowledgement.
    again = step(out.status, policy, at(4), finding(), acknowledged_by="alice")
    assert not [m for m in again.metrics if m.name == "acknowledged"]
    c2 = lc.get_condition(again.status.conditions, lc.ACKNOWLEDGED)
    assert c2 is not None and c2.last_transition_time == at(3)


def test_unacknowledged_past_target_escalates_to_secondary_once(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    early = step(st, policy, at(14), finding(Severity.SEV2))
    assert cond(early.status, lc.ESCALATED) == ConditionStatus.FALSE and not early.notifications
    late = step(early.status, policy, at(15), finding(Severity.SEV2))
    assert cond(late.status, lc.ESCALATED) == ConditionStatus.TRUE
    assert late.status.escalation_level == "secondary"
    assert [(n.event, n.level, n.receivers) for n in late.notifications] == [("escalate", "secondary", ("lead",))]
    again = step(late.status, policy, at(16), finding(Severity.SEV2))
    assert not again.notifications


def test_acknowledged_incident_does_not_escalate(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    st = step(st, policy, at(1), finding(Severity.SEV2), acknowledged_by="bob").status
    out = step(st, policy, at(20), finding(Severity.SEV2))
    assert cond(out.status, lc.ESCALATED) == ConditionStatus.FALSE


def test_sev3_without_secondary_repages_primary(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV3), now=T0, policy=policy).status
    out = step(st, policy, at(61), finding(Severity.SEV3))
    assert out.notifications[0].receivers == ("oncall",)
    assert "no secondary" in out.notifications[0].message


def test_sev1_reaches_management_after_30_minutes(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV1), now=T0, policy=policy).status
    st = step(st, policy, at(2), finding(Severity.SEV1), acknowledged_by="carol").status
    before = step(st, policy, at(29), finding(Severity.SEV1))
    assert before.status.escalation_level == "primary"
    after = step(before.status, policy, at(30), finding(Severity.SEV1))
    assert after.status.escalation_level == "management"
    assert [(n.level, n.receivers) for n in after.notifications] == [("management", ("director",))]
    assert lc.get_condition(after.status.conditions, lc.ESCALATED).reason == "ManagementNotified"  # type: ignore[union-attr]


def test_severity_rises_at_once_and_tightens_the_response_target(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV3), now=T0, policy=policy).status
    out = step(st, policy, at(10), finding(Severity.SEV1, "5xx rate 97%"))
    assert out.status.severity == Severity.SEV1
    assert out.status.response_due_at == at(15)
    assert "raised" in (out.status.severity_reason or "")
    assert any(e.type == "SeverityRaised" for e in out.status.timeline)


def test_severity_falls_only_after_holding_with_a_recorded_reason(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    st = step(st, policy, at(1), finding(Severity.SEV3)).status
    assert st.severity == Severity.SEV2 and st.candidate_severity == Severity.SEV3
    st = step(st, policy, at(4), finding(Severity.SEV3)).status
    assert st.severity == Severity.SEV2
    # A bounce back resets the clock.
    st = step(st, policy, at(5), finding(Severity.SEV2)).status
    assert st.candidate_severity is None
    st = step(st, policy, at(6), finding(Severity.SEV3)).status
    st = step(st, policy, at(11), finding(Severity.SEV3)).status
    assert st.severity == Severity.SEV3
    lowered = [e for e in st.timeline if e.type == "SeverityLowered"]
    assert lowered and "for 5m" in lowered[0].message
    assert (st.severity_reason or "").startswith("lowered:")


def test_override_needs_a_reason(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    ignored = step(st, policy, at(1), finding(Severity.SEV2), severity_override=Severity.SEV4)
    assert ignored.status.severity == Severity.SEV2
    applied = step(
        st,
        policy,
        at(1),
        finding(Severity.SEV2),
        severity_override=Severity.SEV4,
        severity_override_reason="internal traffic only",
    )
    assert applied.status.severity == Severity.SEV4
    assert "internal traffic only" in (applied.status.severity_reason or "")


def test_resolves_after_signals_stay_healthy(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    st = step(st, policy, at(1), None).status
    assert st.state == IncidentState.MONITORING and cond(st, lc.MITIGATED) == ConditionStatus.TRUE
    st = step(st, policy, at(5), None).status
    assert st.resolved_at is None
    out = step(st, policy, at(6), None)
    assert out.status.state == IncidentState.RESOLVED and out.status.resolved_by == "operator"
    assert cond(out.status, lc.RESOLVED) == ConditionStatus.TRUE
    mttr = [m for m in out.metrics if m.name == "resolved"]
    assert mttr and mttr[0].seconds == 360
    assert out.status.postmortem_due == at(6) + dt.timedelta(hours=48)
    assert [n.event for n in out.notifications] == ["resolve"]


def test_recurrence_while_open_counts_and_clears_monitoring(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(), now=T0, policy=policy).status
    st = step(st, policy, at(1), finding()).status
    assert st.count == 1  # a continuous signal is not a new occurrence
    st = step(st, policy, at(2), None).status
    st = step(st, policy, at(3), finding()).status
    assert st.count == 2 and st.healthy_since is None and st.state == IncidentState.DETECTED
    st = step(
        st,
        policy,
        at(4),
        finding(),
    ).status
    st = lc.step(
        st,
        category=CAT,
        finding=finding(),
        human=lc.HumanInput(),
        now=at(5),
        policy=policy,
        generation=1,
        new_occurrence=True,
    ).status
    assert st.count == 3


def test_manual_resolution(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(), now=T0, policy=policy).status
    out = step(st, policy, at(2), finding(), resolved_by="dave", resolution_note="upstream fixed")
    assert out.status.resolved_by == "dave" and out.status.state == IncidentState.RESOLVED
    c = lc.get_condition(out.status.conditions, lc.RESOLVED)
    assert c is not None and c.reason == "ResolvedByUser" and "upstream fixed" in c.message
    assert out.status.postmortem_due is None  # SEV3: no post-mortem due date


def test_resolved_incident_reopens_within_window_and_counts_flapping(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(), now=T0, policy=policy).status
    st = step(st, policy, at(1), None).status
    st = step(st, policy, at(7), None).status
    assert st.resolved_at == at(7)
    assert lc.can_reopen(st, now=at(30), policy=policy)
    assert not lc.can_reopen(st, now=at(68), policy=policy)
    out = step(st, policy, at(30), finding())
    assert out.status.resolved_at is None and out.status.flap_count == 1 and out.status.count == 2
    assert cond(out.status, lc.RESOLVED) == ConditionStatus.FALSE
    assert lc.get_condition(out.status.conditions, lc.RESOLVED).reason == "Reopened"  # type: ignore[union-attr]
    late = step(st, policy, at(90), finding())
    assert late.status.resolved_at == at(7)  # outside the window: the caller opens a new incident


def test_timeline_is_bounded_and_keeps_the_detection(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(), now=T0, policy=policy).status
    for i in range(30):
        st = step(st, policy, at(i * 0.1 + 0.1), None if i % 2 else finding()).status
    assert len(st.timeline) == 10
    assert st.timeline[0].type == "Detected"


def test_level_based_same_inputs_same_output(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    a = step(st, policy, at(16), finding(Severity.SEV2))
    b = step(st, policy, at(16), finding(Severity.SEV2))
    assert a.status == b.status and a.notifications == b.notifications


def test_unknown_signal_changes_nothing_but_still_escalates(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(Severity.SEV2), now=T0, policy=policy).status
    out = lc.step(
        st,
        category=CAT,
        finding=None,
        human=lc.HumanInput(),
        now=at(16),
        policy=policy,
        generation=1,
        signal_known=False,
    )
    assert out.status.healthy_since is None and out.status.state == IncidentState.DETECTED
    assert out.status.escalation_level == "secondary"
