"""The Alertmanager intake as a real aiohttp application: auth, size cap, payload checks, dedup, state, and
the pass it runs recording the alerts with the one incident writer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from support.fake_api import FakeApi
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.handlers import incidents
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec
from zentinel_operator.notify import intake

TOKEN = "s3cr3t-intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


class Runner:
    """Stands in for registration's alert pass: under no lock but in the same order (update, then the pass), it
    records what the alerts' signals make, with the real incident writer (``handlers.incidents.record``, the
    pass's) on an in-memory API. ``unknown``: Zentinels that do not exist; ``fail``: the pass fails, after the
    update (as a pass whose Incidents stage fails)."""

    def __init__(self, state: intake.AlertState) -> None:
        self.state = state
        self.api = FakeApi()
        self.calls: list[tuple[str, str]] = []
        self.unknown: set[str] = set()
        self.fail = False

    async def __call__(self, namespace: str, zentinel: str, update: Callable[[], None]) -> intake.Passed:
        self.calls.append((namespace, zentinel))
        update()
        if zentinel in self.unknown:
            return intake.Passed(reason=f"no Zentinel {namespace}/{zentinel}")
        if self.fail:
            raise RuntimeError("API server unavailable")
        recorded = incidents.record(
            api=self.api,
            namespace=namespace,
            zentinel=zentinel,
            zentinel_obj={
                "apiVersion": "zentinel.io/v1alpha1",
                "kind": "Zentinel",
                "metadata": {"name": zentinel, "namespace": namespace},
            },
            policy=ZentinelIncidentPolicySpec(),
            findings=self.state.merge(namespace, zentinel, []),
            observable=set(),
            now=T0,
            alerts=self.state,
        )
        return intake.Passed(carriers=recorded.carriers, created=frozenset(recorded.created))

    def incident(self, name: str) -> dict[str, Any]:
        obj = self.api.get("incident", name)
        assert obj is not None, name
        return obj


def alert(
    status: str = "firing",
    *,
    fingerprint: str = "fp1",
    starts: str = "2026-11-27T02:59:30.123456789Z",
    **labels: str,
) -> dict[str, Any]:
    base = {"alertname": "EdgeHighErrorRate", "namespace": "shop", "zentinel": "edge", "severity": "critical"}
    base.update(labels)
    return {
        "status": status,
        "labels": base,
        "annotations": {"summary": "5xx above 20%", "description": "edge answers 5xx for 23% of requests"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T03:10:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=...",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], group: str = '{}:{alertname="EdgeHighErrorRate"}') -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "zentinel",
        "groupLabels": {"alertname": "EdgeHighErrorRate"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
def state() -> intake.AlertState:
    return intake.AlertState()


@pytest.fixture
def runner(state: intake.AlertState) -> Runner:
    return Runner(state)


@pytest.fixture
async def client(state: intake.AlertState, runner: Runner) -> AsyncIterator[TestClient[Any, Any]]:
    app = intake.build_app(token=TOKEN, state=state, run_pass=runner, max_bytes=4096, namespaces={"shop"})
    async with TestClient(TestServer(app)) as c:
        yield c


async def post(client: TestClient[Any, Any], body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await client.post(intake.PATH, data=data, headers=headers if headers is not None else AUTH)
    return resp.status, await resp.json()


# ------------------------------------------------------------------------------ auth
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
async def test_missing_or_wrong_token_is_refused(
    client: TestClient[Any, Any], runner: Runner, headers: dict[str, str]
) -> None:
    status, body = await post(client, payload(alert()), headers)
    assert status == 401 and body == {"status": "error", "error": "missing or wrong bearer token"}
    assert runner.calls == []


async def test_401_carries_www_authenticate(client: TestClient[Any, Any]) -> None:
    resp = await client.post(intake.PATH, data=b"{}")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_empty_token_is_not_allowed(state: intake.AlertState) -> None:
    with pytest.raises(ValueError, match="bearer token"):
        intake.build_app(token="", state=state, run_pass=Runner(state))


# ------------------------------------------------------------------------- size cap
async def test_body_over_the_cap_is_413(client: TestClient[Any, Any], runner: Runner) -> None:
    big = payload(*[alert(fingerprint=f"fp{i}") for i in range(40)])
    assert len(json.dumps(big)) > 4096
    status, body = await post(client, big)
    assert status == 413 and "4096" in body["error"]
    assert runner.calls == []


async def test_chunked_body_over_the_cap_is_413(client: TestClient[Any, Any]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    resp = await client.post(intake.PATH, data=chunks(), headers=AUTH)
    assert resp.status == 413


# ---------------------------------------------------------------------- bad payloads
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ([], "must be a JSON object"),
        ({**payload(alert()), "version": "3"}, 'version: expected "4"'),
        ({**payload(alert()), "version": 4}, 'version: expected "4"'),
        ({k: v for k, v in payload(alert()).items() if k != "groupKey"}, "groupKey: required"),
        ({**payload(alert()), "alerts": {}}, "alerts: required, a list"),
        (payload({**alert(), "status": "pending"}), 'alerts[0].status: must be "firing" or "resolved"'),
        (payload({k: v for k, v in alert().items() if k != "labels"}), "alerts[0].labels: required"),
        (payload({**alert(), "labels": {"a": 1}}), "alerts[0].labels: must be an object of strings"),
        (payload(alert(), {k: v for k, v in alert().items() if k != "startsAt"}), "alerts[1].startsAt: required"),
        (payload({**alert(), "startsAt": "yesterday"}), "alerts[0].startsAt: 'yesterday' is not an RFC 3339 time"),
    ],
)
async def test_bad_payloads_are_400_with_a_clear_message(
    client: TestClient[Any, Any], runner: Runner, body: Any, message: str
) -> None:
    status, answer = await post(client, body)
    assert status == 400, answer
    assert answer["status"] == "error" and message in answer["error"]
    assert runner.calls == []


# --------------------------------------------------------------- firing, dedup, resolve
async def test_firing_alert_sets_the_signal_and_the_pass_records_it(
    client: TestClient[Any, Any], runner: Runner, state: intake.AlertState
) -> None:
    assert not state.known("shop", "edge", Category.EXTERNAL_ALERT)
    status, body = await post(client, payload(alert()))
    assert status == 200
    assert body == {
        "status": "ok",
        "received": 1,
        "processed": 1,
        "duplicates": 0,
        "ignored": [],
        "incidents": [{"name": "inc-20261127-001", "created": True}],
    }
    assert runner.calls == [("shop", "edge")]
    inc = runner.incident("inc-20261127-001")
    assert inc["spec"]["source"] == "alertmanager" and inc["spec"]["category"] == "ExternalAlert"
    assert inc["status"]["severity"] == "SEV1" and inc["status"]["summary"] == "EdgeHighErrorRate: 5xx above 20%"
    found = state.active("shop", "edge", Category.EXTERNAL_ALERT)
    assert found is not None
    assert found.severity == Severity.SEV1 and found.category == Category.EXTERNAL_ALERT
    assert found.summary == "EdgeHighErrorRate: 5xx above 20%"
    assert found.evidence == (
        "Alertmanager: EdgeHighErrorRate (SEV1) firing since 2026-11-27T02:59:30.123456789Z: "
        "edge answers 5xx for 23% of requests",
    )
    assert state.signal("shop", "edge", "ExternalAlert") == (found, True)


async def test_credentials_in_an_alerts_text_are_redacted_before_they_become_a_finding(
    client: TestClient[Any, Any], state: intake.AlertState
) -> None:
    """Summary and description become the incident's summary, its Events and its pages: no credential in them."""
    leaky = alert()
    leaky["annotations"] = {
        "summary": "checkout rejected; client sent Authorization: Bearer 3f9a8b7c6d5e4f30a1b2c3d4e5f60718",
        "description": "probe https://monitor:hunter2pw5566xyz@10.0.1.10/health failed",
    }
    status, _ = await post(client, payload(leaky))
    assert status == 200
    found = state.active("shop", "edge", Category.EXTERNAL_ALERT)
    assert found is not None
    assert found.summary == "EdgeHighErrorRate: checkout rejected; client sent Authorization: Bearer [REDACTED]"
    assert found.evidence[0].endswith("probe https://monitor:[REDACTED]@10.0.1.10/health failed")
    assert "3f9a8b7c6d5e4f30a1b2c3d4e5f60718" not in repr(found) and "hunter2pw5566xyz" not in repr(found)


