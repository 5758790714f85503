"""Notifications end to end: the operator as a real process pages real local HTTP receivers.

Assumes the dispatcher is wired into the operator (``registration.startup``:
``memo.passes.notifier = Dispatcher()``; ``handlers.zentinel.reconcile`` calls
``await ctx.notifier.sync(namespace, incident, policy)`` for every incident ``record`` touched), and
the alert intake started when ``ZENTINEL_OPERATOR_ALERT_INTAKE_PORT`` and ``..._TOKEN_FILE`` are set
(``intake.serve`` on ``metricsAddr``), with ``AlertState.merge``/``known`` wired into the pass.

Receivers are aiohttp servers on 127.0.0.1 in a thread of the test process; they record every
request and answer from a per-path script (status codes, or "hang" for an endpoint that never answers).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from support import configs, crash
from support.kube import Kube, deployment, open_incident, running_pods, wait_for
from support.operator import OperatorProcess, free_port, listening
from support.receivers import Received, Receivers
from zentinel_operator import k8s
from zentinel_operator.models.incident import DeliveryRecord
from zentinel_operator.notify.dispatch import write_deliveries

pytestmark = pytest.mark.integration

INTAKE_TOKEN = "intake-" + secrets.token_hex(16)


# -------------------------------------------------------------------------------- setup
def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def policy(receivers: list[dict[str, Any]], primary: list[str], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "receivers": receivers,
        # SEV3 pages (one crash-looping pod out of three). No admin emulators are bound on the pod IPs
        # (so concurrent sessions on one machine cannot clash), hence other incidents may open and
        # page too: every assertion picks the ProcessCrash incident by name.
        "escalation": {"sev3": {"primary": primary}},
        "lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"},
    }
    body.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": body,
    }


def start_edge(kube: Kube, namespace: str, pol: dict[str, Any]) -> list[dict[str, Any]]:
    kube.apply(pol, namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    pods = running_pods(kube, namespace, "app=edge", 3)
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "Zentinel",
            "metadata": {"name": "edge", "labels": {"tier": "edge"}},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        },
        namespace,
    )
    return pods


def crash_one(kube: Kube, namespace: str, pods: list[dict[str, Any]]) -> str:
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash incident")
    assert inc["status"]["severity"] == "SEV3"
    return str(inc["metadata"]["name"])


def deliveries(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    obj = kube.get("zinc", name, namespace) or {}
    result: list[dict[str, Any]] = (obj.get("status") or {}).get("deliveries") or []
    return result


def events_text(kube: Kube, namespace: str) -> str:
    return kube.run("get", "events", "-n", namespace, "-o", "json").stdout


def assert_secret_nowhere(kube: Kube, namespace: str, operator: OperatorProcess, values: list[str]) -> None:
    logs = operator.logs()
    events = events_text(kube, namespace)
    incidents = kube.run("get", "zinc", "-n", namespace, "-o", "json").stdout
    for value in [*values, *(base64.b64encode(v.encode()).decode() for v in values)]:
        for where, text in (("operator log", logs), ("events", events), ("incidents", incidents)):
            assert value not in text, f"a secret value leaked into the {where}"


def notifications_counted(metrics_text: str, labels: dict[str, str]) -> float:
    """The sum of ``zentinel_operator_notifications_total`` over the series carrying ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "zentinel_operator_notifications"
        for sample in family.samples
        if sample.name.endswith("_total") and labels.items() <= sample.labels.items()
    )


def events_of(got: list[Received], key: str) -> list[str]:
    return [str(r.json[key]) for r in got]


