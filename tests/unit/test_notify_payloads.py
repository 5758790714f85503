"""Notification bodies, the deliveries an incident's status calls for, and the HTTP sender.

Incidents are produced by the real lifecycle functions; the sender is exercised against real local
aiohttp servers (no mocked sessions).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from support.operator import free_port
from zentinel_operator.core import lifecycle as lc
from zentinel_operator.core import notify_payloads as np
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.models.common import Category, SecretKeyRef, Severity
from zentinel_operator.models.incident import DeliveryRecord, ZentinelIncident, ZentinelIncidentStatus
from zentinel_operator.models.policy import Receiver, ReceiverType, ZentinelIncidentPolicySpec
from zentinel_operator.notify import receivers as rx
from zentinel_operator.notify.dispatch import Dispatcher, merge_records

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
CAT = Category.PROCESS_CRASH
NS = "shop"


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def finding(sev: Severity = Severity.SEV2, summary: str = "2 of 3 pods crash-looping") -> Finding:
    return Finding(category=CAT, severity=sev, summary=summary, evidence=("edge-0: CrashLoopBackOff, 5 restarts",))


@pytest.fixture
def policy() -> ZentinelIncidentPolicySpec:
    return ZentinelIncidentPolicySpec.model_validate(
        {
            "receivers": [
                {"name": "oncall", "type": "PagerDuty", "secretRef": {"name": "pd", "key": "routing-key"}},
                {"name": "chat", "type": "Slack", "secretRef": {"name": "slack", "key": "url"}},
                {"name": "lead", "type": "Webhook", "url": "http://lead.example/hook"},
                {"name": "director", "type": "Alertmanager", "url": "http://am.example:9093"},
            ],
            "escalation": {
                "sev1": {
                    "primary": ["oncall", "chat"],
                    "secondary": ["lead"],
                    "management": ["director"],
                    "managementAfter": "30m",
                },
                "sev2": {"primary": ["oncall", "chat"], "secondary": ["lead"]},
                "sev3": {"primary": ["chat", "ghost"]},
            },
            "lifecycle": {"resolveAfter": "5m", "reopenWindow": "1h"},
        }
    )


def incident(status: ZentinelIncidentStatus, name: str = "inc-20261127-001") -> ZentinelIncident:
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": name, "namespace": NS, "uid": "u-1"},
            "spec": {"zentinelRef": {"name": "edge"}, "category": CAT.value, "fingerprint": f"edge/{CAT.value}"},
            "status": status.dump(),
        }
    )


def step(
    st: ZentinelIncidentStatus, policy: ZentinelIncidentPolicySpec, when: dt.datetime, f: Finding | None, **human: Any
) -> ZentinelIncidentStatus:
    return lc.step(
        st, category=CAT, finding=f, human=lc.HumanInput(**human), now=when, policy=policy, generation=1
    ).status


def detected(policy: ZentinelIncidentPolicySpec, sev: Severity = Severity.SEV2) -> ZentinelIncidentStatus:
    return lc.new_incident(finding(sev), now=T0, policy=policy).status


def full_story(policy: ZentinelIncidentPolicySpec) -> ZentinelIncidentStatus:
    """SEV2 detected, escalated at 15 min, acknowledged at 20, healthy at 25, resolved at 30."""
    st = detected(policy)
    st = step(st, policy, at(15), finding())
    st = step(st, policy, at(20), finding(), acknowledged_by="alice")
    st = step(st, policy, at(25), None)
    return step(st, policy, at(30), None)


# -------------------------------------------------------------------------- PagerDuty
@pytest.mark.parametrize(
    ("sev", "word"),
    [(Severity.SEV1, "critical"), (Severity.SEV2, "error"), (Severity.SEV3, "warning"), (Severity.SEV4, "info")],
)
def test_pagerduty_severity_mapping(policy: ZentinelIncidentPolicySpec, sev: Severity, word: str) -> None:
    inc = incident(detected(policy, sev))
    body = np.pagerduty_payload(inc, "trigger", "primary", routing_key="R0UT1NG")
    assert body["payload"]["severity"] == word


def test_pagerduty_one_dedup_key_across_trigger_acknowledge_resolve(policy: ZentinelIncidentPolicySpec) -> None:
    st = detected(policy)
    trig = np.pagerduty_payload(incident(st), "trigger", "primary", routing_key="R0UT1NG")
    st = step(st, policy, at(2), finding(), acknowledged_by="alice")
    ack = np.pagerduty_payload(incident(st), "acknowledge", "primary", routing_key="R0UT1NG")
    st = step(step(st, policy, at(3), None), policy, at(9), None)
    res = np.pagerduty_payload(incident(st), "resolve", "primary", routing_key="R0UT1NG")
    assert {trig["dedup_key"], ack["dedup_key"], res["dedup_key"]} == {"zentinel/shop/inc-20261127-001"}
    assert [trig["event_action"], ack["event_action"], res["event_action"]] == ["trigger", "acknowledge", "resolve"]
    assert ack == {"routing_key": "R0UT1NG", "event_action": "acknowledge", "dedup_key": trig["dedup_key"]}
    assert res == {"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": trig["dedup_key"]}
    p = trig["payload"]
    assert trig["routing_key"] == "R0UT1NG"
    assert p["summary"].startswith("[SEV2] ProcessCrash on shop/edge (inc-20261127-001) triggered")
    assert "2 of 3 pods crash-looping" in p["summary"]
    assert p["source"] == "shop/edge" and p["component"] == "edge" and p["group"] == "shop"
    assert p["class"] == "ProcessCrash" and p["timestamp"] == "2026-11-27T03:00:00Z"
    details = p["custom_details"]
    assert details["incident"] == "inc-20261127-001" and details["severity"] == "SEV2"
    assert details["kubectl"] == "kubectl get zinc inc-20261127-001 -n shop"
    assert details["evidence"] == ["edge-0: CrashLoopBackOff, 5 restarts"]


def test_pagerduty_escalation_is_a_trigger_on_the_same_key(policy: ZentinelIncidentPolicySpec) -> None:
    st = step(detected(policy), policy, at(15), finding())
    body = np.pagerduty_payload(incident(st), "escalate", "secondary", routing_key="k")
    assert body["event_action"] == "trigger" and body["dedup_key"] == "zentinel/shop/inc-20261127-001"
    assert (
        "Escalated to secondary: Not acknowledged within the SEV2 response target (15m)" in body["payload"]["summary"]
    )


# ------------------------------------------------------------------------------ Slack
def test_slack_message_has_text_and_blocks_with_the_facts(policy: ZentinelIncidentPolicySpec) -> None:
    st = lc.new_incident(finding(summary="p99 <2s> & rising"), now=T0, policy=policy).status
    body = np.slack_payload(incident(st), "trigger", "primary")
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":rotating_light: [SEV2] ProcessCrash on shop/edge (inc-20261127-001) triggered")
    assert "p99 &lt;2s&gt; &amp; rising" in body["text"]
    blocks = body["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
    assert blocks[0]["text"]["type"] == "plain_text" and len(blocks[0]["text"]["text"]) <= 150
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[2]["fields"]}
    assert fields == {
        "*Severity*": "SEV2",
        "*Category*": "ProcessCrash",
        "*Zentinel*": "shop/edge",
        "*State*": "Detected",
        "*Level*": "primary",
        "*Acknowledged by*": "-",
    }
    assert "p99 &lt;2s&gt; &amp; rising" in blocks[3]["text"]["text"]
    assert blocks[4]["elements"][0]["text"] == "`kubectl get zinc inc-20261127-001 -n shop`"


def test_slack_event_lines(policy: ZentinelIncidentPolicySpec) -> None:
    st = step(detected(policy), policy, at(15), finding())
    esc = np.slack_payload(incident(st), "escalate", "secondary")
    assert esc["text"].startswith(":arrow_double_up:") and "Escalated to secondary" in esc["text"]
    st = step(st, policy, at(20), finding(), acknowledged_by="alice")
    ack = np.slack_payload(incident(st), "acknowledge", "primary")
    assert "Acknowledged by alice" in ack["text"]
    assert {"type": "mrkdwn", "text": "*State*\nAcknowledged"} in ack["blocks"][2]["fields"]
    res = np.slack_payload(incident(full_story(policy)), "resolve", "primary")
    assert (
        res["text"].startswith(":white_check_mark:") and "Resolved by operator: Signals healthy for 5m" in res["text"]
    )


# ---------------------------------------------------------------------------- webhook
def test_webhook_schema_version_1(policy: ZentinelIncidentPolicySpec) -> None:
    st = step(detected(policy), policy, at(15), finding())
    body = np.webhook_payload(incident(st), "escalate", "secondary", key="K")
    assert set(body) == {"version", "event", "level", "key", "incident", "escalation"}
    assert (body["version"], body["event"], body["level"], body["key"]) == ("1", "escalate", "secondary", "K")
    assert body["escalation"] == {
        "level": "secondary",
        "at": "2026-11-27T03:15:00Z",
        "reason": "Not acknowledged within the SEV2 response target (15m)",
    }
    inc = body["incident"]
    assert inc == {
        "name": "inc-20261127-001",
        "namespace": "shop",
        "zentinel": "edge",
        "category": "ProcessCrash",
        "source": "operator",
        "fingerprint": "edge/ProcessCrash",
        "severity": "SEV2",
        "state": "Detected",
        "summary": "2 of 3 pods crash-looping",
        "severityReason": "detected: 2 of 3 pods crash-looping",
        "count": 1,
        "flapCount": 0,
        "detectedAt": "2026-11-27T03:00:00Z",
        "lastSeenAt": "2026-11-27T03:15:00Z",
        "acknowledgedAt": None,
        "acknowledgedBy": None,
        "resolvedAt": None,
        "resolvedBy": None,
        "escalationLevel": "secondary",
        "kubectl": "kubectl get zinc inc-20261127-001 -n shop",
    }
    json.dumps(body)  # plain JSON all the way down
    trig = np.webhook_payload(incident(detected(policy)), "trigger", "primary", key="K2")
    assert trig["escalation"] is None and set(trig["incident"]) == set(inc)


# ----------------------------------------------------------------------- Alertmanager
def test_alertmanager_firing_then_resolved(policy: ZentinelIncidentPolicySpec) -> None:
    firing = np.alertmanager_payload(incident(detected(policy)), "trigger", "primary", now=at(1))
    assert len(firing) == 1
    alert = firing[0]
    assert alert["labels"] == {
        "alertname": "ZentinelIncident",
        "namespace": "shop",
        "zentinel": "edge",
        "incident": "inc-20261127-001",
        "category": "ProcessCrash",
        "severity": "error",
    }
    assert alert["startsAt"] == "2026-11-27T03:00:00Z" and "endsAt" not in alert
    assert alert["annotations"]["summary"] == (
        "[SEV2] ProcessCrash on shop/edge (inc-20261127-001): 2 of 3 pods crash-looping"
    )
    assert "kubectl get zinc inc-20261127-001 -n shop" in alert["annotations"]["description"]
    assert alert["generatorURL"] == (
        "https://kubernetes.default.svc/apis/zentinel.io/v1alpha1/namespaces/shop/zentinelincidents/inc-20261127-001"
    )
    resolved = np.alertmanager_payload(incident(full_story(policy)), "resolve", "primary", now=at(31))
    assert [a["endsAt"] for a in resolved] == ["2026-11-27T03:30:00Z"]
    assert resolved[0]["labels"] == alert["labels"]
    assert resolved[0]["annotations"]["acknowledged_by"] == "alice"


def test_alertmanager_resolves_the_alert_of_an_earlier_severity(policy: ZentinelIncidentPolicySpec) -> None:
    st = step(detected(policy, Severity.SEV3), policy, at(2), finding(Severity.SEV1, "all pods down"))
    assert st.severity == Severity.SEV1
    alerts = np.alertmanager_payload(incident(st), "trigger", "primary", now=at(2))
    assert [(a["labels"]["severity"], a.get("endsAt")) for a in alerts] == [
        ("critical", None),
        ("warning", "2026-11-27T03:02:00Z"),
    ]


def test_build_payload_dispatches_and_refuses_nonsense(policy: ZentinelIncidentPolicySpec) -> None:
    inc = incident(detected(policy))
    assert "blocks" in np.build_payload(ReceiverType.SLACK, inc, "trigger", "primary", key="k", now=T0)
    assert isinstance(np.build_payload(ReceiverType.ALERTMANAGER, inc, "trigger", "primary", key="k", now=T0), list)
    assert np.build_payload(ReceiverType.WEBHOOK, inc, "trigger", "primary", key="k", now=T0)["key"] == "k"
    with pytest.raises(ValueError, match="routing key"):
        np.build_payload(ReceiverType.PAGERDUTY, inc, "trigger", "primary", key="k", now=T0)
    with pytest.raises(ValueError, match="unknown event"):
        np.build_payload(ReceiverType.SLACK, inc, "page", "primary", key="k", now=T0)


# ---------------------------------------------------------------- expected deliveries
def plan(inc: ZentinelIncident, policy: ZentinelIncidentPolicySpec) -> list[tuple[str, str, str]]:
    return [(p.event, p.level, p.receiver) for p in np.expected_deliveries(inc, policy)]


def test_detection_pages_the_primary(policy: ZentinelIncidentPolicySpec) -> None:
    planned = np.expected_deliveries(incident(detected(policy)), policy)
    assert [(p.event, p.level, p.receiver) for p in planned] == [
        ("trigger", "primary", "oncall"),
        ("trigger", "primary", "chat"),
    ]
    assert planned[0].key == "shop/inc-20261127-001/trigger/primary/oncall/20261127T030000Z"
    assert planned[0].at == T0


def test_whole_story_in_order_with_first_levels(policy: ZentinelIncidentPolicySpec) -> None:
    assert plan(incident(full_story(policy)), policy) == [
        ("trigger", "primary", "oncall"),
        ("trigger", "primary", "chat"),
        ("escalate", "secondary", "lead"),
        ("acknowledge", "primary", "oncall"),
        ("acknowledge", "primary", "chat"),
        ("acknowledge", "secondary", "lead"),
        ("resolve", "primary", "oncall"),
        ("resolve", "primary", "chat"),
        ("resolve", "secondary", "lead"),
    ]


def test_keys_are_stable_unique_and_survive_a_round_trip(policy: ZentinelIncidentPolicySpec) -> None:
    inc = incident(full_story(policy))
    first = np.expected_deliveries(inc, policy)
    again = np.expected_deliveries(ZentinelIncident.model_validate(json.loads(json.dumps(inc.dump()))), policy)
    assert [p.key for p in first] == [p.key for p in again]
    assert len({p.key for p in first}) == len(first)
    # Per-receiver order numbers count up from 0.
    assert [p.order for p in first if p.receiver == "lead"] == [0, 1, 2]


def test_management_gets_its_escalation_and_the_resolution(policy: ZentinelIncidentPolicySpec) -> None:
    st = detected(policy, Severity.SEV1)
    st = step(st, policy, at(1), finding(Severity.SEV1), acknowledged_by="bob")
    st = step(st, policy, at(31), finding(Severity.SEV1))
    assert st.escalation_level == "management"
    got = plan(incident(st), policy)
    assert got == [
        ("trigger", "primary", "oncall"),
        ("trigger", "primary", "chat"),
        ("acknowledge", "primary", "oncall"),
        ("acknowledge", "primary", "chat"),
        ("escalate", "management", "director"),
    ]
    st = step(step(st, policy, at(32), None), policy, at(40), None)
    assert plan(incident(st), policy)[-3:] == [
        ("resolve", "primary", "oncall"),
        ("resolve", "primary", "chat"),
        ("resolve", "management", "director"),
    ]


def test_raised_severity_retriggers_the_new_primary(policy: ZentinelIncidentPolicySpec) -> None:
    st = detected(policy, Severity.SEV3)  # primary: chat (and an undefined receiver, left out)
    assert plan(incident(st), policy) == [("trigger", "primary", "chat")]
    st = step(st, policy, at(2), finding(Severity.SEV1, "all pods down"))
    planned = np.expected_deliveries(incident(st), policy)
    assert [(p.event, p.receiver, p.at) for p in planned] == [
        ("trigger", "chat", T0),
        ("trigger", "oncall", at(2)),
        ("trigger", "chat", at(2)),
    ]
    assert planned[1].key.endswith("/trigger/primary/oncall/20261127T030200Z")


def test_reopening_retriggers_and_resolves_again(policy: ZentinelIncidentPolicySpec) -> None:
    st = full_story(policy)
    st = step(st, policy, at(40), finding())
    assert st.flap_count == 1 and st.resolved_at is None
    got = np.expected_deliveries(incident(st), policy)
    reopen = [p for p in got if p.at == at(40)]
    assert [(p.event, p.receiver) for p in reopen] == [("trigger", "oncall"), ("trigger", "chat")]
    st = step(step(st, policy, at(41), None), policy, at(47), None)
    resolves = [p for p in np.expected_deliveries(incident(st), policy) if p.event == "resolve"]
    assert sorted({p.at for p in resolves}) == [at(30), at(47)]


def test_nothing_owed_without_receivers() -> None:
    bare = ZentinelIncidentPolicySpec()
    st = lc.new_incident(finding(), now=T0, policy=bare).status
    assert np.expected_deliveries(incident(st), bare) == []


# ------------------------------------------------ a receiver added to the policy (issue 14 item 5)
def with_receivers(policy: ZentinelIncidentPolicySpec, **escalation: Any) -> ZentinelIncidentPolicySpec:
    return ZentinelIncidentPolicySpec.model_validate(
        {**policy.dump(), "escalation": {**policy.dump()["escalation"], **escalation}}
    )


def test_a_receiver_added_to_the_policy_gets_the_incident_nobody_was_paged_for(
    policy: ZentinelIncidentPolicySpec,
) -> None:
    bare = ZentinelIncidentPolicySpec()
    st = lc.new_incident(finding(), now=T0, policy=bare).status  # no receivers at all: nobody paged
    assert np.expected_deliveries(incident(st), bare) == []
    # The policy gains receivers: the next pass pages the SEV2 primary for the open incident, once.
    out = lc.step(st, category=CAT, finding=finding(), human=lc.HumanInput(), now=at(3), policy=policy, generation=1)
    assert [(n.event, n.level, n.receivers) for n in out.notifications] == [("trigger", "primary", ("oncall", "chat"))]
    assert out.status.escalations[-1].receivers == ["oncall", "chat"]
    assert out.status.timeline[-1].type == "Paged"
    assert "oncall, chat added to the policy and nobody paged yet" in out.status.timeline[-1].message
    planned = np.expected_deliveries(incident(out.status), policy)
    assert [(p.event, p.receiver, p.at) for p in planned] == [("trigger", "oncall", at(3)), ("trigger", "chat", at(3))]
    again = step(out.status, policy, at(4), finding())
    assert again.escalations == out.status.escalations  # not paged twice
    # The acknowledgement then reaches the receivers paged, as for any page (and stops the escalation).
    st = step(again, policy, at(20), finding(), acknowledged_by="alice")
    assert plan(incident(st), policy) == [
        ("trigger", "primary", "oncall"),
        ("trigger", "primary", "chat"),
        ("acknowledge", "primary", "oncall"),
        ("acknowledge", "primary", "chat"),
    ]


def test_an_incident_someone_was_paged_for_is_left_to_them(policy: ZentinelIncidentPolicySpec) -> None:
    """Decided: a receiver added later gets the later pages of an incident already paged, not this page."""
    only_chat = with_receivers(policy, sev2={"primary": ["chat"], "secondary": ["lead"]})
    st = lc.new_incident(finding(), now=T0, policy=only_chat).status
    delivered = DeliveryRecord(receiver="chat", event="trigger", key="k", state="Delivered", attempts=1, at=T0)
    st = st.model_copy(update={"deliveries": [delivered]})
    st = step(st, policy, at(3), finding())  # oncall now in the primary too
    assert [e.receivers for e in st.escalations] == [["chat"]]
    # While the only page is not delivered yet (failed for good, say), the added receiver is paged.
    failed = delivered.model_copy(update={"state": "Failed"})
    st = lc.new_incident(finding(), now=T0, policy=only_chat).status.model_copy(update={"deliveries": [failed]})
    st = step(st, policy, at(3), finding())
    assert [e.receivers for e in st.escalations] == [["chat"], ["oncall"]]


def test_an_acknowledged_incident_pages_no_added_receiver(policy: ZentinelIncidentPolicySpec) -> None:
    bare = ZentinelIncidentPolicySpec()
    st = lc.new_incident(finding(), now=T0, policy=bare).status
    st = step(st, bare, at(1), finding(), acknowledged_by="alice")
    st = step(st, policy, at(3), finding())
    assert [e.receivers for e in st.escalations] == [[]]


def test_an_added_secondary_gets_the_escalation_it_covers(policy: ZentinelIncidentPolicySpec) -> None:
    primary_only = with_receivers(policy, sev2={"primary": ["oncall"]})
    st = lc.new_incident(finding(), now=T0, policy=primary_only).status
    st = step(st, primary_only, at(16), finding())  # escalated: no secondary, primary paged again
    assert st.escalation_level == "secondary"
    failed = [
        DeliveryRecord(receiver="oncall", event=e, key=e, state="Failed", attempts=6, at=T0)
        for e in ("trigger", "escalate")
    ]
    st = st.model_copy(update={"deliveries": failed})
    st = step(st, policy, at(20), finding())  # lead added as secondary; nobody got anything
    assert [(e.level, e.receivers) for e in st.escalations][-1] == ("secondary", ["lead"])
    assert ("escalate", "secondary", "lead") in plan(incident(st), policy)


# ------------------------------------------------------------------ Slack buttons (issue 14 item 5)
def test_slack_buttons_name_the_incident_and_follow_its_state(policy: ZentinelIncidentPolicySpec) -> None:
    st = detected(policy)
    plain = np.slack_payload(incident(st), "trigger", "primary")
    assert "actions" not in [b["type"] for b in plain["blocks"]]  # no buttons unless the operator takes presses
    body = np.slack_payload(incident(st), "trigger", "primary", buttons=True)
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section", "actions", "context"]
    buttons = body["blocks"][4]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (np.SLACK_ACK_ACTION, "shop/inc-20261127-001"),
        (np.SLACK_RESOLVE_ACTION, "shop/inc-20261127-001"),
    ]
    assert buttons[1]["confirm"]["confirm"]["text"] == "Resolve"
    acked = step(st, policy, at(2), finding(), acknowledged_by="alice")
    for event in ("acknowledge", "escalate"):
        got = np.slack_payload(incident(acked), event, "primary", buttons=True)["blocks"][4]["elements"]
        assert [b["action_id"] for b in got] == [np.SLACK_RESOLVE_ACTION]
    done = np.slack_payload(incident(full_story(policy)), "resolve", "primary", buttons=True)
    assert "actions" not in [b["type"] for b in done["blocks"]]
    built = np.build_payload(
        ReceiverType.SLACK, incident(st), "trigger", "primary", key="k", now=T0, slack_buttons=True
    )
    assert built == body


def test_dedup_key_round_trips() -> None:
    inc = incident(ZentinelIncidentStatus())
    assert np.parse_dedup_key(np.dedup_key(inc)) == ("shop", "inc-20261127-001")
    assert np.parse_dedup_key("shop/inc-20261127-001") is None
    assert np.parse_dedup_key("zentinel/shop/a/b") is None


def test_restarted_operator_sends_exactly_what_is_missing(policy: ZentinelIncidentPolicySpec) -> None:
    """What status.deliveries marks Delivered is never planned again; the rest is."""
    st = full_story(policy)
    planned = np.expected_deliveries(incident(st), policy)
    done = [DeliveryRecord(receiver=p.receiver, event=p.event, key=p.key, state="Delivered") for p in planned[:4]]
    st.deliveries = done
    delivered = {r.key for r in incident(st).status.deliveries if r.state == "Delivered"}
    missing = [p for p in np.expected_deliveries(incident(st), policy) if p.key not in delivered]
    assert [p.key for p in missing] == [p.key for p in planned[4:]]


def test_merge_records_never_downgrades_and_is_bounded() -> None:
    a = DeliveryRecord(receiver="r", event="trigger", key="a", state="Delivered", attempts=1)
    a_late = DeliveryRecord(receiver="r", event="trigger", key="a", state="Pending", attempts=5)
    b = DeliveryRecord(receiver="r", event="trigger", key="b", state="Pending", attempts=1)
    b2 = DeliveryRecord(receiver="r", event="trigger", key="b", state="Delivered", attempts=2)
    merged = merge_records([a, b], [a_late, b2])
    assert [(r.key, r.state, r.attempts) for r in merged] == [("a", "Delivered", 1), ("b", "Delivered", 2)]
    many = [
        DeliveryRecord(receiver="r", event="trigger", key=f"k{i}", state="Delivered", at=T0 + dt.timedelta(seconds=i))
        for i in range(400)
    ]
    kept = merge_records(many, [])
    assert len(kept) == 300 and kept[0].key == "k100"


# ---------------------------------------------------------------------- the sender
def test_redact_url_keeps_only_scheme_and_host() -> None:
    assert rx.redact_url("https://hooks.slack.com/services/T0/B0/s3cr3t?x=1") == "https://hooks.slack.com/…"
    assert rx.redact_url("http://user:pw@127.0.0.1:8080/path/tok") == "http://127.0.0.1:8080/…"
    assert rx.redact_url("http://[::1]:9/x") == "http://[::1]:9/…"


def test_scrubber_removes_plain_encoded_and_path_forms() -> None:
    url = "https://hooks.example/services/T0/B0/s3cr3t-t0ken"
    scrub = rx.Scrubber([url, "R0UT1NGKEY"])
    text = (
        f"echo {url} and /services/T0/B0/s3cr3t-t0ken and "
        f"{base64.b64encode(b'R0UT1NGKEY').decode()} and R0UT1NGKEY and https%3A%2F%2Fhooks.example%2Fservices"
        "%2FT0%2FB0%2Fs3cr3t-t0ken"
    )
    out = scrub(text)
    assert "s3cr3t" not in out and "R0UT1NGKEY" not in out and base64.b64encode(b"R0UT1NGKEY").decode() not in out


class Endpoint:
    """A local HTTP receiver that answers from a script and records what it got."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)  # status codes, "hang", or "echo"
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append({"path": request.path_qs, "headers": dict(request.headers), "body": body})
        action = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if action == "hang":
            await asyncio.sleep(60)
        if action == "echo":
            return web.Response(status=400, text=f"bad request to {request.path_qs}: {request.headers}")
        headers = {"Retry-After": "0"} if action == 429 else {}
        return web.Response(status=int(action), text="ok" if action == 200 else "nope", headers=headers)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trust_env=False) as s:
        yield s