async def test_a_second_identical_post_changes_nothing(
    client: TestClient[Any, Any], runner: Runner, state: intake.AlertState
) -> None:
    await post(client, payload(alert()))
    before = state.active("shop", "edge", Category.EXTERNAL_ALERT)
    status, body = await post(client, payload(alert()))
    assert status == 200 and body["processed"] == 0 and body["duplicates"] == 1 and body["incidents"] == []
    assert len(runner.calls) == 1
    assert state.active("shop", "edge", Category.EXTERNAL_ALERT) == before


async def test_resolved_alert_clears_the_signal_and_late_duplicates_do_not_revive_it(
    client: TestClient[Any, Any], state: intake.AlertState
) -> None:
    await post(client, payload(alert()))
    status, body = await post(client, payload(alert("resolved")))
    assert status == 200 and body["processed"] == 1
    assert state.active("shop", "edge", Category.EXTERNAL_ALERT) is None
    assert state.known("shop", "edge", Category.EXTERNAL_ALERT)  # known healthy, not unknown
    # At-least-once delivery: the old firing post arrives again after the resolution.
    _, body = await post(client, payload(alert()))
    assert body["duplicates"] == 1
    assert state.active("shop", "edge", Category.EXTERNAL_ALERT) is None
    # A new firing (new startsAt) is a new occurrence.
    _, body = await post(client, payload(alert(starts="2026-11-27T03:20:00Z")))
    assert body["processed"] == 1
    assert state.active("shop", "edge", Category.EXTERNAL_ALERT) is not None