# -------------------------------------------------------------------------------- tests
def test_every_receiver_type_gets_exact_payloads_and_no_secret_leaks(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    slack_token = "xoxb-" + secrets.token_hex(12)
    slack_path = f"/services/T0ZEN/B0ZEN/{slack_token}"
    routing_key = "R" + secrets.token_hex(15)
    hook_token = "hook-" + secrets.token_hex(12)
    kube.apply(
        secret(
            "paging",
            {"slack-url": receivers.url(slack_path), "routing-key": routing_key, "hook-token": hook_token},
        ),
        namespace,
    )
    ref = {"name": "paging"}
    pol = policy(
        [
            {"name": "chat", "type": "Slack", "secretRef": {**ref, "key": "slack-url"}},
            {
                "name": "pager",
                "type": "PagerDuty",
                "secretRef": {**ref, "key": "routing-key"},
                "url": receivers.url("/v2/enqueue"),
            },
            {
                "name": "hook",
                "type": "Webhook",
                "url": receivers.url("/hook"),
                "tokenSecretRef": {**ref, "key": "hook-token"},
            },
            {"name": "am", "type": "Alertmanager", "url": receivers.url()},
        ],
        ["chat", "pager", "hook", "am"],
    )
    pods = start_edge(kube, namespace, pol)
    name = crash_one(kube, namespace, pods)
    paths = [slack_path, "/v2/enqueue", "/hook", "/api/v2/alerts"]

    def all_got(count: int) -> bool:
        return all(len(receivers.got(p, name)) >= count for p in paths)

    wait_for(lambda: all_got(1), timeout=30, what="trigger at every receiver")
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=alice")
    wait_for(lambda: all_got(2), timeout=30, what="acknowledge at every receiver")
    crash.recover(kube, pods[0])
    wait_for(lambda: all_got(3), timeout=60, what="resolve at every receiver")
    time.sleep(3)  # several more passes: nothing may be sent twice

    # Slack: the secret URL is where it went; text and blocks tell the story.
    slack = receivers.got(slack_path, name)
    assert len(slack) == 3
    texts = [r.json["text"] for r in slack]
    head = f"[SEV3] ProcessCrash on {namespace}/edge ({name})"
    assert texts[0].startswith(f":rotating_light: {head} triggered")
    assert texts[1].startswith(f":eyes: {head} acknowledged") and "Acknowledged by alice" in texts[1]
    assert texts[2].startswith(f":white_check_mark: {head} resolved")
    first = slack[0].json["blocks"]
    assert [b["type"] for b in first] == ["header", "section", "section", "section", "context"]
    fields = [f["text"] for f in first[2]["fields"]]
    assert "*Severity*\nSEV3" in fields and "*Category*\nProcessCrash" in fields
    assert f"*Zentinel*\n{namespace}/edge" in fields and "*State*\nDetected" in fields
    assert first[4]["elements"][0]["text"] == f"`kubectl get zinc {name} -n {namespace}`"

    # PagerDuty: one dedup key through trigger, acknowledge and resolve.
    pd = receivers.got("/v2/enqueue", name)
    assert events_of(pd, "event_action") == ["trigger", "acknowledge", "resolve"]
    assert {r.json["dedup_key"] for r in pd} == {f"zentinel/{namespace}/{name}"}
    assert {r.json["routing_key"] for r in pd} == {routing_key}
    trig = pd[0].json["payload"]
    assert trig["severity"] == "warning" and trig["source"] == f"{namespace}/edge" and trig["component"] == "edge"
    assert trig["class"] == "ProcessCrash" and trig["custom_details"]["incident"] == name
    assert "payload" not in pd[1].json and "payload" not in pd[2].json

    # Generic webhook: schema version 1, bearer token, idempotency key.
    hooks = receivers.got("/hook", name)
    assert events_of(hooks, "event") == ["trigger", "acknowledge", "resolve"]
    for r in hooks:
        body = r.json
        assert set(body) == {"version", "event", "level", "key", "incident", "escalation"}
        assert body["version"] == "1" and body["level"] == "primary"
        assert r.headers["Authorization"] == f"Bearer {hook_token}"
        assert r.headers["Idempotency-Key"] == body["key"] and r.headers["X-Zentinel-Event"] == body["event"]
        assert body["incident"]["name"] == name and body["incident"]["namespace"] == namespace
    assert [r.json["incident"]["state"] for r in hooks] == ["Detected", "Acknowledged", "Resolved"]
    assert hooks[1].json["incident"]["acknowledgedBy"] == "alice"

    # Alertmanager: firing without endsAt, then the same labels with endsAt.
    am = receivers.got("/api/v2/alerts", name)
    labels = {
        "alertname": "ZentinelIncident",
        "namespace": namespace,
        "zentinel": "edge",
        "incident": name,
        "category": "ProcessCrash",
        "severity": "warning",
    }
    assert am[0].json[0]["labels"] == labels and "endsAt" not in am[0].json[0]
    assert am[-1].json[0]["labels"] == labels and am[-1].json[0]["endsAt"]
    assert am[0].json[0]["startsAt"] == am[-1].json[0]["startsAt"]

    # status.deliveries: one Delivered record per (event, receiver), with stable keys.
    recs = deliveries(kube, namespace, name)
    assert sorted((r["event"], r["receiver"], r["state"]) for r in recs) == sorted(
        (e, rcv, "Delivered") for e in ("trigger", "acknowledge", "resolve") for rcv in ("chat", "pager", "hook", "am")
    )
    assert len({r["key"] for r in recs}) == 12
    assert {r["key"] for r in recs if r["receiver"] == "hook"} == {r.json["key"] for r in hooks}

    assert_secret_nowhere(
        kube, namespace, operator, [slack_token, slack_path, receivers.url(slack_path), routing_key, hook_token]
    )
    # The counter agrees with what status.deliveries says was delivered (every incident of this namespace).
    everything = [
        r for i in kube.list("zentinelincidents", namespace) for r in (i.get("status") or {}).get("deliveries", [])
    ]
    for receiver, kind in (("chat", "Slack"), ("pager", "PagerDuty"), ("hook", "Webhook"), ("am", "Alertmanager")):
        count = sum(1 for r in everything if r["receiver"] == receiver and r["state"] == "Delivered")
        assert count >= 3
        want = {"result": "delivered", "type": kind, "zentinel_namespace": namespace}
        wait_for(
            lambda want=want, count=count: notifications_counted(operator.metrics(), want) == count,
            timeout=10,
            what=f"{count} {kind} deliveries counted",
        )


def test_failing_receivers_are_retried_and_never_stall_the_incident(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    closed = free_port()  # nothing listens there: connection refused
    refused_token = "refused-" + secrets.token_hex(10)
    kube.apply(secret("hooks", {"refused": f"http://127.0.0.1:{closed}/hook/{refused_token}"}), namespace)
    receivers.script("/flaky", 500, 500, 500, 200)
    receivers.script("/blackhole", "hang")
    pol = policy(
        [
            {"name": "blackhole", "type": "Webhook", "url": receivers.url("/blackhole")},
            {"name": "refused", "type": "Webhook", "secretRef": {"name": "hooks", "key": "refused"}},
            {"name": "flaky", "type": "Webhook", "url": receivers.url("/flaky")},
            {"name": "good", "type": "Webhook", "url": receivers.url("/good")},
        ],
        ["blackhole", "refused", "flaky", "good"],
    )
    pods = start_edge(kube, namespace, pol)
    name = crash_one(kube, namespace, pods)
    detected = time.monotonic()

    good = wait_for(lambda: receivers.got("/good", name), timeout=15, what="trigger at the healthy receiver")
    assert good[0].at - detected < 10, "a hanging or refusing receiver delayed the others"

    # The incident goes on regardless: acknowledged and resolved while two receivers are down.
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=bob")
    wait_for(
        lambda: events_of(receivers.got("/good", name), "event") == ["trigger", "acknowledge"],
        timeout=20,
        what="acknowledge at the healthy receiver",
    )
    crash.recover(kube, pods[0])
    done = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt") and o,
        timeout=60,
        what="resolution",
    )
    assert done["status"]["acknowledgedBy"] == "bob"
    wait_for(
        lambda: events_of(receivers.got("/good", name), "event") == ["trigger", "acknowledge", "resolve"],
        timeout=20,
        what="resolve at the healthy receiver",
    )

    # 500 three times, then 200: retried within one send and recorded as Delivered after 4 attempts.
    flaky = wait_for(
        lambda: [r for r in deliveries(kube, namespace, name) if r["receiver"] == "flaky" and r["event"] == "trigger"],
        timeout=30,
        what="flaky delivery record",
    )
    assert flaky[0]["state"] == "Delivered" and flaky[0]["attempts"] == 4
    assert "lastError" not in flaky[0]
    assert events_of(receivers.got("/flaky", name), "event")[:4] == ["trigger"] * 4

    # Connection refused: Pending with a redacted error, retried later.
    refused = wait_for(
        lambda: [r for r in deliveries(kube, namespace, name) if r["receiver"] == "refused"],
        timeout=30,
        what="refused delivery record",
    )
    assert refused[0]["event"] == "trigger" and refused[0]["state"] == "Pending" and refused[0]["attempts"] >= 1
    assert refused[0]["lastError"].startswith(f"cannot connect to http://127.0.0.1:{closed}/…")

    # Never answering: held one worker until the per-send time bound, then Pending with a timeout error.
    hung = wait_for(
        lambda: [r for r in deliveries(kube, namespace, name) if r["receiver"] == "blackhole"],
        timeout=60,
        what="blackhole delivery record",
    )
    assert hung[0]["state"] == "Pending" and hung[0]["lastError"].startswith(
        f"no answer from http://127.0.0.1:{receivers.port}/… within"
    )
    # Order per receiver: nothing after the stuck trigger was sent to it.
    assert events_of(receivers.got("/blackhole", name), "event") == ["trigger"] * len(receivers.got("/blackhole", name))

    assert_secret_nowhere(kube, namespace, operator, [refused_token, f"/hook/{refused_token}"])
    wait_for(
        lambda: (
            notifications_counted(
                operator.metrics(), {"result": "retrying", "type": "Webhook", "zentinel_namespace": namespace}
            )
            > 0
        ),
        timeout=10,
        what="the retrying counter",
    )


def remediations_once(inc: dict[str, Any]) -> list[dict[str, Any]]:
    """The incident's remediation records, checked for repeats: one record per id and per action."""
    recs: list[dict[str, Any]] = (inc.get("status") or {}).get("remediations") or []
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)), f"a remediation record repeated: {ids}"
    actions = [r["action"] for r in recs]
    assert len(actions) == len(set(actions)), f"a remediation step taken twice: {actions}"
    return recs


