"""Respond and the executor driven through an in-memory API (``support.fake_api``): what they write, in which
order, and what a restarted operator or a failed call leaves behind."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from support.fake_api import FakeApi, api_error
from unit.test_remediation_plan import NOW, finding, policy, snapshot, zen
from zentinel_operator.core import remediation as rem
from zentinel_operator.core.observation import Observation
from zentinel_operator.core.revisions import snapshot_name
from zentinel_operator.core.snapshot import Snapshot
from zentinel_operator.core.zconfig import config_revision
from zentinel_operator.handlers import remediation as handler
from zentinel_operator.models.common import Category
from zentinel_operator.models.incident import ConfigChange, RemediationRecord, ZentinelIncident
from zentinel_operator.names import ANN_CONFIG_REVISION, ANN_RESTART, ANN_WRITTEN_BY_OPERATOR

GOOD = (
    'system {\n    worker-threads 2\n}\nlisteners {\n    listener "http" {\n        address "0.0.0.0:8080"\n    }\n}\n'
)
BAD = GOOD.replace("worker-threads 2", "worker-threads 4")
GOOD_REV, BAD_REV = config_revision(GOOD), config_revision(BAD)
KEY = "zentinel.kdl"
CRASH = finding(Category.PROCESS_CRASH, config_caused=True)


def cluster(*incidents: Category) -> FakeApi:
    """A Zentinel's world: its ConfigMap holding BAD, the saved copy of GOOD (its last known good revision), the
    Deployment and its three pods, and one open incident of each category."""
    api = FakeApi()
    api.put("configmap", {"metadata": {"name": "edge-config"}, "data": {KEY: BAD}})
    api.put("configmap", {"metadata": {"name": snapshot_name("edge", GOOD_REV)}, "data": {KEY: GOOD}})
    api.put(
        "deployment",
        {
            "metadata": {"name": "edge"},
            "spec": {
                "selector": {"matchLabels": {"app": "edge"}},
                "template": {"metadata": {"labels": {"app": "edge"}}, "spec": {"containers": [{"name": "zentinel"}]}},
            },
        },
    )
    for i in range(3):
        api.put("pod", {"metadata": {"name": f"edge-{i}", "labels": {"app": "edge"}}})
    for i, category in enumerate(incidents, start=1):
        api.put(
            "incident",
            {
                "metadata": {"name": f"inc-{i}", "labels": {"zentinel.io/zentinel": "edge"}},
                "spec": {
                    "zentinelRef": {"name": "edge"},
                    "category": category.value,
                    "fingerprint": f"edge/{category}",
                },
                "status": {"severity": "SEV2", "detectedAt": NOW.isoformat()},
            },
        )
    return api


def crashing(minutes_since_change: float | None = 1) -> Snapshot:
    """Every pod crash-looping on BAD, which came in a minute ago."""
    snap = snapshot(crashing=3, changed_minutes_ago=minutes_since_change)
    return dataclasses.replace(snap, config=dataclasses.replace(snap.config, revision=BAD_REV))


def respond(api: FakeApi, *, now: dt.datetime = NOW, snap: Snapshot | None = None, **kw: Any) -> handler.Responded:
    """One pass's respond, on the incidents as the API holds them now (as a restarted operator reads them)."""
    incidents = [ZentinelIncident.model_validate(api.get("incident", n)) for n in api.names("incident")]
    return handler.respond(
        api=api,
        zen=zen(lastKnownGoodRevision=GOOD_REV),
        observation=Observation(snap or crashing(), deployment=api.get("deployment", "edge")),
        findings=kw.pop("findings", [CRASH]),
        policy=kw.pop("policy", policy()),
        incidents=incidents,
        now=now,
        cluster_recent=0,
        **kw,
    )


def stored(api: FakeApi, name: str = "inc-1") -> list[RemediationRecord]:
    """The incident's records as the API holds them."""
    return ZentinelIncident.model_validate(api.get("incident", name)).status.remediations