async def test_labels_map_category_and_severity(
    client: TestClient[Any, Any], runner: Runner, state: intake.AlertState
) -> None:
    alerts = [
        alert(fingerprint="a", zentinel_category="high_error_rate", severity="warning"),
        alert(fingerprint="b", zentinel_category="HighErrorRate", severity="major"),
        alert(fingerprint="c", zentinel_category="no-such-thing", severity="info", zentinel="other"),
    ]
    status, body = await post(client, payload(*alerts))
    assert status == 200 and body["processed"] == 3
    # Two alerts on one signal: the worst severity wins; one incident each signal, one pass each Zentinel.
    assert runner.calls == [("shop", "edge"), ("shop", "other")]
    f = state.active("shop", "edge", Category.HIGH_ERROR_RATE)
    assert f is not None and f.severity == Severity.SEV2 and f.summary.startswith("2 alerts firing")
    other = state.active("shop", "other", Category.EXTERNAL_ALERT)
    assert other is not None and other.severity == Severity.SEV4
    assert [i["created"] for i in body["incidents"]] == [True, True]


async def test_configurable_label_names(state: intake.AlertState, runner: Runner) -> None:
    names = intake.IntakeLabels(namespace="kube_namespace", zentinel="proxy", category="kind", severity="level")
    app = intake.build_app(token=TOKEN, state=state, run_pass=runner, labels=names)
    raw = alert()
    raw["labels"] = {
        "alertname": "X",
        "kube_namespace": "prod",
        "proxy": "gw",
        "kind": "MemoryExhaustion",
        "level": "error",
    }
    async with TestClient(TestServer(app)) as c:
        status, body = await post(c, payload(raw))
    assert status == 200 and body["processed"] == 1
    f = state.active("prod", "gw", Category.MEMORY_EXHAUSTION)
    assert f is not None and f.severity == Severity.SEV2


async def test_ignored_alerts_say_why(client: TestClient[Any, Any], runner: Runner, state: intake.AlertState) -> None:
    runner.unknown.add("ghost")
    unnamed = alert(fingerprint="a")
    del unnamed["labels"]["zentinel"]
    alerts = [
        unnamed,
        alert(fingerprint="b", namespace="elsewhere"),
        alert(fingerprint="c", alertname="ZentinelIncident"),
        alert(fingerprint="d", zentinel="ghost"),
    ]
    status, body = await post(client, payload(*alerts))
    assert status == 200 and body["processed"] == 0
    reasons = {i["fingerprint"]: i["reason"] for i in body["ignored"]}
    assert reasons == {
        "a": "labels 'namespace' and 'zentinel' are required to name the Zentinel",
        "b": "namespace 'elsewhere' is not watched by this operator",
        "c": "the operator's own ZentinelIncident alert",
        "d": "no Zentinel shop/ghost",
    }
    # The ghost's alert was taken back: no signal, and nothing known of it.
    assert not state.known("shop", "ghost", Category.EXTERNAL_ALERT) and runner.api.names("incident") == []