@pytest.mark.parametrize("answer", [500, "hang"], ids=["answering-500", "timing-out"])
def test_a_receiver_down_for_a_minute_gets_what_it_is_owed_once_after_it_recovers(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, answer: int | str
) -> None:
    """One receiver answers 500 (or never answers) for at least a minute, the whole life of an incident.

    The healthy receiver gets trigger, acknowledge and resolve meanwhile; once the other is back it gets
    the same three, in order, once each (the failed attempts carry the same idempotency key), and every
    delivery is recorded Delivered.
    """
    outage = 60.0
    receivers.down("/down", answer)
    pol = policy(
        [
            {"name": "down", "type": "Webhook", "url": receivers.url("/down")},
            {"name": "good", "type": "Webhook", "url": receivers.url("/good")},
        ],
        ["down", "good"],
    )
    pods = start_edge(kube, namespace, pol)
    name = crash_one(kube, namespace, pods)
    wait_for(lambda: receivers.got("/good", name), timeout=30, what="the trigger at the healthy receiver")
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=dana")
    wait_for(
        lambda: events_of(receivers.got("/good", name), "event") == ["trigger", "acknowledge"],
        timeout=30,
        what="the acknowledge at the healthy receiver",
    )
    crash.recover(kube, pods[0])
    wait_for(
        lambda: events_of(receivers.got("/good", name), "event") == ["trigger", "acknowledge", "resolve"],
        timeout=60,
        what="the resolve at the healthy receiver",
    )
    first_failure = receivers.got("/down", name)[0].at
    time.sleep(max(0.0, first_failure + outage - time.monotonic()))
    failed = receivers.got("/down", name)
    assert {r.answered for r in failed} == {answer}
    assert time.monotonic() - first_failure >= outage
    assert len(failed) > 4, "the sender did not come back after its first send's attempts"
    receivers.up("/down")
    recovered = time.monotonic()

    def accepted() -> list[str]:
        return [str(r.json["event"]) for r in receivers.got("/down", name) if r.answered == 200]

    wait_for(lambda: accepted() == ["trigger", "acknowledge", "resolve"], timeout=240, what="what /down is owed")
    time.sleep(5)  # more passes: nothing may be sent again
    assert accepted() == ["trigger", "acknowledge", "resolve"]
    down = receivers.got("/down", name)
    keys: dict[str, set[str]] = {}
    for r in down:
        keys.setdefault(str(r.json["event"]), set()).add(r.headers["Idempotency-Key"])
    assert all(len(k) == 1 for k in keys.values()), keys  # retries are the same delivery
    assert len(set().union(*keys.values())) == 3
    good = receivers.got("/good", name)
    assert events_of(good, "event") == ["trigger", "acknowledge", "resolve"]
    assert all(r.answered == 200 for r in good)

    recs = {(r["receiver"], r["event"]): r for r in deliveries(kube, namespace, name)}
    assert sorted(recs) == sorted((rcv, e) for rcv in ("down", "good") for e in ("trigger", "acknowledge", "resolve"))
    assert {r["state"] for r in recs.values()} == {"Delivered"}
    assert [recs[("good", e)]["attempts"] for e in ("trigger", "acknowledge", "resolve")] == [1, 1, 1]
    assert recs[("down", "trigger")]["attempts"] == len([r for r in down if r.json["event"] == "trigger"])
    assert recs[("down", "trigger")]["attempts"] > 4
    assert {r["key"] for r in recs.values() if r["receiver"] == "down"} == set().union(*keys.values())
    crashes = [i for i in kube.list("zentinelincidents", namespace) if i["spec"]["category"] == "ProcessCrash"]
    assert [i["metadata"]["name"] for i in crashes] == [name]
    done = crashes[0]
    assert done["status"]["state"] == "Resolved"
    assert len([t for t in done["status"]["timeline"] if t["type"] == "Detected"]) == 1
    remediations_once(done)
    back = next(r for r in down if r.answered == 200)
    print(
        f"\n[figures] /down answered {answer} for {recovered - first_failure:.0f} s; the trigger was delivered "
        f"{back.at - recovered:.1f} s after it recovered, on attempt {recs[('down', 'trigger')]['attempts']}"
    )