def template_annotations(api: FakeApi) -> dict[str, str]:
    return api.get("deployment", "edge")["spec"]["template"]["metadata"].get("annotations") or {}  # type: ignore[index]


# --------------------------------------------------------------------------- a rollback, recorded
def test_respond_rolls_the_config_back_and_records_it_on_the_incident() -> None:
    api = cluster(Category.PROCESS_CRASH)
    out = respond(api)

    assert out.failures == []
    [rec] = out.incidents[0].status.remediations
    assert (rec.action, rec.state, rec.id) == ("configRollback", rem.VERIFYING, "inc-1/0/configRollback")
    assert rec.config == ConfigChange(from_revision=BAD_REV, to_revision=GOOD_REV)
    # The change itself: the good config written (marked as the operator's), the bad one kept, the pods rolled.
    config = api.get("configmap", "edge-config")
    assert config is not None and config["data"][KEY] == GOOD
    assert config["metadata"]["annotations"][ANN_WRITTEN_BY_OPERATOR] == GOOD_REV
    kept = api.get("configmap", snapshot_name("edge", BAD_REV))
    assert kept is not None and kept["data"][KEY] == BAD
    assert template_annotations(api) == {ANN_CONFIG_REVISION: GOOD_REV, ANN_RESTART: rec.id}
    # What respond returns is what the incident holds, and the ledger counts it once.
    assert stored(api) == [rec]
    assert [(e.id, e.action, e.incident) for e in out.ledger] == [(rec.id, "configRollback", "inc-1")]
    assert [(e.kind, e.name, e.reason) for e in api.events] == [("ZentinelIncident", "inc-1", "RemediationVerifying")]


def test_the_record_is_written_running_before_the_action_touches_anything() -> None:
    api = cluster(Category.PROCESS_CRASH)
    respond(api)
    operations = [op for op, _ in api.calls]
    first_write = operations.index("patch_incident_status")
    assert first_write < operations.index("create_configmap") < operations.index("patch_configmap")
    assert operations.index("patch_configmap") < operations.index("patch_deployment")
    status_patches = [patch for op, _, patch in api.patches if op == "patch_incident_status"]
    assert [[r["state"] for r in p["status"]["remediations"]] for p in status_patches] == [
        [rem.RUNNING],
        [rem.VERIFYING],
    ]


def test_a_dry_run_policy_writes_no_config_and_records_the_diff() -> None:
    api = cluster(Category.PROCESS_CRASH)
    out = respond(api, policy=policy(defaultMode="DryRun"))
    [rec] = out.incidents[0].status.remediations
    assert rec.state == rem.DRY_RUN and rec.diff and "worker-threads 2" in rec.diff
    assert (rec.before, rec.after) == (BAD_REV, GOOD_REV)
    assert api.called("patch_configmap") == [] and api.called("patch_deployment") == []
    assert api.called("create_configmap") == []
    assert api.get("configmap", "edge-config")["data"][KEY] == BAD  # type: ignore[index]


# ------------------------------------------------------------------------ the ledger, across restarts
def test_a_recorded_rollback_is_verified_on_the_next_pass_not_run_again() -> None:
    api = cluster(Category.PROCESS_CRASH)
    respond(api)
    writes = len(api.called("patch_configmap")), len(api.called("patch_deployment"))

    out = respond(api, now=NOW + dt.timedelta(seconds=30))
    assert (len(api.called("patch_configmap")), len(api.called("patch_deployment"))) == writes == (1, 1)
    assert [(r.action, r.state) for r in stored(api)] == [("configRollback", rem.VERIFYING)]
    assert [e.id for e in out.ledger] == ["inc-1/0/configRollback"]