FAST = rx.RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2, total_timeout=5.0, request_timeout=1.0)


def secrets_reader(values: dict[str, str]) -> rx.SecretReader:
    async def read(namespace: str, ref: SecretKeyRef) -> str:
        return values[f"{ref.name}/{ref.key}"]

    return read


async def test_sender_retries_5xx_and_429_then_delivers(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    ep = Endpoint([500, 503, 429, 200])
    base = await ep.start()
    try:
        receiver = Receiver(name="lead", type=ReceiverType.WEBHOOK, url=f"{base}/hook")
        sender = rx.Sender(session, retry=FAST, read=secrets_reader({}))
        result = await sender.send(
            NS, receiver, incident(detected(policy)), event="trigger", level="primary", key="K1", now=T0
        )
        assert result.delivered and result.attempts == 4 and result.status == 200
        assert len(ep.requests) == 4
        first = ep.requests[0]
        assert first["headers"]["Idempotency-Key"] == "K1" and first["headers"]["X-Zentinel-Event"] == "trigger"
        assert json.loads(first["body"])["version"] == "1"
    finally:
        await ep.stop()


async def test_sender_4xx_is_permanent_and_the_error_carries_no_secret(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    ep = Endpoint(["echo"])
    base = await ep.start()
    url = f"{base}/services/T0/B0/xoxb-S3CR3T"
    try:
        receiver = Receiver(name="chat", type=ReceiverType.SLACK, secret_ref=SecretKeyRef(name="slack", key="url"))
        sender = rx.Sender(session, retry=FAST, read=secrets_reader({"slack/url": url}))
        result = await sender.send(
            NS, receiver, incident(detected(policy)), event="trigger", level="primary", key="K", now=T0
        )
        assert not result.delivered and result.permanent and result.attempts == 1 and result.status == 400
        assert result.error is not None and result.error.startswith(f"HTTP 400 from http://127.0.0.1:{ep.port}/…")
        assert "S3CR3T" not in result.error and "/services/" not in result.error
        assert ep.requests[0]["path"] == "/services/T0/B0/xoxb-S3CR3T"  # it did go to the secret URL
    finally:
        await ep.stop()


async def test_sender_pagerduty_routing_key_and_bearer_tokens(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    ep = Endpoint([202])
    base = await ep.start()
    try:
        pd = Receiver(
            name="oncall",
            type=ReceiverType.PAGERDUTY,
            secret_ref=SecretKeyRef(name="pd", key="k"),
            url=f"{base}/v2/enqueue",
        )
        am = Receiver(
            name="am", type=ReceiverType.ALERTMANAGER, url=f"{base}/", token_secret_ref=SecretKeyRef(name="am", key="t")
        )
        sender = rx.Sender(session, retry=FAST, read=secrets_reader({"pd/k": "R0UT1NG", "am/t": "T0K3N"}))
        inc = incident(detected(policy))
        assert (await sender.send(NS, pd, inc, event="trigger", level="primary", key="K", now=T0)).delivered
        assert (await sender.send(NS, am, inc, event="trigger", level="primary", key="K", now=T0)).delivered
        pd_req, am_req = ep.requests
        assert pd_req["path"] == "/v2/enqueue" and json.loads(pd_req["body"])["routing_key"] == "R0UT1NG"
        assert "Authorization" not in pd_req["headers"]
        assert am_req["path"] == "/api/v2/alerts" and am_req["headers"]["Authorization"] == "Bearer T0K3N"
        assert json.loads(am_req["body"])[0]["labels"]["alertname"] == "ZentinelIncident"
    finally:
        await ep.stop()


async def test_sender_gives_up_within_its_time_bound_on_a_hanging_endpoint(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    ep = Endpoint(["hang"])
    base = await ep.start()
    try:
        receiver = Receiver(name="lead", type=ReceiverType.WEBHOOK, url=f"{base}/token/abc123")
        retry = rx.RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.1, total_timeout=1.5, request_timeout=0.5)
        sender = rx.Sender(session, retry=retry, read=secrets_reader({}))
        started = time.monotonic()
        result = await sender.send(
            NS, receiver, incident(detected(policy)), event="trigger", level="primary", key="K", now=T0
        )
        elapsed = time.monotonic() - started
        assert not result.delivered and not result.permanent
        assert elapsed < 2.5
        assert result.error is not None and result.error.startswith(
            f"no answer from http://127.0.0.1:{ep.port}/… within"
        )
        assert "abc123" not in result.error
        assert 2 <= len(ep.requests) <= 4  # several bounded attempts, not one endless wait
    finally:
        await ep.stop()


async def test_sender_connection_refused_is_retryable_and_redacted(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    port = free_port()
    receiver = Receiver(name="lead", type=ReceiverType.WEBHOOK, secret_ref=SecretKeyRef(name="w", key="u"))
    sender = rx.Sender(session, retry=FAST, read=secrets_reader({"w/u": f"http://127.0.0.1:{port}/hook/T0KEN"}))
    result = await sender.send(
        NS, receiver, incident(detected(policy)), event="trigger", level="primary", key="K", now=T0
    )
    assert not result.delivered and not result.permanent and result.attempts == 4
    assert result.error is not None and result.error.startswith(f"cannot connect to http://127.0.0.1:{port}/…")
    assert "T0KEN" not in result.error


async def test_missing_secret_is_retryable_bad_config_is_permanent(
    policy: ZentinelIncidentPolicySpec, session: aiohttp.ClientSession
) -> None:
    async def missing(namespace: str, ref: SecretKeyRef) -> str:
        raise rx.NotifyError(f"Secret {namespace}/{ref.name} not found")

    sender = rx.Sender(session, retry=FAST, read=missing)
    inc = incident(detected(policy))
    slack = Receiver(name="chat", type=ReceiverType.SLACK, secret_ref=SecretKeyRef(name="slack", key="url"))
    result = await sender.send(NS, slack, inc, event="trigger", level="primary", key="K", now=T0)
    assert not result.permanent and result.error == "Secret shop/slack not found"
    bad = Receiver(name="chat", type=ReceiverType.WEBHOOK, secret_ref=SecretKeyRef(name="w", key="u"))
    sender = rx.Sender(session, retry=FAST, read=secrets_reader({"w/u": "ftp://files.example/x"}))
    result = await sender.send(NS, bad, inc, event="trigger", level="primary", key="K", now=T0)
    assert result.permanent and result.error is not None and "http(s)" in result.error


# ----------------------------------------------------------------------- the dispatcher
class Store:
    """``status.deliveries`` kept in memory: the dispatcher's status writer, without an API server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, DeliveryRecord] = {}

    def __call__(self, namespace: str, name: str, updates: list[DeliveryRecord]) -> bool:
        with self.lock:
            self.records = {r.key: r for r in merge_records(self.records.values(), updates)}
        return True

    def on(self, inc: ZentinelIncident) -> ZentinelIncident:
        """The incident as the next pass would read it."""
        with self.lock:
            status = inc.status.model_copy(update={"deliveries": list(self.records.values())})
        return inc.model_copy(update={"status": status})

    def by_receiver(self, receiver: str) -> list[DeliveryRecord]:
        with self.lock:
            return [r for r in self.records.values() if r.receiver == receiver]


def hooks_policy(*receivers: tuple[str, str, str]) -> ZentinelIncidentPolicySpec:
    return ZentinelIncidentPolicySpec.model_validate(
        {
            "receivers": [{"name": n, "type": t, "url": u} for n, t, u in receivers],
            "escalation": {"sev2": {"primary": [n for n, _, _ in receivers]}},
            "lifecycle": {"resolveAfter": "5m"},
        }
    )


def acked_and_resolved(pol: ZentinelIncidentPolicySpec) -> ZentinelIncident:
    st = detected(pol)
    st = step(st, pol, at(1), finding(), acknowledged_by="alice")
    st = step(step(st, pol, at(2), None), pol, at(8), None)
    return incident(st)


def dispatcher(store: Store, **kw: Any) -> Dispatcher:
    retry = kw.pop(
        "retry", rx.RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1, total_timeout=1.0, request_timeout=0.5)
    )
    return Dispatcher(
        retry=retry, write=store, post_events=False, trust_env=False, max_age=dt.timedelta(days=36500), **kw
    )


async def until(probe: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_dispatcher_returns_at_once_keeps_order_and_a_hanging_receiver_blocks_only_itself() -> None:
    good, hang = Endpoint([200]), Endpoint(["hang"])
    pol = hooks_policy(("hang", "Webhook", await hang.start() + "/h"), ("good", "Webhook", await good.start() + "/g"))
    store = Store()
    d = dispatcher(store)
    try:
        await d.sync(NS, acked_and_resolved(pol), pol)
        # Returned before the hanging receiver gave up (it records only after its attempts time out):
        # sync hands deliveries to the background, it does not wait for them.
        assert not store.by_receiver("hang")
        await until(lambda: len(good.requests) == 3, within=2)
        assert [json.loads(r["body"])["event"] for r in good.requests] == ["trigger", "acknowledge", "resolve"]
        await until(lambda: bool(store.by_receiver("hang")), within=5)
        (rec,) = store.by_receiver("hang")
        assert (rec.event, rec.state, rec.attempts) == ("trigger", "Pending", 2)
        assert rec.last_error is not None and rec.last_error.startswith("no answer from http://127.0.0.1:")
        assert len(hang.requests) == 2 and {json.loads(r["body"])["event"] for r in hang.requests} == {"trigger"}
        assert [r.state for r in store.by_receiver("good")] == ["Delivered"] * 3
    finally:
        await d.stop()
        await good.stop()
        await hang.stop()


async def test_dispatcher_never_repeats_what_was_delivered() -> None:
    ep = Endpoint([200])
    pol = hooks_policy(("hook", "Webhook", await ep.start() + "/h"))
    inc = acked_and_resolved(pol)
    store = Store()
    d = dispatcher(store)
    try:
        await d.sync(NS, inc, pol)
        await until(lambda: d.idle() and len(store.records) == 3)
        await d.sync(NS, inc, pol)  # a stale model (read before the writes): memory knows better
        await d.sync(NS, store.on(inc), pol)
        await asyncio.sleep(0.2)
        assert len(ep.requests) == 3
    finally:
        await d.stop()
    # A restarted operator: only what status.deliveries lacks goes out.
    partial = Store()
    trigger = next(r for r in store.records.values() if r.event == "trigger")
    partial(NS, inc.metadata.name, [trigger])
    d2 = dispatcher(partial)
    try:
        await d2.sync(NS, partial.on(inc), pol)
        await until(lambda: d2.idle() and len(partial.records) == 3)
        assert [json.loads(r["body"])["event"] for r in ep.requests[3:]] == ["acknowledge", "resolve"]
    finally:
        await d2.stop()
        await ep.stop()


async def test_dispatcher_retries_later_and_gives_up_on_permanent_errors() -> None:
    flaky, gone = Endpoint([500, 500, 200]), Endpoint([404])
    pol = hooks_policy(("flaky", "Webhook", await flaky.start() + "/f"), ("gone", "Webhook", await gone.start() + "/x"))
    inc = incident(detected(pol))
    store = Store()
    d = dispatcher(store, cycle_backoff=0.2, max_cycle_backoff=0.2)
    try:
        await d.sync(NS, inc, pol)
        await until(lambda: d.idle() and len(store.records) == 2)
        (pending,) = store.by_receiver("flaky")
        assert (pending.state, pending.attempts) == ("Pending", 2)
        assert pending.last_error is not None and pending.last_error.startswith("HTTP 500 from http://127.0.0.1:")
        (failed,) = store.by_receiver("gone")
        assert (failed.state, failed.attempts) == ("Failed", 1) and "HTTP 404" in (failed.last_error or "")
        await asyncio.sleep(1.1)  # record.at has one-second precision
        await d.sync(NS, store.on(inc), pol)
        await until(lambda: d.idle() and store.by_receiver("flaky")[0].state == "Delivered")
        assert store.by_receiver("flaky")[0].attempts == 3 and store.by_receiver("flaky")[0].last_error is None
        assert len(gone.requests) == 1  # Failed is final
    finally:
        await d.stop()
        await flaky.stop()
        await gone.stop()


async def test_dispatcher_reposts_open_incidents_to_alertmanager_until_resolved() -> None:
    ep = Endpoint([200])
    pol = hooks_policy(("am", "Alertmanager", await ep.start()))
    open_inc = incident(detected(pol))
    store = Store()
    d = dispatcher(store, alertmanager_resend=0.1)
    try:
        await d.sync(NS, open_inc, pol)
        await until(lambda: d.idle() and len(store.records) == 1)
        for _ in range(3):
            await asyncio.sleep(0.15)
            await d.sync(NS, store.on(open_inc), pol)
            await until(d.idle)
        assert len(ep.requests) == 4 and len(store.records) == 1  # re-posts are not new deliveries
        assert all("endsAt" not in json.loads(r["body"])[0] for r in ep.requests)
        st = step(step(open_inc.status, pol, at(2), None), pol, at(8), None)
        resolved = store.on(incident(st))
        await d.sync(NS, resolved, pol)
        await until(lambda: d.idle() and len(store.records) == 2)
        await asyncio.sleep(0.15)
        await d.sync(NS, store.on(resolved), pol)
        await asyncio.sleep(0.1)
        assert len(ep.requests) == 5 and "endsAt" in json.loads(ep.requests[-1]["body"])[0]
    finally:
        await d.stop()
        await ep.stop()


# ------------------------------------------------------------------------ silences
def events_got(ep: Endpoint) -> list[str]:
    return [json.loads(r["body"])["event"] for r in ep.requests]


def unsilenced(
    st: ZentinelIncidentStatus, pol: ZentinelIncidentPolicySpec, when: dt.datetime
) -> ZentinelIncidentStatus:
    out = st.model_copy(update={"silenced_by": []}, deep=True)
    lc.add_timeline(out, pol, when, "Unsilenced", "maint no longer holds it: it ended")
    return out


async def test_a_silenced_incident_pages_nobody_until_no_silence_holds_it() -> None:
    ep = Endpoint([200])
    pol = hooks_policy(("hook", "Webhook", await ep.start() + "/h"))
    silenced = detected(pol).model_copy(update={"silenced_by": ["maint"]})
    store = Store()
    d = dispatcher(store)
    try:
        await d.sync(NS, incident(silenced), pol)
        assert d.idle() and not store.records  # nothing was even queued
        await d.sync(NS, incident(unsilenced(silenced, pol, at(30))), pol)
        await until(lambda: d.idle() and len(store.records) == 1)
        assert events_got(ep) == ["trigger"]
    finally:
        await d.stop()
        await ep.stop()


async def test_resolved_while_silenced_a_receiver_never_paged_hears_nothing_one_paged_before_hears_the_end() -> None:
    ep = Endpoint([200])
    pol = hooks_policy(("hook", "Webhook", await ep.start() + "/h"))
    store = Store()
    d = dispatcher(store)
    try:
        quiet = detected(pol).model_copy(update={"silenced_by": ["maint"]})
        resolved = step(step(quiet, pol, at(2), None), pol, at(8), None)
        assert resolved.resolved_at is not None and resolved.silenced_by == ["maint"]
        await d.sync(NS, incident(resolved), pol)
        assert d.idle() and not store.records  # the resolve waits behind the held trigger: neither goes

        paged = incident(detected(pol), name="inc-20261127-002")
        await d.sync(NS, paged, pol)
        await until(lambda: d.idle() and len(store.records) == 1)
        later = paged.status.model_copy(update={"silenced_by": ["maint"]})
        later = step(step(later, pol, at(2), None), pol, at(8), None)
        await d.sync(NS, store.on(incident(later, name="inc-20261127-002")), pol)
        await until(lambda: d.idle() and len(store.records) == 2)
        assert events_got(ep) == ["trigger", "resolve"]
    finally:
        await d.stop()
        await ep.stop()


async def test_a_page_held_by_a_silence_is_as_fresh_as_the_silences_end() -> None:
    ep = Endpoint([200])
    pol = hooks_policy(("hook", "Webhook", await ep.start() + "/h"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    st = lc.new_incident(finding(), now=now - dt.timedelta(hours=3), policy=pol).status
    store = Store()
    d = Dispatcher(write=store, post_events=False, trust_env=False, max_age=dt.timedelta(hours=1))
    try:
        await d.sync(NS, incident(st), pol)
        assert d.idle() and not store.records  # three hours old: not worth a page now
        await d.sync(NS, incident(unsilenced(st, pol, now - dt.timedelta(minutes=1))), pol)
        await until(lambda: d.idle() and len(store.records) == 1)
        assert events_got(ep) == ["trigger"]
    finally:
        await d.stop()
        await ep.stop()


async def test_dispatcher_reads_secrets_where_the_caller_says_and_else_in_the_incidents_namespace() -> None:
    """A cluster policy's receivers' Secrets are in the operator's namespace (``secrets_namespace``); a
    namespaced policy's in the incident's own."""
    ep = Endpoint([200])
    url = await ep.start() + "/h"
    read_from: list[tuple[str, str]] = []

    async def read(namespace: str, ref: SecretKeyRef) -> str:
        read_from.append((namespace, ref.name))
        return url

    pol = ZentinelIncidentPolicySpec.model_validate(
        {
            "receivers": [{"name": "hook", "type": "Webhook", "secretRef": {"name": "hook-url", "key": "url"}}],
            "escalation": {"sev2": {"primary": ["hook"]}},
        }
    )
    try:
        for secrets_namespace, expected in (("zentinel-system", "zentinel-system"), (None, NS)):
            store = Store()
            d = dispatcher(store, read=read)
            try:
                await d.sync(NS, incident(detected(pol)), pol, secrets_namespace=secrets_namespace)
                await until(lambda s=store: len(s.records) == 1)
            finally:
                await d.stop()
            assert read_from[-1] == (expected, "hook-url")
            assert [r.state for r in store.records.values()] == ["Delivered"]
        assert len(ep.requests) == 2
    finally:
        await ep.stop()