def test_restart_sends_what_is_missing_and_repeats_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pol = policy([{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}], ["hook"])
    pods = start_edge(kube, namespace, pol)
    name = crash_one(kube, namespace, pods)
    wait_for(
        lambda: [r for r in deliveries(kube, namespace, name) if r["state"] == "Delivered"],
        timeout=30,
        what="trigger recorded as Delivered",
    )
    operator.kill()
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=carol")
    operator.start()
    wait_for(
        lambda: events_of(receivers.got("/hook", name), "event") == ["trigger", "acknowledge"],
        timeout=30,
        what="the missing acknowledge after the restart",
    )
    time.sleep(4)  # more passes of the new process
    got = receivers.got("/hook", name)
    assert events_of(got, "event") == ["trigger", "acknowledge"]
    assert got[1].json["incident"]["acknowledgedBy"] == "carol"
    recs = deliveries(kube, namespace, name)
    assert sorted((r["event"], r["state"]) for r in recs) == [("acknowledge", "Delivered"), ("trigger", "Delivered")]


# -------------------------------------------------------------------------- the intake
@pytest.fixture
def intake_port() -> int:
    return free_port()


@pytest.fixture
def operator_env(tmp_path: Path, intake_port: int) -> dict[str, str]:
    token_file = tmp_path / "intake-token"
    token_file.write_text(INTAKE_TOKEN + "\n")
    return {
        "ZENTINEL_OPERATOR_ALERT_INTAKE_PORT": str(intake_port),
        "ZENTINEL_OPERATOR_ALERT_INTAKE_TOKEN_FILE": str(token_file),
    }


