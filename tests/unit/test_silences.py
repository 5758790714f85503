"""Silences as pure rules: their state, what they match, what an incident records of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from support.fake_api import FakeApi
from zentinel_operator.core import lifecycle as lc
from zentinel_operator.core import silences as rules
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.models.common import Category, ConditionStatus, Severity
from zentinel_operator.models.incident import ZentinelIncident, ZentinelIncidentStatus
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec
from zentinel_operator.models.silence import SilenceState, ZentinelSilence

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
NS = "shop"
POLICY = ZentinelIncidentPolicySpec()


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def silence(
    name: str = "maint",
    *,
    ends: float = 60,
    starts: float | None = None,
    created: float = 0,
    namespace: str = NS,
    remediation: bool = False,
    **matchers: Any,
) -> ZentinelSilence:
    spec: dict[str, Any] = {
        "matchers": matchers or {"zentinel": "edge"},
        "endsAt": at(ends).isoformat(),
        "createdBy": "alice",
        "comment": "CHG-1234 proxy upgrade",
        "silenceRemediation": remediation,
    }
    if starts is not None:
        spec["startsAt"] = at(starts).isoformat()
    return ZentinelSilence.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": 1,
                "creationTimestamp": at(created).isoformat(),
            },
            "spec": spec,
        }
    )


def incident(
    *,
    zentinel: str = "edge",
    category: Category = Category.PROCESS_CRASH,
    severity: Severity = Severity.SEV3,
    status: ZentinelIncidentStatus | None = None,
) -> ZentinelIncident:
    st = (
        status
        or lc.new_incident(Finding(category=category, severity=severity, summary="s"), now=T0, policy=POLICY).status
    )
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": "inc-20261127-001", "namespace": NS},
            "spec": {"zentinelRef": {"name": zentinel}, "category": category.value, "fingerprint": "f"},
            "status": st.dump(),
        }
    )


# ------------------------------------------------------------------------------ state
def test_state_follows_the_clock_and_starts_at_creation_by_default() -> None:
    s = silence(created=5, ends=60)
    assert rules.starts_at(s) == at(5)
    assert [rules.state(s, at(m)) for m in (4, 5, 59, 60, 61)] == [
        SilenceState.PENDING,
        SilenceState.ACTIVE,
        SilenceState.ACTIVE,
        SilenceState.EXPIRED,
        SilenceState.EXPIRED,
    ]
    later = silence(starts=30, ends=60)
    assert rules.state(later, at(10)) == SilenceState.PENDING and rules.state(later, at(30)) == SilenceState.ACTIVE


def test_silence_status_has_the_state_the_start_and_a_ready_condition() -> None:
    s = silence(starts=10, ends=60)
    pending = rules.silence_status(s, at(0))
    assert pending.state == SilenceState.PENDING and pending.starts_at == at(10) and pending.observed_generation == 1
    (ready,) = pending.conditions
    assert (ready.type, ready.status, ready.reason) == ("Ready", ConditionStatus.TRUE, "Pending")
    s = s.model_copy(update={"status": pending})
    expired = rules.silence_status(s, at(61))
    (ready,) = expired.conditions
    assert expired.state == SilenceState.EXPIRED and ready.reason == "Expired"
    assert ready.message == "ended at 2026-11-27T04:00:00Z"
    assert ready.last_transition_time == at(0)  # still True: the transition time stays


def test_the_schema_refuses_what_a_silence_cannot_be() -> None:
    good = silence().dump()
    for bad in ({"comment": ""}, {"createdBy": ""}):
        with pytest.raises(ValidationError):
            ZentinelSilence.model_validate({**good, "spec": {**good["spec"], **bad}})
    spec = dict(good["spec"])
    spec.pop("endsAt")
    with pytest.raises(ValidationError, match="endsAt"):
        ZentinelSilence.model_validate({**good, "spec": spec})


# ------------------------------------------------------------------------------ matching
@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ({"zentinel": "edge"}, True),
        ({"zentinel": "other"}, False),
        ({"categories": ["ProcessCrash", "ConfigError"]}, True),
        ({"categories": ["ConfigError"]}, False),
        ({"severities": ["SEV3", "SEV4"]}, True),
        ({"severities": ["SEV1"]}, False),
        ({"zentinel": "edge", "categories": ["ProcessCrash"], "severities": ["SEV3"]}, True),
        ({"zentinel": "edge", "categories": ["ProcessCrash"], "severities": ["SEV1"]}, False),  # every one must
    ],
)
def test_every_matcher_given_must_match(matchers: dict[str, Any], expected: bool) -> None:
    assert rules.matches(silence(**matchers).spec.matchers, incident()) is expected


def test_holding_takes_active_silences_of_the_incidents_namespace_by_name() -> None:
    found = [
        silence("b-maint"),
        silence("a-maint", categories=["ProcessCrash"]),
        silence("elsewhere", namespace="other"),
        silence("later", starts=30),
        silence("over", ends=-1, created=-10),
        silence("not-me", zentinel="api"),
    ]
    assert [s.metadata.name for s in rules.holding(incident(), found, at(1))] == ["a-maint", "b-maint"]


# ------------------------------------------------------------------------------ recorded on the incident
def test_an_incident_records_each_silence_once_when_it_starts_and_stops_holding() -> None:
    inc = incident()
    s = silence(ends=30)
    st = rules.record_silences(inc, [s], now=at(1), policy=POLICY)
    assert st.silenced_by == ["maint"]
    assert st.timeline[-1].type == "Silenced"
    assert st.timeline[-1].message == (
        "Silenced by maint until 2026-11-27T03:30:00Z (pages held): CHG-1234 proxy upgrade (alice)"
    )
    inc = inc.model_copy(update={"status": st})
    assert rules.record_silences(inc, [s], now=at(2), policy=POLICY) is st  # nothing changed: nothing written
    assert rules.unsilenced_at(st) is None and rules.held(inc)
    st = rules.record_silences(inc, [s], now=at(31), policy=POLICY)
    assert st.silenced_by == []
    assert (st.timeline[-1].type, st.timeline[-1].message) == (
        "Unsilenced",
        "maint no longer holds it: it ended at 2026-11-27T03:30:00Z",
    )
    assert rules.unsilenced_at(st) == at(31)
    assert [e.type for e in st.timeline].count("Silenced") == 1


def test_the_timeline_says_why_a_silence_stopped_holding() -> None:
    inc = incident()
    inc = inc.model_copy(update={"status": rules.record_silences(inc, [silence()], now=at(1), policy=POLICY)})
    gone = rules.record_silences(inc, [], now=at(2), policy=POLICY)
    assert gone.timeline[-1].message == "maint no longer holds it: it was deleted"
    minor_only = silence(severities=["SEV3"])
    inc = incident()
    inc = inc.model_copy(update={"status": rules.record_silences(inc, [minor_only], now=at(1), policy=POLICY)})
    raised = inc.model_copy(update={"status": inc.status.model_copy(update={"severity": Severity.SEV1})})
    st = rules.record_silences(raised, [minor_only], now=at(2), policy=POLICY)
    assert st.silenced_by == [] and st.timeline[-1].message == (
        "maint no longer holds it: it no longer matches (ProcessCrash, SEV1)"
    )


def test_a_resolved_incident_keeps_what_held_it_at_resolution() -> None:
    inc = incident()
    inc = inc.model_copy(update={"status": rules.record_silences(inc, [silence(ends=30)], now=at(1), policy=POLICY)})
    resolved = inc.model_copy(update={"status": inc.status.model_copy(update={"resolved_at": at(10)})})
    assert rules.record_silences(resolved, [silence(ends=30)], now=at(40), policy=POLICY).silenced_by == ["maint"]
    assert rules.record_silences(resolved, [silence("new", ends=90)], now=at(40), policy=POLICY) is resolved.status


def test_remediation_is_held_only_by_a_silence_that_asks_for_it() -> None:
    pages_only, both = silence("pages"), silence("both", remediation=True)
    inc = incident()
    held = inc.model_copy(update={"status": rules.record_silences(inc, [pages_only, both], now=at(1), policy=POLICY)})
    assert rules.remediation_hold(held, [pages_only, both], at(1)) == (
        "silenced by both until 2026-11-27T04:00:00Z (silenceRemediation)"
    )
    assert rules.remediation_hold(held, [pages_only], at(1)) is None
    assert rules.remediation_hold(held, [pages_only, both], at(61)) is None  # expired


# ------------------------------------------------------------------------------ the silence's own status
def test_the_silence_status_is_written_only_when_it_changes() -> None:
    from zentinel_operator.handlers import silences as handler

    api = FakeApi()
    writes = api.status_patches
    body = silence(ends=30).dump()
    assert handler.reconcile(body, api=api, now=at(1))
    ((plural, ns, name, patch),) = writes
    assert (plural, ns, name, patch["state"]) == ("zentinelsilences", NS, "maint", "Active")
    body["status"] = patch
    assert not handler.reconcile(body, api=api, now=at(2)) and len(writes) == 1  # same state: no write
    assert handler.reconcile(body, api=api, now=at(31)) and writes[-1][3]["state"] == "Expired"
    assert [s.metadata.name for s in handler.parse_all([body, {"metadata": {"name": "broken"}, "spec": {}}])] == [
        "maint"
    ]