async def test_a_pass_that_cannot_record_answers_503_and_the_retry_is_processed(
    client: TestClient[Any, Any], runner: Runner, state: intake.AlertState
) -> None:
    runner.fail = True
    status, body = await post(client, payload(alert()))
    assert status == 503 and "try again" in body["error"]
    assert runner.api.names("incident") == []
    # The signal stays (it is true, and the next pass records it); nothing was remembered, so the retry counts.
    assert state.active("shop", "edge", Category.EXTERNAL_ALERT) is not None
    runner.fail = False
    status, body = await post(client, payload(alert()))
    assert status == 200 and body["processed"] == 1 and body["duplicates"] == 0
    assert body["incidents"] == [{"name": "inc-20261127-001", "created": True}]


async def test_missing_fingerprint_is_derived_from_the_labels(
    client: TestClient[Any, Any], state: intake.AlertState
) -> None:
    raw = alert()
    del raw["fingerprint"]
    _, first = await post(client, payload(raw))
    _, again = await post(client, payload(raw))
    assert first["processed"] == 1 and again["duplicates"] == 1


# --------------------------------------------------------------------- state helpers
def test_merge_adds_alert_findings_per_category_worst_wins() -> None:
    state = intake.AlertState()
    state.fire(
        "shop",
        "edge",
        Category.HIGH_ERROR_RATE,
        intake.FiringAlert("fp", "A", Severity.SEV1, "bad", "2026-11-27T03:00:00Z"),
    )
    state.fire("shop", "edge", Category.EXTERNAL_ALERT, intake.FiringAlert("fp2", "B", Severity.SEV4, "meh", "x"))
    state.fire("shop", "else", Category.EXTERNAL_ALERT, intake.FiringAlert("fp3", "C", Severity.SEV1, "no", "x"))
    own = [
        Finding(category=Category.HIGH_ERROR_RATE, severity=Severity.SEV3, summary="5xx 2%"),
        Finding(category=Category.PROCESS_CRASH, severity=Severity.SEV2, summary="crash"),
    ]
    merged = state.merge("shop", "edge", own)
    assert [(f.category, f.severity) for f in merged] == [
        (Category.HIGH_ERROR_RATE, Severity.SEV1),
        (Category.PROCESS_CRASH, Severity.SEV2),
        (Category.EXTERNAL_ALERT, Severity.SEV4),
    ]
    state.clear("shop", "edge", Category.HIGH_ERROR_RATE, "fp")
    assert [f.severity for f in state.merge("shop", "edge", own)][:1] == [Severity.SEV3]


@pytest.mark.parametrize(
    ("word", "sev"),
    [
        ("critical", Severity.SEV1),
        ("error", Severity.SEV2),
        ("major", Severity.SEV2),
        ("warning", Severity.SEV3),
        ("info", Severity.SEV4),
        ("minor", Severity.SEV4),
        ("SEV2", Severity.SEV2),
        ("page-me", Severity.SEV3),
        (None, Severity.SEV3),
    ],
)
def test_severity_words(word: str | None, sev: Severity) -> None:
    assert intake.map_severity(word) == sev


def test_dedup_memory_is_bounded() -> None:
    state = intake.AlertState(dedup_size=3)
    for i in range(5):
        state.remember(("g", f"fp{i}", "firing", "t"))
    assert not state.seen(("g", "fp0", "firing", "t")) and state.seen(("g", "fp4", "firing", "t"))


async def test_serve_listens_on_a_real_port(state: intake.AlertState, runner: Runner) -> None:
    server = await intake.serve("127.0.0.1", 0, token=TOKEN, state=state, run_pass=runner)
    try:
        host, port = server.addresses[0][:2]
        async with aiohttp.ClientSession(trust_env=False) as s:
            async with s.post(f"http://{host}:{port}{intake.PATH}", json=payload(alert()), headers=AUTH) as resp:
                assert resp.status == 200 and (await resp.json())["processed"] == 1
            async with s.get(f"http://{host}:{port}/healthz") as resp:
                assert resp.status == 200
    finally:
        await server.cleanup()