def post_alerts(port: int, body: dict[str, Any], token: str = INTAKE_TOKEN) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/alertmanager",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def am_payload(namespace: str, status: str, starts: str) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {
            "alertname": "EdgeSlowCheckout",
            "namespace": namespace,
            "zentinel": "edge",
            "severity": "major",
        },
        "annotations": {"summary": "checkout p99 above 3s"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": "0a1b2c3d4e5f",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="EdgeSlowCheckout"}',
        "status": status,
        "receiver": "zentinel",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": [alert],
    }


def test_alertmanager_alert_opens_pages_and_resolves_an_incident(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    receivers: Receivers,
    intake_port: int,
) -> None:
    pol = policy(
        [{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}],
        ["hook"],
        escalation={"sev2": {"primary": ["hook"]}},
    )
    start_edge(kube, namespace, pol)
    # The liveness probe answers while the operator waits for its Lease; the intake opens once it is active.
    wait_for(lambda: listening(intake_port), timeout=60, what="the alert intake listening")
    status, body = post_alerts(intake_port, am_payload(namespace, "firing", "2026-11-27T03:00:00Z"), token="wrong")
    assert status == 401
    status, body = post_alerts(intake_port, am_payload(namespace, "firing", "2026-11-27T03:00:00Z"))
    assert status == 200 and body["processed"] == 1, body
    name = body["incidents"][0]["name"]
    assert body["incidents"][0]["created"] is True
    # At-least-once: the same post again changes nothing.
    status, again = post_alerts(intake_port, am_payload(namespace, "firing", "2026-11-27T03:00:00Z"))
    assert status == 200 and again["duplicates"] == 1 and again["incidents"] == []

    inc = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o.get("status", {}).get("state") and o,
        timeout=30,
        what="the alert's incident detected",
    )
    assert inc["spec"]["source"] == "alertmanager" and inc["spec"]["category"] == "ExternalAlert"
    assert inc["status"]["severity"] == "SEV2"
    assert "EdgeSlowCheckout: checkout p99 above 3s" in inc["status"]["summary"]
    hooks = wait_for(lambda: receivers.got("/hook", name), timeout=20, what="the page for the alert")
    assert hooks[0].json["incident"]["source"] == "alertmanager"
    assert len([i for i in kube.list("zentinelincidents", namespace) if i["spec"]["category"] == "ExternalAlert"]) == 1

    status, body = post_alerts(intake_port, am_payload(namespace, "resolved", "2026-11-27T03:00:00Z"))
    assert status == 200 and body["processed"] == 1
    done = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt") and o,
        timeout=30,
        what="resolution after the alert resolved",
    )
    assert done["status"]["state"] == "Resolved"
    wait_for(
        lambda: events_of(receivers.got("/hook", name), "event") == ["trigger", "resolve"],
        timeout=20,
        what="the resolve notice",
    )
    assert INTAKE_TOKEN not in operator.logs()


