"""Recording findings as incidents, driven through an in-memory API (``support.fake_api``): create, find,
deduplicate, reopen, and the alert intake's findings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.fake_api import FakeApi, api_error
from unit.test_remediation_plan import NOW, finding, policy
from zentinel_operator.core import lifecycle as lc
from zentinel_operator.handlers import incidents
from zentinel_operator.models.common import Category, Severity, Source
from zentinel_operator.models.incident import ZentinelIncident
from zentinel_operator.names import ANN_RESOLVED_BY, LABEL_CATEGORY, LABEL_FINGERPRINT, LABEL_ZENTINEL

TODAY = "inc-20261127"
CRASH = finding(Category.PROCESS_CRASH, Severity.SEV2)
ZENTINEL_OBJ = {
    "apiVersion": "zentinel.io/v1alpha1",
    "kind": "Zentinel",
    "metadata": {"name": "edge", "namespace": "shop"},
}


def record(
    api: FakeApi, *findings: Any, now: dt.datetime = NOW, observable: set[Category] | None = None, listed: Any = None
) -> Any:
    return incidents.record(
        api=api,
        namespace="shop",
        zentinel="edge",
        zentinel_obj=ZENTINEL_OBJ,
        policy=policy(),
        findings=list(findings),
        observable=observable if observable is not None else {f.category for f in findings},
        now=now,
        listed=listed,
    )


def model(api: FakeApi, name: str) -> ZentinelIncident:
    return ZentinelIncident.model_validate(api.get("incident", name))


def resolved_incident(api: FakeApi, name: str, *, resolved_at: dt.datetime, by: str | None = None) -> None:
    """A ProcessCrash incident of edge resolved at ``resolved_at`` (by a person: ``by``, with the request left)."""
    spec: dict[str, Any] = {"zentinelRef": {"name": "edge"}, "category": "ProcessCrash", "fingerprint": "edge/x"}
    metadata: dict[str, Any] = {"name": name, "labels": {LABEL_ZENTINEL: "edge"}}
    if by:
        spec["resolvedBy"] = by
        metadata["annotations"] = {ANN_RESOLVED_BY: by}
    status = {
        "severity": "SEV2",
        "state": "Resolved",
        "detectedAt": (resolved_at - dt.timedelta(hours=1)).isoformat(),
        "resolvedAt": resolved_at.isoformat(),
    }
    api.put("incident", {"metadata": metadata, "spec": spec, "status": status})


# ---------------------------------------------------------------------------------- create
def test_a_new_finding_creates_an_incident_and_records_its_status() -> None:
    api = FakeApi()
    result = record(api, CRASH)
    name = f"{TODAY}-001"
    assert result.created == [name] and api.names("incident") == [name]
    obj = api.get("incident", name)
    assert obj is not None
    fp = lc.fingerprint("edge", Category.PROCESS_CRASH)
    assert obj["metadata"]["labels"] == {
        LABEL_ZENTINEL: "edge",
        LABEL_CATEGORY: "ProcessCrash",
        LABEL_FINGERPRINT: lc.fingerprint_label(fp),
        "app.kubernetes.io/managed-by": "zentinel-incident-operator",
    }
    assert obj["spec"] == {
        "zentinelRef": {"name": "edge"},
        "category": "ProcessCrash",
        "fingerprint": fp,
        "source": "operator",
    }
    status = model(api, name).status
    assert status.detected_at == NOW and status.severity == Severity.SEV2 and lc.is_open(status)
    assert [i.metadata.name for i in result.open] == [name] and result.open[0].status == status
    # Detected: said on the incident, and on the Zentinel.
    assert [(e.kind, e.name, e.reason) for e in api.events] == [
        ("ZentinelIncident", name, "IncidentDetected"),
        ("Zentinel", "edge", "IncidentDetected"),
    ]


def test_a_name_taken_meanwhile_by_another_creator_is_retried_with_the_next() -> None:
    api = FakeApi()
    api.fail("create_incident", api_error(409, "AlreadyExists", "zentinelincidents"), name=f"{TODAY}-001")
    result = record(api, CRASH)
    assert api.called("create_incident") == [f"{TODAY}-001", f"{TODAY}-002"]
    assert result.created == [f"{TODAY}-002"] and model(api, f"{TODAY}-002").status.detected_at == NOW


def test_names_follow_the_days_incidents_already_there() -> None:
    api = FakeApi()
    resolved_incident(api, f"{TODAY}-004", resolved_at=NOW - dt.timedelta(days=1))  # outside the reopen window
    result = record(api, CRASH)
    assert result.created == [f"{TODAY}-005"]
    assert model(api, f"{TODAY}-004").status.resolved_at is not None  # the old one is left resolved


def test_a_failed_create_is_raised_not_retried() -> None:
    api = FakeApi()
    api.fail("create_incident", api_error(403, "Forbidden", "zentinelincidents"))
    with pytest.raises(ApiException) as raised:
        record(api, CRASH)
    assert raised.value.status == 403  # the stage fails (the pass reports it)
    assert api.called("create_incident") == [f"{TODAY}-001"] and api.names("incident") == []


# ------------------------------------------------------------------------------------ find
def test_the_same_finding_next_pass_lands_on_the_open_incident() -> None:
    api = FakeApi()
    record(api, CRASH)
    again = record(api, CRASH, now=NOW + dt.timedelta(seconds=30))
    assert again.created == [] and api.names("incident") == [f"{TODAY}-001"]
    assert api.called("create_incident") == [f"{TODAY}-001"]
    status = model(api, f"{TODAY}-001").status
    assert status.detected_at == NOW and status.last_seen_at == NOW + dt.timedelta(seconds=30)


def test_each_category_has_its_own_incident() -> None:
    api = FakeApi()
    result = record(api, CRASH, finding(Category.HIGH_ERROR_RATE))
    assert result.created == [f"{TODAY}-001", f"{TODAY}-002"]
    assert [model(api, n).spec.category for n in result.created] == [Category.PROCESS_CRASH, Category.HIGH_ERROR_RATE]


def test_an_unchanged_incident_is_not_written_again() -> None:
    api = FakeApi()
    record(api, CRASH)
    before = api.called("patch_incident_status")
    # No finding, the signal unobservable: nothing changes, so nothing is written.
    record(api, observable=set())
    assert api.called("patch_incident_status") == before


def test_a_malformed_incident_is_left_alone() -> None:
    api = FakeApi()
    api.put("incident", {"metadata": {"name": "junk", "labels": {LABEL_ZENTINEL: "edge"}}, "spec": {"category": 7}})
    result = record(api, CRASH)
    assert result.created == [f"{TODAY}-001"]
    assert "junk" not in api.called("patch_incident_status")


# ---------------------------------------------------------------------------------- reopen
def test_a_signal_back_inside_the_reopen_window_reopens_and_consumes_the_old_resolution() -> None:
    api = FakeApi()
    name = f"{TODAY}-001"
    resolved_incident(api, name, resolved_at=NOW - dt.timedelta(minutes=30), by="alice")
    result = record(api, CRASH)
    assert result.created == [] and api.names("incident") == [name]
    reopened = model(api, name)
    assert reopened.status.resolved_at is None and lc.is_open(reopened.status) and reopened.status.flap_count == 1
    # The request that resolved it last time is gone, so it does not resolve it again...
    assert reopened.spec.resolved_by is None
    assert ANN_RESOLVED_BY not in (api.get("incident", name)["metadata"].get("annotations") or {})  # type: ignore[index]
    # ...and it went first: were the operator to stop between the writes, nothing would resolve it again.
    operations = [op for op, n in api.calls if n == name and op.startswith("patch")]
    assert operations == ["patch_incident", "patch_incident_status"]
    assert ("ZentinelIncident", name, "IncidentReopened") in [(e.kind, e.name, e.reason) for e in api.events]


def test_a_signal_back_after_the_reopen_window_opens_a_new_incident() -> None:
    api = FakeApi()
    resolved_incident(api, f"{TODAY}-001", resolved_at=NOW - dt.timedelta(hours=2))
    result = record(api, CRASH)
    assert result.created == [f"{TODAY}-002"]
    assert model(api, f"{TODAY}-001").status.resolved_at == NOW - dt.timedelta(hours=2)
    assert api.called("patch_incident") == []


# ------------------------------------------------------------------- the alert intake's findings
def test_an_alert_finding_lands_as_the_operators_do_and_its_new_incident_carries_its_source() -> None:
    """The intake writes no incident: its findings (``source: alertmanager``) are recorded by the pass like any,
    on a reopenable incident of their category, else on a new one created with their source."""
    api = FakeApi()
    resolved_incident(api, f"{TODAY}-001", resolved_at=NOW - dt.timedelta(minutes=10))
    alert_crash = dataclasses.replace(CRASH, source=Source.ALERTMANAGER)
    alert_external = finding(Category.EXTERNAL_ALERT, Severity.SEV3)
    alert_external = dataclasses.replace(alert_external, source=Source.ALERTMANAGER)
    result = record(api, alert_crash, alert_external)
    assert result.created == [f"{TODAY}-002"]
    assert result.carriers == {Category.PROCESS_CRASH: f"{TODAY}-001", Category.EXTERNAL_ALERT: f"{TODAY}-002"}
    assert lc.is_open(model(api, f"{TODAY}-001").status)  # reopened, its source as it was
    assert model(api, f"{TODAY}-001").spec.source == "operator"
    created = model(api, f"{TODAY}-002")
    assert created.spec.source == "alertmanager" and created.status.severity == Severity.SEV3


def test_an_operator_finding_creates_an_operator_incident() -> None:
    api = FakeApi()
    result = record(api, CRASH)
    assert model(api, result.carriers[Category.PROCESS_CRASH]).spec.source == "operator"


def test_a_created_incident_whose_status_never_got_written_is_finished_by_the_next_pass() -> None:
    api = FakeApi()
    incidents.create_incident("shop", api=api, zentinel="edge", category=Category.PROCESS_CRASH, now=NOW)
    later = NOW + dt.timedelta(seconds=15)
    result = record(api, CRASH, now=later)
    assert result.created == [] and api.names("incident") == [f"{TODAY}-001"]
    assert model(api, f"{TODAY}-001").status.detected_at == later


def test_creators_sharing_the_pass_contexts_lock_take_turns() -> None:
    """The passes of one operator create under ``PassContext.create_lock``: while it is held, none creates."""
    api = FakeApi()
    lock = threading.Lock()
    names: list[str] = []
    with lock:
        worker = threading.Thread(
            target=lambda: names.append(
                incidents.create_incident(
                    "shop", api=api, zentinel="edge", category=Category.PROCESS_CRASH, now=NOW, lock=lock
                )
            )
        )
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive() and api.names("incident") == []  # waiting for the lock, nothing listed or made
    worker.join(timeout=10)
    assert names == [f"{TODAY}-001"] and api.names("incident") == names
