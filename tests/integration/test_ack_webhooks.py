"""Acknowledge where people are (issue 14 item 5), end to end on the real API server.

The operator runs as a real process with its intake on a loopback port, PagerDuty's and Slack's
signing secrets in files (as the chart mounts them from Secrets). The tests open a real incident
(one crash-looping pod of three, SEV3), page local receivers, and then post what PagerDuty (a v3
webhook, the recorded payload under ``tests/unit/fixtures/acks``) and Slack (a button press,
``block_actions``) post, signed the way they sign. What the operator sent is where the mapping
starts: the ``dedup_key`` PagerDuty received, the button value the Slack message carried.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from integration.test_notifications import crash_one, deliveries, events_of, policy, secret, start_edge
from support.kube import Kube, wait_for
from support.operator import OperatorProcess, free_port, listening
from support.receivers import Receivers
from zentinel_operator.core import acks

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "acks"
PD_SECRET = "pd-whsec-" + secrets.token_hex(16)
SLACK_SECRET = secrets.token_hex(16)
# Response target of SEV3 here: unacknowledged this long, the secondary would be paged.
RESPONSE = "20s"


@pytest.fixture
def intake_port() -> int:
    return free_port()


@pytest.fixture
def operator_env(tmp_path: Path, intake_port: int) -> dict[str, str]:
    pd, slack = tmp_path / "pagerduty-signing-secret", tmp_path / "slack-signing-secret"
    pd.write_text("an-older-pagerduty-secret\n" + PD_SECRET + "\n")  # two subscriptions or a rotation
    slack.write_text(SLACK_SECRET + "\n")
    return {
        "ZENTINEL_OPERATOR_ALERT_INTAKE_PORT": str(intake_port),
        "ZENTINEL_OPERATOR_ALERT_INTAKE_ADDR": "127.0.0.1",
        "ZENTINEL_OPERATOR_ALERT_INTAKE_PAGERDUTY_SECRET_FILE": str(pd),
        "ZENTINEL_OPERATOR_ALERT_INTAKE_SLACK_SECRET_FILE": str(slack),
    }


# ------------------------------------------------------------------------------------ posting
def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def pagerduty_event(name: str, incident_key: str, **event: Any) -> bytes:
    data = json.loads((FIXTURES / name).read_text())
    data["event"]["data"]["incident_key"] = incident_key
    data["event"].update(event)
    return json.dumps(data).encode()


def post_pagerduty(port: int, body: bytes, secret_value: str = PD_SECRET) -> tuple[int, dict[str, Any]]:
    signature = acks.pagerduty_signature(body, secret_value)
    return post(
        port, "/api/v1/pagerduty", body, {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}
    )


def slack_press(action_id: str, value: str, user: str = "alice") -> bytes:
    payload = json.loads((FIXTURES / "slack-block-actions-acknowledge.json").read_text())
    payload["user"].update(username=user, name=user)
    payload["actions"][0].update(action_id=action_id, value=value)
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def post_slack(port: int, body: bytes, *, secret_value: str = SLACK_SECRET, age: int = 0) -> tuple[int, dict[str, Any]]:
    ts = str(int(time.time()) - age)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": acks.slack_signature(body, ts, secret_value),
    }
    return post(port, "/api/v1/slack/interactions", body, headers)


# ------------------------------------------------------------------------------------- checks
def incident(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    obj = kube.get("zinc", name, namespace)
    assert obj is not None
    return obj


def status_where(kube: Kube, namespace: str, name: str, what: str, probe: Any) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        obj = incident(kube, namespace, name)
        return obj if probe(obj.get("status") or {}) else None

    return wait_for(seen, timeout=60, what=what)


def passes_after(kube: Kube, namespace: str, name: str, moment: str) -> dict[str, Any]:
    """The incident once a pass has seen its signal after ``moment`` (an RFC 3339 time in its status)."""
    return status_where(kube, namespace, name, f"a pass after {moment}", lambda st: st.get("lastSeenAt", "") > moment)


def escalation_policy(receivers: Receivers, extra: list[dict[str, Any]], primary: list[str]) -> dict[str, Any]:
    pol = policy(
        [{"name": "lead", "type": "Webhook", "url": receivers.url("/lead")}, *extra],
        primary,
        responseTargets={"sev3": RESPONSE},
    )
    pol["spec"]["escalation"]["sev3"]["secondary"] = ["lead"]
    return pol


def assert_not_escalated_past_the_target(kube: Kube, namespace: str, name: str, receivers: Receivers) -> None:
    """A pass after the response target ran, and the secondary was not paged: the acknowledgement stopped it."""
    due = incident(kube, namespace, name)["status"]["responseDueAt"]
    st = passes_after(kube, namespace, name, due)["status"]
    assert st["escalationLevel"] == "primary", st.get("escalations")
    assert [e["level"] for e in st["escalations"]] == ["primary"]
    assert receivers.got("/lead", name) == []


# -------------------------------------------------------------------------------------- tests
def test_pagerduty_acknowledgement_stops_the_escalation_and_its_resolution_closes_the_incident(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, intake_port: int
) -> None:
    routing_key = "R" + secrets.token_hex(15)
    kube.apply(secret("paging", {"routing-key": routing_key}), namespace)
    pager = {
        "name": "pager",
        "type": "PagerDuty",
        "secretRef": {"name": "paging", "key": "routing-key"},
        "url": receivers.url("/v2/enqueue"),
    }
    pods = start_edge(kube, namespace, escalation_policy(receivers, [pager], ["pager"]))
    name = crash_one(kube, namespace, pods)
    trigger = wait_for(lambda: receivers.got("/v2/enqueue", name), timeout=30, what="the page to PagerDuty")[0].json
    key = trigger["dedup_key"]  # PagerDuty's incident_key for the incident it opens from this event
    wait_for(lambda: listening(intake_port), timeout=30, what="the intake listening")

    # A service acknowledging (the operator's own events echoed back) is not a person: ignored.
    echo = pagerduty_event("pagerduty-acknowledged-by-integration.json", key)
    assert post_pagerduty(intake_port, echo) == (
        200,
        {"status": "ignored", "reason": "incident.acknowledged by service_reference, not by a person"},
    )
    # Earline acknowledges on her phone.
    status, answer = post_pagerduty(intake_port, pagerduty_event("pagerduty-incident-acknowledged.json", key))
    assert status == 200 and answer["status"] == "applied", answer
    assert answer["incident"] == f"{namespace}/{name}" and answer["action"] == "acknowledge"
    obj = status_where(kube, namespace, name, "the acknowledgement recorded", lambda st: st.get("acknowledgedAt"))
    assert obj["spec"]["acknowledgedBy"] == "Earline Greenholt (PagerDuty)"
    assert obj["status"]["acknowledgedBy"] == "Earline Greenholt (PagerDuty)"
    ack = next(c for c in obj["status"]["conditions"] if c["type"] == "Acknowledged")
    assert ack["status"] == "True" and ack["message"] == "Acknowledged by Earline Greenholt (PagerDuty)"
    # PagerDuty retries deliveries: the same event again changes nothing.
    status, again = post_pagerduty(intake_port, pagerduty_event("pagerduty-incident-acknowledged.json", key))
    assert status == 200 and again["status"] == "ignored" and "already acknowledged" in again["reason"]
    assert_not_escalated_past_the_target(kube, namespace, name, receivers)
    wait_for(
        lambda: events_of(receivers.got("/v2/enqueue", name), "event_action") == ["trigger", "acknowledge"],
        timeout=30,
        what="the acknowledge event to PagerDuty (same dedup key)",
    )

    # Resolved in PagerDuty: the incident closes, with who and where in the record.
    status, answer = post_pagerduty(intake_port, pagerduty_event("pagerduty-incident-resolved.json", key))
    assert status == 200 and answer["status"] == "applied", answer
    done = status_where(kube, namespace, name, "the resolution recorded", lambda st: st.get("resolvedAt"))
    assert done["status"]["resolvedBy"] == "Earline Greenholt (PagerDuty)"
    resolved = next(c for c in done["status"]["conditions"] if c["type"] == "Resolved")
    assert resolved["reason"] == "ResolvedByUser"
    assert (
        resolved["message"]
        == "Resolved by Earline Greenholt (PagerDuty): resolved in PagerDuty (incident #1234 Q2TPJ6ZF7G1ZAS)"
    )
    # An incident this operator did not open is answered 200 and ignored.
    foreign = pagerduty_event("pagerduty-incident-acknowledged.json", "baf7cf21b1da41b4b0221008339ff357")
    status, answer = post_pagerduty(intake_port, foreign)
    assert status == 200 and answer["status"] == "ignored"
    assert PD_SECRET not in operator.logs()


def test_slack_buttons_acknowledge_and_resolve(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, intake_port: int
) -> None:
    slack_path = f"/services/T0ZEN/B0ZEN/{secrets.token_hex(12)}"
    kube.apply(secret("chat", {"url": receivers.url(slack_path)}), namespace)
    chat = {"name": "chat", "type": "Slack", "secretRef": {"name": "chat", "key": "url"}}
    pods = start_edge(kube, namespace, escalation_policy(receivers, [chat], ["chat"]))
    name = crash_one(kube, namespace, pods)
    first = wait_for(lambda: receivers.got(slack_path, name), timeout=30, what="the Slack message")[0].json
    actions = next(b for b in first["blocks"] if b["type"] == "actions")
    buttons = {b["action_id"]: b["value"] for b in actions["elements"]}
    assert buttons == {"zentinel.acknowledge": f"{namespace}/{name}", "zentinel.resolve": f"{namespace}/{name}"}
    wait_for(lambda: listening(intake_port), timeout=30, what="the intake listening")

    status, answer = post_slack(intake_port, slack_press("zentinel.acknowledge", buttons["zentinel.acknowledge"]))
    assert status == 200 and answer["status"] == "applied", answer
    obj = status_where(kube, namespace, name, "the acknowledgement recorded", lambda st: st.get("acknowledgedAt"))
    assert obj["status"]["acknowledgedBy"] == "alice (Slack)"
    assert_not_escalated_past_the_target(kube, namespace, name, receivers)
    # The acknowledgement message keeps only Resolve.
    notice = wait_for(lambda: receivers.got(slack_path, name)[1:], timeout=30, what="the acknowledged message")[0].json
    assert "Acknowledged by alice (Slack)" in notice["text"]
    left = next(b for b in notice["blocks"] if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in left] == ["zentinel.resolve"]

    status, answer = post_slack(intake_port, slack_press("zentinel.resolve", buttons["zentinel.resolve"], user="bob"))
    assert status == 200 and answer["status"] == "applied", answer
    done = status_where(kube, namespace, name, "the resolution recorded", lambda st: st.get("resolvedAt"))
    assert done["status"]["resolvedBy"] == "bob (Slack)"
    # A press for an incident that does not exist tells the person so.
    status, answer = post_slack(intake_port, slack_press("zentinel.acknowledge", f"{namespace}/inc-20000101-001"))
    assert status == 404 and answer["reason"] == f"no incident {namespace}/inc-20000101-001"
    assert SLACK_SECRET not in operator.logs()


def test_bad_signatures_are_refused_and_change_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, intake_port: int
) -> None:
    pods = start_edge(kube, namespace, escalation_policy(receivers, [], []))
    name = crash_one(kube, namespace, pods)
    wait_for(lambda: listening(intake_port), timeout=30, what="the intake listening")
    before = incident(kube, namespace, name)
    key = f"zentinel/{namespace}/{name}"
    body = pagerduty_event("pagerduty-incident-acknowledged.json", key)
    press = slack_press("zentinel.acknowledge", f"{namespace}/{name}")
    refused = [
        post_pagerduty(intake_port, body, secret_value="not-the-secret"),
        post(intake_port, "/api/v1/pagerduty", body, {"Content-Type": "application/json"}),  # unsigned
        # Signed right, then changed on the way: the signature is of the other body.
        post(
            intake_port,
            "/api/v1/pagerduty",
            body.replace(b"Earline Greenholt", b"Mallory"),
            {"X-PagerDuty-Signature": acks.pagerduty_signature(body, PD_SECRET)},
        ),
        post_slack(intake_port, press, secret_value="not-the-secret"),
        post_slack(intake_port, press, age=600),  # signed right, but ten minutes old: a replay
    ]
    assert [code for code, _ in refused] == [401] * 5, refused
    assert "a replay" in refused[-1][1]["reason"]
    # Passes go on; the incident is as it was: no spec change (same generation), not acknowledged.
    after = passes_after(kube, namespace, name, before["status"]["lastSeenAt"])
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert "acknowledgedBy" not in after["spec"] and "resolvedBy" not in after["spec"]
    assert "acknowledgedAt" not in after["status"] and "resolvedAt" not in after["status"]
    assert "refused a request" in operator.logs()


def test_adding_a_receiver_pages_the_open_incident_nobody_was_paged_for(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pol = policy([], [])  # no receivers: the incident opens and nobody is paged
    pods = start_edge(kube, namespace, pol)
    name = crash_one(kube, namespace, pods)
    st = passes_after(kube, namespace, name, incident(kube, namespace, name)["status"]["detectedAt"])["status"]
    assert [e["receivers"] for e in st["escalations"]] == [[]] and not st.get("deliveries")

    pol["spec"]["receivers"] = [{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}]
    pol["spec"]["escalation"]["sev3"]["primary"] = ["hook"]
    kube.apply(pol, namespace)
    got = wait_for(lambda: receivers.got("/hook", name), timeout=60, what="the page to the receiver added")
    assert got[0].json["event"] == "trigger" and got[0].json["incident"]["name"] == name
    obj = incident(kube, namespace, name)
    paged = [e for e in obj["status"]["timeline"] if e["type"] == "Paged"]
    assert len(paged) == 1 and paged[0]["message"] == "hook added to the policy and nobody paged yet: paged (primary)"
    assert [e["receivers"] for e in obj["status"]["escalations"]] == [[], ["hook"]]
    wait_for(
        lambda: any(r["receiver"] == "hook" and r["state"] == "Delivered" for r in deliveries(kube, namespace, name)),
        timeout=30,
        what="the page recorded as delivered",
    )

    # Decided: once somebody was paged, a receiver added later is not paged for this incident.
    pol["spec"]["receivers"].append({"name": "late", "type": "Webhook", "url": receivers.url("/late")})
    pol["spec"]["escalation"]["sev3"]["primary"] = ["hook", "late"]
    kube.apply(pol, namespace)
    gen = kube.get("zipol", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    wait_for(
        lambda: (kube.get("zipol", "edge", namespace) or {}).get("status", {}).get("observedGeneration") == gen,
        timeout=60,
        what="the policy with the late receiver in force",
    )
    now = incident(kube, namespace, name)["status"]["lastSeenAt"]
    after = passes_after(kube, namespace, name, now)["status"]
    assert [e["receivers"] for e in after["escalations"]] == [[], ["hook"]]
    assert receivers.got("/late", name) == []
    assert len(receivers.got("/hook", name)) == 1
