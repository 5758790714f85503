"""Acknowledging from PagerDuty and Slack: signatures, payload mapping, the one rule, and the HTTP routes.

The payloads are recorded ones, kept as JSON under ``fixtures/acks/`` (PagerDuty webhook v3 events,
Slack's ``block_actions`` interaction); the tests sign them the way PagerDuty and Slack do.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from zentinel_operator.core import acks
from zentinel_operator.core import notify_payloads as np
from zentinel_operator.core.lifecycle import HumanInput
from zentinel_operator.models.incident import TimelineEntry, ZentinelIncidentStatus
from zentinel_operator.notify import acks as hooks
from zentinel_operator.notify import intake

FIXTURES = Path(__file__).parent / "fixtures" / "acks"
PD_SECRET = "pd-whsec-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PD_OLD = "pd-whsec-old-ffeeddccbbaa99887766"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_795_748_652.0
T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def slack_form(payload: Any) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


# ------------------------------------------------------------------------- PagerDuty signatures
def test_pagerduty_signature_of_the_raw_body_is_accepted() -> None:
    body = raw("pagerduty-incident-acknowledged.json")
    assert acks.verify_pagerduty(body, acks.pagerduty_signature(body, PD_SECRET), [PD_SECRET]) is None


def test_pagerduty_signature_under_another_secret_or_another_body_is_refused() -> None:
    body = raw("pagerduty-incident-acknowledged.json")
    wrong = acks.pagerduty_signature(body, "some-other-secret")
    assert acks.verify_pagerduty(body, wrong, [PD_SECRET]) == "X-PagerDuty-Signature does not match the body"
    tampered = body.replace(b"Earline Greenholt", b"Mallory Mallet", 1)
    good = acks.pagerduty_signature(body, PD_SECRET)
    assert acks.verify_pagerduty(tampered, good, [PD_SECRET]) == "X-PagerDuty-Signature does not match the body"


def test_pagerduty_rotation_several_signatures_one_matching_is_enough() -> None:
    body = raw("pagerduty-incident-resolved.json")
    header = f"{acks.pagerduty_signature(body, PD_OLD)}, {acks.pagerduty_signature(body, PD_SECRET)}"
    assert acks.verify_pagerduty(body, header, [PD_SECRET]) is None
    assert acks.verify_pagerduty(body, header, [PD_OLD]) is None
    # Several subscriptions (one secret each): any configured secret may sign.
    assert acks.verify_pagerduty(body, acks.pagerduty_signature(body, PD_SECRET), [PD_OLD, PD_SECRET]) is None
    both_wrong = f"{acks.pagerduty_signature(body, 'a')},{acks.pagerduty_signature(body, 'b')}"
    assert acks.verify_pagerduty(body, both_wrong, [PD_SECRET]) is not None


@pytest.mark.parametrize(
    ("header", "secrets", "reason"),
    [
        (None, [PD_SECRET], "X-PagerDuty-Signature is missing"),
        ("  ", [PD_SECRET], "X-PagerDuty-Signature is missing"),
        ("sha256=abc", [PD_SECRET], "X-PagerDuty-Signature holds no v1= signature"),
        ("v1=abc", [], "no PagerDuty webhook secret is configured"),
    ],
)
def test_pagerduty_missing_or_odd_headers_say_why(header: str | None, secrets: list[str], reason: str) -> None:
    assert acks.verify_pagerduty(b"{}", header, secrets) == reason


# ----------------------------------------------------------------------------- Slack signatures
def test_slack_signature_is_accepted_and_a_changed_body_is_not() -> None:
    body = slack_form(fixture("slack-block-actions-acknowledge.json"))
    ts = str(int(NOW) - 10)
    sig = acks.slack_signature(body, ts, SLACK_SECRET)
    assert acks.verify_slack(body, ts, sig, [SLACK_SECRET], now=NOW) is None
    assert (
        acks.verify_slack(body + b"x", ts, sig, [SLACK_SECRET], now=NOW) == "X-Slack-Signature does not match the body"
    )
    # The timestamp is signed too: a fresh timestamp on an old signature does not pass.
    assert acks.verify_slack(body, str(int(NOW)), sig, [SLACK_SECRET], now=NOW) is not None


def test_slack_stale_or_future_timestamp_is_a_replay() -> None:
    body = slack_form(fixture("slack-block-actions-acknowledge.json"))
    for ts in (str(int(NOW) - 301), str(int(NOW) + 301)):
        sig = acks.slack_signature(body, ts, SLACK_SECRET)  # correctly signed, but too far from now
        reason = acks.verify_slack(body, ts, sig, [SLACK_SECRET], now=NOW)
        assert reason is not None and "more than 300s away" in reason
    ts = str(int(NOW) - 299)
    assert acks.verify_slack(body, ts, acks.slack_signature(body, ts, SLACK_SECRET), [SLACK_SECRET], now=NOW) is None


def test_slack_rotated_secret_either_one_verifies() -> None:
    body = b"payload=%7B%7D"
    ts = str(int(NOW))
    for secret in ("old-signing-secret", SLACK_SECRET):
        sig = acks.slack_signature(body, ts, secret)
        assert acks.verify_slack(body, ts, sig, ["old-signing-secret", SLACK_SECRET], now=NOW) is None
    assert acks.verify_slack(body, ts, acks.slack_signature(body, ts, "x"), [SLACK_SECRET], now=NOW) is not None


@pytest.mark.parametrize(
    ("ts", "sig", "reason"),
    [
        (None, "v0=ab", "X-Slack-Request-Timestamp is missing"),
        ("soon", "v0=ab", "X-Slack-Request-Timestamp is missing"),
        (str(int(NOW)), None, "X-Slack-Signature is missing"),
        (str(int(NOW)), "v1=ab", "X-Slack-Signature is missing"),
    ],
)
def test_slack_missing_headers_say_why(ts: str | None, sig: str | None, reason: str) -> None:
    got = acks.verify_slack(b"", ts, sig, [SLACK_SECRET], now=NOW)
    assert got is not None and got.startswith(reason)


def test_secrets_file_text_one_a_line() -> None:
    assert acks.secrets_from_text("\n  first \n\nsecond\nfirst\n") == ("first", "second")


# -------------------------------------------------------------------------------- PagerDuty map
def test_pagerduty_acknowledged_maps_to_our_incident_and_the_person() -> None:
    act = acks.pagerduty_act(fixture("pagerduty-incident-acknowledged.json"))
    assert act == acks.Act(
        namespace="shop",
        name="inc-20261127-001",
        action="acknowledge",
        by="Earline Greenholt (PagerDuty)",
        source="PagerDuty",
        occurred_at=dt.datetime(2026, 11, 27, 3, 4, 12, 417000, tzinfo=dt.UTC),
    )


def test_pagerduty_resolved_carries_a_note_naming_the_pagerduty_incident() -> None:
    act = acks.pagerduty_act(fixture("pagerduty-incident-resolved.json"))
    assert isinstance(act, acks.Act) and act.action == "resolve"
    assert act.note == "resolved in PagerDuty (incident #1234 Q2TPJ6ZF7G1ZAS)"


def test_pagerduty_key_is_the_dedup_key_the_operator_sends() -> None:
    data = fixture("pagerduty-incident-acknowledged.json")
    act = acks.pagerduty_act(data)
    assert isinstance(act, acks.Act)
    assert data["event"]["data"]["incident_key"] == "zentinel/shop/inc-20261127-001"
    assert np.parse_dedup_key("zentinel/shop/inc-20261127-001") == ("shop", "inc-20261127-001")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pagerduty-incident-triggered.json", "event type 'incident.triggered' asks nothing of an incident"),
        ("pagerduty-acknowledged-by-integration.json", "incident.acknowledged by service_reference, not by a person"),
    ],
)
def test_pagerduty_other_events_and_the_operators_own_echo_are_ignored(name: str, reason: str) -> None:
    assert acks.pagerduty_act(fixture(name)) == acks.Ignored(reason)


@pytest.mark.parametrize("key", [None, "baf7cf21b1da41b4b0221008339ff357", "zentinel/shop", "zentinel//x"])
def test_pagerduty_incidents_this_operator_did_not_open_are_ignored(key: str | None) -> None:
    data = fixture("pagerduty-incident-acknowledged.json")
    data["event"]["data"]["incident_key"] = key
    got = acks.pagerduty_act(data)
    assert isinstance(got, acks.Ignored) and "was not opened by this operator" in got.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("event"), "event: required, an object"),
        (lambda d: d["event"].pop("event_type"), "event.event_type: required"),
        (lambda d: d["event"].update(resource_type="service"), "event.resource_type"),
        (lambda d: d["event"]["data"].pop("id"), "event.data.id: required"),
        (lambda d: d["event"].update(occurred_at="yesterday"), "event.occurred_at: 'yesterday' is not an RFC 3339"),
    ],
)
def test_pagerduty_malformed_payload_names_the_field(change: Any, field: str) -> None:
    data = fixture("pagerduty-incident-acknowledged.json")
    change(data)
    with pytest.raises(acks.PayloadError, match=field.replace("(", r"\(")):
        acks.pagerduty_act(data)


def test_pagerduty_agent_without_summary_is_named_by_its_id() -> None:
    data = fixture("pagerduty-incident-acknowledged.json")
    data["event"]["agent"]["summary"] = "  "
    act = acks.pagerduty_act(data)
    assert isinstance(act, acks.Act) and act.by == "PXPGF42 (PagerDuty)"


# ------------------------------------------------------------------------------------ Slack map
def test_slack_button_maps_to_the_incident_in_its_value_and_the_user() -> None:
    act = acks.slack_act(fixture("slack-block-actions-acknowledge.json"))
    assert act == acks.Act("shop", "inc-20261127-001", "acknowledge", "alice (Slack)", "Slack")


def test_slack_resolve_button_resolves_with_a_note() -> None:
    payload = fixture("slack-block-actions-acknowledge.json")
    payload["actions"][0]["action_id"] = "zentinel.resolve"
    act = acks.slack_act(payload)
    assert isinstance(act, acks.Act) and act.action == "resolve" and act.note == "resolved from Slack"


def test_slack_other_interactions_are_ignored() -> None:
    payload = fixture("slack-block-actions-acknowledge.json")
    assert acks.slack_act({**payload, "type": "view_submission"}) == acks.Ignored(
        "interaction type 'view_submission' asks nothing of an incident"
    )
    other = copy.deepcopy(payload)
    other["actions"][0]["action_id"] = "someone.elses.button"
    assert acks.slack_act(other) == acks.Ignored("no Zentinel incident button in payload.actions")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["actions"][0].update(value="inc-20261127-001"), r"payload.actions\[0\].value: expected"),
        (lambda p: p["actions"][0].update(value="Shop/../x"), r"payload.actions\[0\].value: expected"),
        (lambda p: p.update(actions="x"), "payload.actions: required, a list"),
        (lambda p: p.update(user={}), "payload.user: needs username, name or id"),
    ],
)
def test_slack_malformed_payload_names_the_field(change: Any, field: str) -> None:
    payload = fixture("slack-block-actions-acknowledge.json")
    change(payload)
    with pytest.raises(acks.PayloadError, match=field):
        acks.slack_act(payload)


# ------------------------------------------------------------------------------- the one rule
OPEN = ZentinelIncidentStatus(detected_at=T0)
NOBODY = HumanInput()
ACT = acks.Act("shop", "inc-20261127-001", "acknowledge", "alice (Slack)", "Slack")
RESOLVE = acks.Act("shop", "inc-20261127-001", "resolve", "bob (PagerDuty)", "PagerDuty", note="resolved in PagerDuty")


def test_an_open_incident_takes_the_acknowledgement_and_the_resolution() -> None:
    assert acks.decide(ACT, OPEN, NOBODY) == acks.Request(
        {"spec": {"acknowledgedBy": "alice (Slack)"}},
        "inc-20261127-001 acknowledged by alice (Slack) (spec.acknowledgedBy)",
    )
    got = acks.decide(RESOLVE, OPEN, NOBODY)
    assert isinstance(got, acks.Request)
    assert got.patch == {"spec": {"resolvedBy": "bob (PagerDuty)", "resolutionNote": "resolved in PagerDuty"}}


@pytest.mark.parametrize(
    ("act", "status", "human", "reason"),
    [
        (
            ACT,
            OPEN.model_copy(update={"acknowledged_at": T0, "acknowledged_by": "zoe"}),
            NOBODY,
            "already acknowledged by zoe at 2026-11-27 03:00:00Z",
        ),
        (ACT, OPEN, HumanInput(acknowledged_by="yan"), "acknowledgement by yan is already requested"),
        (RESOLVE, OPEN, HumanInput(resolved_by="carol"), "resolution by carol is already requested"),
        (
            ACT,
            OPEN.model_copy(update={"resolved_at": T0, "resolved_by": "operator"}),
            NOBODY,
            "already resolved (by operator at 2026-11-27 03:00:00Z); nothing to acknowledge",
        ),
        (RESOLVE, OPEN.model_copy(update={"resolved_at": T0, "resolved_by": "operator"}), NOBODY, "nothing to resolve"),
    ],
)
def test_repeats_and_resolved_incidents_change_nothing(
    act: acks.Act, status: ZentinelIncidentStatus, human: HumanInput, reason: str
) -> None:
    got = acks.decide(act, status, human)
    assert isinstance(got, acks.Refusal) and reason in got.reason


def test_an_act_from_before_the_incident_reopened_is_refused() -> None:
    reopened = T0 + dt.timedelta(minutes=30)
    status = OPEN.model_copy(update={"timeline": [TimelineEntry(time=reopened, type="Reopened", message="back")]})
    late = dataclasses.replace(ACT, occurred_at=reopened - dt.timedelta(minutes=1))
    got = acks.decide(late, status, NOBODY)
    assert isinstance(got, acks.Refusal) and "came before the incident reopened" in got.reason
    fresh = dataclasses.replace(ACT, occurred_at=reopened + dt.timedelta(minutes=1))
    assert isinstance(acks.decide(fresh, status, NOBODY), acks.Request)


def test_a_long_name_is_cut_to_fit_with_its_source() -> None:
    data = fixture("pagerduty-incident-acknowledged.json")
    data["event"]["agent"]["summary"] = "x" * 400
    act = acks.pagerduty_act(data)
    assert isinstance(act, acks.Act) and len(act.by) == acks.BY_MAX and act.by.endswith(" (PagerDuty)")


# ----------------------------------------------------------------------------- the HTTP routes
class Applier:
    def __init__(self) -> None:
        self.acts: list[acks.Act] = []
        self.answer = hooks.Applied("applied", "done")
        self.fail = False

    async def __call__(self, act: acks.Act) -> hooks.Applied:
        if self.fail:
            raise RuntimeError("API server unavailable")
        self.acts.append(act)
        return self.answer


@pytest.fixture
def applier() -> Applier:
    return Applier()


@pytest.fixture
async def client(applier: Applier) -> AsyncIterator[TestClient[Any, Any]]:
    app = intake.bare_app(100_000)
    hooks.add_routes(
        app,
        pagerduty_secrets=lambda: (PD_SECRET,),
        slack_secrets=lambda: (SLACK_SECRET,),
        applier=applier,
        max_bytes=100_000,
        namespaces={"shop"},
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(app)) as c:
        yield c


async def post_pd(client: TestClient[Any, Any], body: bytes, signature: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    resp = await client.post(hooks.PAGERDUTY_PATH, data=body, headers=headers)
    return resp.status, await resp.json()


async def post_slack(client: TestClient[Any, Any], body: bytes, ts: str, signature: str) -> tuple[int, Any]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    resp = await client.post(hooks.SLACK_PATH, data=body, headers=headers)
    return resp.status, await resp.json()


async def test_signed_pagerduty_ack_reaches_the_applier(client: TestClient[Any, Any], applier: Applier) -> None:
    body = raw("pagerduty-incident-acknowledged.json")
    status, answer = await post_pd(client, body, "v1=00ff," + acks.pagerduty_signature(body, PD_SECRET))
    assert status == 200 and answer == {
        "status": "applied",
        "reason": "done",
        "incident": "shop/inc-20261127-001",
        "action": "acknowledge",
    }
    assert [(a.name, a.action, a.by) for a in applier.acts] == [
        ("inc-20261127-001", "acknowledge", "Earline Greenholt (PagerDuty)")
    ]


@pytest.mark.parametrize("signature", [None, "v1=deadbeef", "sign-me"])
async def test_bad_pagerduty_signature_is_401_and_changes_nothing(
    client: TestClient[Any, Any], applier: Applier, signature: str | None
) -> None:
    status, answer = await post_pd(client, raw("pagerduty-incident-acknowledged.json"), signature)
    assert status == 401 and answer["status"] == "error"
    assert applier.acts == []


async def test_pagerduty_ignored_and_unknown_incidents_are_200(client: TestClient[Any, Any], applier: Applier) -> None:
    body = raw("pagerduty-incident-triggered.json")
    status, answer = await post_pd(client, body, acks.pagerduty_signature(body, PD_SECRET))
    assert status == 200 and answer["status"] == "ignored" and applier.acts == []
    applier.answer = hooks.Applied("not-found", "no incident shop/inc-20261127-001")
    body = raw("pagerduty-incident-resolved.json")
    status, answer = await post_pd(client, body, acks.pagerduty_signature(body, PD_SECRET))
    assert status == 200 and answer["status"] == "not-found"


async def test_pagerduty_bad_json_and_unwatched_namespace(client: TestClient[Any, Any], applier: Applier) -> None:
    status, answer = await post_pd(client, b"{nope", acks.pagerduty_signature(b"{nope", PD_SECRET))
    assert status == 400 and "not valid JSON" in answer["reason"]
    data = fixture("pagerduty-incident-acknowledged.json")
    data["event"]["data"]["incident_key"] = "zentinel/other/inc-20261127-001"
    body = json.dumps(data).encode()
    status, answer = await post_pd(client, body, acks.pagerduty_signature(body, PD_SECRET))
    assert status == 200 and answer["status"] == "not-found" and "not watched" in answer["reason"]
    assert applier.acts == []


async def test_pagerduty_api_error_is_503_so_pagerduty_retries(client: TestClient[Any, Any], applier: Applier) -> None:
    applier.fail = True
    body = raw("pagerduty-incident-acknowledged.json")
    status, answer = await post_pd(client, body, acks.pagerduty_signature(body, PD_SECRET))
    assert status == 503 and answer["reason"] == "could not record it; try again"


async def test_signed_slack_press_reaches_the_applier(client: TestClient[Any, Any], applier: Applier) -> None:
    body = slack_form(fixture("slack-block-actions-acknowledge.json"))
    ts = str(int(NOW) - 2)
    status, answer = await post_slack(client, body, ts, acks.slack_signature(body, ts, SLACK_SECRET))
    assert status == 200 and answer["status"] == "applied"
    assert [(a.namespace, a.name, a.action, a.by) for a in applier.acts] == [
        ("shop", "inc-20261127-001", "acknowledge", "alice (Slack)")
    ]


async def test_stale_or_badly_signed_slack_press_is_401(client: TestClient[Any, Any], applier: Applier) -> None:
    body = slack_form(fixture("slack-block-actions-acknowledge.json"))
    old = str(int(NOW) - 600)
    status, answer = await post_slack(client, body, old, acks.slack_signature(body, old, SLACK_SECRET))
    assert status == 401 and "a replay" in answer["reason"]
    ts = str(int(NOW))
    status, _ = await post_slack(client, body, ts, acks.slack_signature(body, ts, "not-the-secret"))
    assert status == 401
    assert applier.acts == []


async def test_slack_press_on_a_missing_incident_is_404(client: TestClient[Any, Any], applier: Applier) -> None:
    applier.answer = hooks.Applied("not-found", "no incident shop/inc-20261127-001")
    body = slack_form(fixture("slack-block-actions-acknowledge.json"))
    ts = str(int(NOW))
    status, answer = await post_slack(client, body, ts, acks.slack_signature(body, ts, SLACK_SECRET))
    assert status == 404 and answer["reason"] == "no incident shop/inc-20261127-001"


async def test_slack_form_without_payload_is_400(client: TestClient[Any, Any]) -> None:
    body = b"foo=bar"
    ts = str(int(NOW))
    status, answer = await post_slack(client, body, ts, acks.slack_signature(body, ts, SLACK_SECRET))
    assert status == 400 and answer["reason"].startswith("payload: required")


async def test_routes_are_served_only_with_a_secret_source() -> None:
    app = intake.bare_app()
    hooks.add_routes(app, pagerduty_secrets=lambda: (PD_SECRET,))
    async with TestClient(TestServer(app)) as c:
        assert (await c.post(hooks.SLACK_PATH, data=b"")).status == 404
        assert (await c.post(hooks.PAGERDUTY_PATH, data=b"{}")).status == 401
        assert (await c.get("/healthz")).status == 200


def test_secret_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("first\n")
    source = hooks.SecretFile(path)
    assert source() == ("first",)
    path.write_text("first\nsecond\n")
    os.utime(path, ns=(1, 2))  # a different mtime for sure, whatever the clock's granularity
    assert source() == ("first", "second")
    assert "first" not in repr(source)
    assert hooks.SecretFile(None)() == ()


# ----------------------------------------------------------------------------- apply (API side)
class FakeApi:
    def __init__(self, obj: dict[str, Any] | None) -> None:
        self.obj = obj
        self.patches: list[dict[str, Any]] = []
        self.conflicts = 0

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.obj)

    def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            from kubernetes.client.exceptions import ApiException

            raise ApiException(status=409)
        self.patches.append(patch)
        return {}


def incident_obj(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncident",
        "metadata": {"name": "inc-20261127-001", "namespace": "shop", "resourceVersion": "42"},
        "spec": {"zentinelRef": {"name": "edge"}, "category": "HighErrorRate", "fingerprint": "edge/HighErrorRate"},
        "status": {"detectedAt": "2026-11-27T03:00:00Z", **status},
    }


def fake(monkeypatch: pytest.MonkeyPatch, obj: dict[str, Any] | None) -> FakeApi:
    from zentinel_operator import k8s

    api = FakeApi(obj)
    monkeypatch.setattr(k8s, "get_custom", api.get_custom)
    monkeypatch.setattr(k8s, "patch_custom", api.patch_custom)
    return api


def test_apply_patches_the_spec_on_the_version_it_decided_on(monkeypatch: pytest.MonkeyPatch) -> None:
    api = fake(monkeypatch, incident_obj())
    api.conflicts = 1
    assert hooks.apply_act(ACT).outcome == "applied"
    assert api.patches == [{"spec": {"acknowledgedBy": "alice (Slack)"}, "metadata": {"resourceVersion": "42"}}]


def test_apply_changes_nothing_on_an_acknowledged_or_missing_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    api = fake(monkeypatch, incident_obj(acknowledgedAt="2026-11-27T03:01:00Z", acknowledgedBy="zoe"))
    done = hooks.apply_act(ACT)
    assert done.outcome == "ignored" and "already acknowledged by zoe" in done.reason and api.patches == []
    api = fake(monkeypatch, None)
    assert hooks.apply_act(ACT) == hooks.Applied("not-found", "no incident shop/inc-20261127-001")