# ------------------------------------------------------------------- the status writer
def test_deliveries_writer_is_optimistic_and_touches_nothing_else(
    kube: Kube, namespace: str, in_process_api: None
) -> None:
    """Only ``status.deliveries`` is written, with the resourceVersion read: stale writes get 409 and are redone."""
    name = "inc-20261127-001"
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "ZentinelIncident",
            "metadata": {"name": name},
            "spec": {"zentinelRef": {"name": "edge"}, "category": "ProcessCrash", "fingerprint": "edge/ProcessCrash"},
        },
        namespace,
    )
    kube.patch_status("zinc", name, namespace, {"status": {"state": "Detected", "summary": "first", "count": 1}})
    stale = (kube.get("zinc", name, namespace) or {})["metadata"]["resourceVersion"]
    kube.patch_status("zinc", name, namespace, {"status": {"summary": "second"}})
    with pytest.raises(ApiException) as refused:
        k8s.custom().patch_namespaced_custom_object_status(
            "zentinel.io",
            "v1alpha1",
            namespace,
            "zentinelincidents",
            name,
            {"metadata": {"resourceVersion": stale}, "status": {"deliveries": []}},
            _content_type="application/merge-patch+json",
        )
    assert refused.value.status == 409

    def record(i: int) -> DeliveryRecord:
        return DeliveryRecord(receiver=f"r{i}", event="trigger", key=f"k{i}", state="Delivered", attempts=1)

    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(3):
                assert write_deliveries(namespace, name, [record(i * 10 + j)])
        except BaseException as e:  # surfaced below
            errors.append(e)

    def other_writer() -> None:
        for n in range(6):
            kube.patch_status("zinc", name, namespace, {"status": {"count": 10 + n}})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)] + [threading.Thread(target=other_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    st = (kube.get("zinc", name, namespace) or {})["status"]
    assert sorted(r["key"] for r in st["deliveries"]) == sorted(f"k{i * 10 + j}" for i in range(4) for j in range(3))
    assert st["summary"] == "second" and st["state"] == "Detected" and st["count"] == 15
    assert write_deliveries(namespace, "inc-20261127-404", [record(99)]) is False