def test_an_operator_stopped_after_the_rollback_resumes_it_without_writing_the_config_again() -> None:
    api = cluster(Category.PROCESS_CRASH)
    # The first status write (Running) lands; the operator is gone before the second (Verifying).
    api.fail("patch_incident_status", api_error(503, "ServiceUnavailable"), after=1)
    first = respond(api)
    assert first.failures == ["inc-1: API request unavailable (503)"]
    assert [(r.action, r.state) for r in stored(api)] == [("configRollback", rem.RUNNING)]
    assert api.called("patch_configmap") == ["edge-config"]

    api.heal()
    out = respond(api, now=NOW + dt.timedelta(seconds=20))
    assert out.failures == []
    [rec] = stored(api)
    assert rec.state == rem.VERIFYING and "before a restart" in (rec.reason or "")
    assert (rec.before, rec.after) == (BAD_REV, GOOD_REV)  # not GOOD -> GOOD, as a second run would say
    assert api.called("patch_configmap") == ["edge-config"]  # the config was not written twice
    assert api.called("create_configmap") == [snapshot_name("edge", BAD_REV)]
    # Delivered again with the same annotations: the same pod template, so no second rollout.
    assert template_annotations(api) == {ANN_CONFIG_REVISION: GOOD_REV, ANN_RESTART: rec.id}
    timeline = ZentinelIncident.model_validate(api.get("incident", "inc-1")).status.timeline
    assert any(t.message.startswith("Resumed after a restart") for t in timeline)
    assert [e.id for e in out.ledger] == [rec.id]


# ------------------------------------------------------------------------------ failed API calls
def test_a_failed_api_call_fails_the_step_and_the_ladder_goes_on_next_pass() -> None:
    api = cluster(Category.PROCESS_CRASH)
    api.fail("patch_deployment", api_error(404, "NotFound", "deployments", "edge"))
    out = respond(api)
    assert out.failures == []  # a Failed step is the ladder's business, not a failed pass
    [rec] = stored(api)
    assert (rec.action, rec.state, rec.failed_in) == ("configRollback", rem.FAILED, rem.FAILED_IN_ACTION)
    assert rec.reason == "Deployment edge not found (404)"
    assert [(e.reason, e.type) for e in api.events] == [("RemediationFailed", "Warning")]

    api.heal()
    later = NOW + dt.timedelta(minutes=10)
    respond(api, now=later, snap=crashing(minutes_since_change=None))
    records = stored(api)
    assert [(r.action, r.state) for r in records] == [("configRollback", rem.FAILED), ("restart", rem.VERIFYING)]
    assert records[1].deleted_pods == ["edge-0", "edge-1", "edge-2"]
    assert api.names("pod") == []  # deleted, each by its uid
    assert api.called("patch_configmap") == ["edge-config"]  # the failed rollback is not retried


def test_one_incidents_failed_action_does_not_stop_the_next_incidents_step() -> None:
    api = cluster(Category.PROCESS_CRASH, Category.HEALTH_CHECK_FAILURE)
    api.fail("create_configmap", api_error(403, "Forbidden", "configmaps"))
    out = respond(
        api, snap=crashing(minutes_since_change=None), findings=[CRASH, finding(Category.HEALTH_CHECK_FAILURE)]
    )
    assert out.failures == []
    rollback, restart = stored(api, "inc-1"), stored(api, "inc-2")
    assert [(r.action, r.state, r.reason) for r in rollback] == [
        ("configRollback", rem.FAILED, "ConfigMap forbidden (403)")
    ]
    assert [(r.action, r.state) for r in restart] == [("restart", rem.VERIFYING)]
    assert api.names("pod") == [] and api.called("patch_configmap") == []
    assert [i.status.remediations for i in out.incidents] == [rollback, restart]


def test_an_unreadable_saved_revision_is_a_failure_and_the_rollback_is_refused_not_attempted() -> None:
    api = cluster(Category.PROCESS_CRASH)
    saved = snapshot_name("edge", GOOD_REV)
    api.fail("get_configmap", api_error(403, "Forbidden", "configmaps", saved), name=saved)
    out = respond(api)
    assert out.failures == [f"saved revision {GOOD_REV}: ConfigMap {saved} forbidden (403)"]
    [rec] = stored(api)
    assert (rec.action, rec.state) == ("configRollback", rem.REFUSED)
    assert rec.reason == f"the saved copy of revision {GOOD_REV} is missing or does not validate"
    assert api.called("create_configmap") == [] and api.called("patch_configmap") == []
