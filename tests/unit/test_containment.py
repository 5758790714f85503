"""Containment: an API error fails one step, one incident or one stage of a pass, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from unit.test_remediation_plan import NOW, finding, policy, snapshot, zen
from zentinel_operator import k8s
from zentinel_operator.core import remediation as rem
from zentinel_operator.core.observation import Observation
from zentinel_operator.core.zconfig import config_revision
from zentinel_operator.core.zstatus import DEGRADED_CONDITION, StageFailure, pass_condition
from zentinel_operator.handlers import evidence, incidents
from zentinel_operator.handlers import remediation as handler
from zentinel_operator.handlers import zentinel as zentinel_handlers
from zentinel_operator.models.common import Category, ConditionStatus
from zentinel_operator.models.incident import RemediationRecord, ZentinelIncident
from zentinel_operator.models.zentinel import ZentinelStatus
from zentinel_operator.remediation import executor

GOOD = (
    'system {\n    worker-threads 2\n}\nlisteners {\n    listener "http" {\n        address "0.0.0.0:8080"\n    }\n}\n'
)
BAD = GOOD.replace("worker-threads 2", "worker-threads 4")


def api_error(status: int, reason: str, kind: str = "", name: str = "", **details: Any) -> ApiException:
    body = {"kind": "Status", "reason": reason, "code": status, "details": {"kind": kind, "name": name, **details}}
    body["message"] = "the request carried password=hunter2"  # a message can quote what was sent: never shown
    return ApiException(status=status, reason=reason, body=json.dumps(body))


GONE = api_error(404, "NotFound", "deployments", "edge")


# ----------------------------------------------------------------------------- describe_error
@pytest.mark.parametrize(
    ("error", "text"),
    [
        (GONE, "Deployment edge not found (404)"),
        (api_error(409, "Conflict", "configmaps", "edge-config"), "ConfigMap edge-config was changed concurrently"),
        (
            api_error(
                422, "Invalid", "Deployment", "edge", causes=[{"field": "spec.replicas", "message": "x"}, {"x": 1}]
            ),
            "Deployment edge is invalid: spec.replicas (422)",
        ),
        (api_error(403, "Forbidden", "secrets"), "Secret forbidden (403)"),
        (api_error(418, "Teapot", "widgets", "w"), "widgets w teapot (418)"),
        (ApiException(status=500, reason="Internal Server Error"), "API request internal server error (500)"),
        (ApiException(status=502, reason="Bad Gateway", body="<html>proxy</html>"), "API request bad gateway (502)"),
        (ApiException(reason="Boom"), "API request boom"),
        (KeyError("spec"), "KeyError"),
    ],
)
def test_api_errors_are_described_by_kind_name_and_code_never_by_their_message(error: Exception, text: str) -> None:
    described = k8s.describe_error(error)
    assert described.startswith(text.removesuffix(" (422)").removesuffix(" (404)")) and text in described
    assert "hunter2" not in described


# ----------------------------------------------------------------------------------- executor
class FakeAPI:
    """The executor's view of the API: a current config, one saved revision, and patches that may fail."""

    def __init__(self, *, deployment_error: Exception | None = None) -> None:
        self.configmaps = {
            "edge-config": {"data": {"zentinel.kdl": BAD}},
            f"edge-config-{config_revision(GOOD)}": {"data": {"zentinel.kdl": GOOD}},
        }
        self.deployment_error = deployment_error
        self.calls: list[str] = []

    def get_configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get(name)

    def create_configmap(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("create")
        return body

    def patch_configmap(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("patch configmap")
        self.configmaps[name] = {"data": patch["data"]}
        return {}

    def patch_deployment(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("patch deployment")
        if self.deployment_error is not None:
            raise self.deployment_error
        return {}


def rollback_step() -> rem.Step:
    good, bad = config_revision(GOOD), config_revision(BAD)
    rec = RemediationRecord(
        id="inc-1/0/configRollback", action="configRollback", mode="Automatic", state=rem.RUNNING, started_at=NOW
    )
    return rem.Step("execute", rem.Action.CONFIG_ROLLBACK, rec, params={"target": good, "current": bad})


def exec_ctx(api: Any, deployment: dict[str, Any] | None = None) -> executor.ExecContext:
    return executor.ExecContext(
        zen=zen(lastKnownGoodRevision=config_revision(GOOD)),
        deployment=deployment,
        snapshot=snapshot(),
        policy=policy(),
        now=NOW,
        api=api,
    )


def test_a_deployment_gone_mid_rollback_fails_the_step_with_the_apis_reason() -> None:
    api = FakeAPI(deployment_error=GONE)
    done = executor.execute(rollback_step(), exec_ctx(api))
    assert done.state == rem.FAILED and done.failed_in == rem.FAILED_IN_ACTION
    assert done.reason == "Deployment edge not found (404)" and done.finished_at == NOW
    # The ConfigMap was written before the rollout failed: the record says what changed.
    assert api.calls == ["create", "patch configmap", "patch deployment"]
    assert (done.before, done.after) == (config_revision(BAD), config_revision(GOOD))
    assert done.diff and "worker-threads 2" in done.diff
    assert not rem.failed_verification(done)  # it never ran to verification: no ground to page the lead


def test_the_same_rollback_without_an_api_error_is_verifying() -> None:
    done = executor.execute(rollback_step(), exec_ctx(FakeAPI()))
    assert done.state == rem.VERIFYING and done.failed_in is None
    assert done.after == config_revision(GOOD) and "rolling restart of Deployment edge" in (done.reason or "")


def test_an_unexpected_error_in_an_action_is_a_failed_step_too() -> None:
    api = FakeAPI()
    rec = RemediationRecord(id="i/2/restart", action="restart", mode="Automatic", state=rem.RUNNING, started_at=NOW)
    crashing = snapshot(crashing=1)
    deployment = {"spec": {"selector": {"matchLabels": {"app": "edge"}}}}
    api.list_pods = lambda ns, selector: (_ for _ in ()).throw(KeyError("metadata"))
    ectx = executor.ExecContext(zen=zen(), deployment=deployment, snapshot=crashing, policy=policy(), now=NOW, api=api)
    done = executor.execute(rem.Step("execute", rem.Action.RESTART, rec), ectx)
    assert (done.state, done.failed_in, done.reason) == (
        rem.FAILED,
        rem.FAILED_IN_ACTION,
        "unexpected error (KeyError)",
    )
    # The Deployment gone: said so, not a KeyError.
    gone = executor.ExecContext(zen=zen(), deployment=None, snapshot=crashing, policy=policy(), now=NOW, api=api)
    done = executor.execute(rem.Step("execute", rem.Action.RESTART, rec), gone)
    assert (done.state, done.reason) == (rem.FAILED, "Deployment edge not found")


def test_an_api_error_while_reverting_ends_the_revert(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeAPI()
    monkeypatch.setattr(api, "get_configmap", lambda ns, name: (_ for _ in ()).throw(api_error(403, "Forbidden")))
    rec = RemediationRecord(
        id="i/0/rateLimit",
        action="rateLimit",
        mode="Automatic",
        state=rem.SUCCEEDED,
        revert_at=NOW - dt.timedelta(seconds=1),
        undo={"edits": []},
    )
    done = executor.revert(rec, exec_ctx(api))
    assert (done.state, done.failed_in, done.revert_at) == (rem.FAILED, rem.FAILED_IN_REVERT, None)
    assert done.reason == "revert failed: API request forbidden (403)"


# ------------------------------------------------------------------------------------ respond
def incident(name: str, category: Category) -> ZentinelIncident:
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
            "spec": {"zentinelRef": {"name": "edge"}, "category": category.value, "fingerprint": f"edge/{category}"},
            "status": {"severity": "SEV2", "detectedAt": NOW.isoformat()},
        }
    )


class IncidentWrites:
    """Status writes of incidents, the one of inc-1 refused; no ConfigMap to preview an edit on."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def patch_incident_status(self, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if name == "inc-1":
            raise api_error(422, "Invalid", "zentinelincidents", name, causes=[{"field": "status.remediations"}])
        self.written.append(name)
        return {}

    def post_event(self, involved: dict[str, Any], **_: Any) -> None:
        pass

    def get_configmap(self, ns: str, name: str) -> None:
        return None


def test_one_incidents_failed_status_write_stops_neither_the_others_nor_the_pass() -> None:
    api = IncidentWrites()
    findings = [finding(Category.HEALTH_CHECK_FAILURE), finding(Category.UPSTREAM_FAILURE)]
    out = handler.respond(
        api=api,
        zen=zen(),
        observation=Observation(snapshot(unhealthy=1)),
        findings=findings,
        policy=policy(defaultMode="NeedsApproval"),
        incidents=[incident("inc-1", Category.HEALTH_CHECK_FAILURE), incident("inc-2", Category.UPSTREAM_FAILURE)],
        now=NOW,
        cluster_recent=0,
    )
    assert api.written == ["inc-2"]
    assert out.failures == ["inc-1: ZentinelIncident inc-1 is invalid: status.remediations (422)"]
    assert [r.state for r in out.incidents[1].status.remediations] == [rem.PENDING_APPROVAL]
    assert out.incidents[0].status.remediations == []  # as it was: planned again next pass


# -------------------------------------------------------------------------------- the condition
def test_pass_condition_every_branch() -> None:
    later = NOW + dt.timedelta(seconds=15)
    conds, event = pass_condition([], [], now=NOW, generation=3)
    assert [(c.type, c.status, c.reason) for c in conds] == [(DEGRADED_CONDITION, "False", "AllStagesSucceeded")]
    assert event is None  # nothing to say on a first healthy pass

    one = [StageFailure("Evidence", "inc-1: ConfigMap forbidden (403)")]
    conds, event = pass_condition(conds, one, now=later, generation=3)
    cond = conds[0]
    assert (cond.status, cond.reason, cond.message) == (
        "True",
        "EvidenceFailed",
        "evidence: inc-1: ConfigMap forbidden (403)",
    )
    assert cond.last_transition_time == later and cond.observed_generation == 3
    assert event is not None and (event.reason, event.type) == ("PassDegraded", "Warning")

    # The same failure again: the same condition (no status write), no second Event.
    again, event = pass_condition(conds, list(one) * 2, now=later + dt.timedelta(seconds=15), generation=3)
    assert again == conds and event is None

    # Another stage too: the reason names both; the transition time stays (status did not flip); a new Event.
    two = [*one, StageFailure("Remediation", "inc-2: Deployment edge not found (404)")]
    both, event = pass_condition(conds, two, now=later + dt.timedelta(seconds=30), generation=3)
    assert both[0].reason == "EvidenceFailed,RemediationFailed" and both[0].last_transition_time == later
    assert event is not None and "remediation: inc-2: Deployment edge not found (404)" in event.message

    # Cleared: False again, a Normal Event that says what it was.
    cleared, event = pass_condition(both, [], now=later + dt.timedelta(seconds=45), generation=3)
    assert cleared[0].status == ConditionStatus.FALSE and cleared[0].last_transition_time == later + dt.timedelta(
        seconds=45
    )
    assert event is not None and (event.reason, event.type) == ("PassRecovered", "Normal")

    many = [StageFailure("Gather", f"part {i}: " + "x" * 100) for i in range(50)]
    long, _ = pass_condition([], many, now=NOW, generation=None)
    assert len(long[0].message) == 2000 and long[0].message.endswith("…")


# -------------------------------------------------------------------------------- the pass
class Notifier:
    def __init__(self) -> None:
        self.synced: list[str] = []

    async def sync(
        self, namespace: str, incident: ZentinelIncident, policy: Any, *, secrets_namespace: str | None = None
    ) -> None:
        self.synced.append(incident.metadata.name)


def zentinel_body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = zen().model_dump(by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["uid"] = "uid-edge"
    body["metadata"]["generation"] = 1
    body["status"] = status or {}
    return body


@pytest.fixture
def a_pass(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """One pass with the API faked: a snapshot, one open incident; every stage's I/O recorded or made to fail."""
    state: dict[str, Any] = {"fail": set(), "status": [], "events": [], "notifier": Notifier()}
    inc = incident("inc-1", Category.HEALTH_CHECK_FAILURE)
    restarted = RemediationRecord(id="inc-1/2/restart", action="restart", mode="Automatic", state=rem.SUCCEEDED)
    restarted.started_at = NOW - dt.timedelta(minutes=5)
    inc.status.remediations = [restarted]
    ledger = handler.ledger_of([inc])

    def stage(name: str, result: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            if name in state["fail"]:
                raise api_error(403, "Forbidden", "configmaps")
            return result() if callable(result) else result

        return run

    async def gather(*args: Any, **kwargs: Any) -> Any:
        if "gather" in state["fail"]:
            raise api_error(500, "InternalError", "deployments", "edge")
        kwargs["failures"].extend(state.get("gaps", []))
        return Observation(snapshot(crashing=1))

    monkeypatch.setattr(zentinel_handlers, "gather", gather)
    monkeypatch.setattr(incidents, "record", stage("record", lambda: incidents.Recorded(open=[inc], all=[inc])))
    monkeypatch.setattr(handler, "respond", stage("respond", lambda: handler.Responded(incidents=[inc], ledger=ledger)))
    monkeypatch.setattr(evidence, "wanted", stage("evidence", False))
    monkeypatch.setattr(evidence, "collect", stage("evidence", []))
    monkeypatch.setattr(zentinel_handlers, "_keep_revisions", stage("revisions", None))

    def patch_status(plural: str, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if "status" in state["fail"]:
            raise api_error(409, "Conflict", "zentinels", name)
        state["status"].append(status)
        return {}

    monkeypatch.setattr(k8s, "patch_custom_status", patch_status)
    monkeypatch.setattr(k8s, "post_event", lambda obj, **kw: state["events"].append((obj["kind"], kw["reason"])))
    return state


async def run_pass(state: dict[str, Any], stored: dict[str, Any] | None = None) -> list[StageFailure]:
    ctx = zentinel_handlers.PassContext(gather=zentinel_handlers.GatherSettings(), notifier=state["notifier"])
    try:
        result = await zentinel_handlers.reconcile(zentinel_body(stored), ctx=ctx, policies=[], now=NOW)
        return result.failures
    finally:
        await ctx.close()


# What an earlier pass wrote: a pass that cannot see or record anything must leave it as it is.
EARLIER = ZentinelStatus(health="Down", open_incidents=1, incidents=["inc-1"]).dump()


def degraded(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == DEGRADED_CONDITION)


@pytest.mark.parametrize(
    ("stage", "reason"),
    [("respond", "RemediationFailed"), ("evidence", "EvidenceFailed"), ("revisions", "RevisionsFailed")],
)
async def test_a_failing_stage_is_reported_and_the_others_still_run(
    a_pass: dict[str, Any], stage: str, reason: str
) -> None:
    a_pass["fail"] = {stage}
    failures = await run_pass(a_pass)
    assert [f.stage + "Failed" for f in failures] == [reason]
    assert a_pass["notifier"].synced == ["inc-1"]  # notifications still go out
    written = a_pass["status"][-1]
    assert degraded(written)["status"] == "True" and degraded(written)["reason"] == reason
    assert degraded(written)["message"].endswith("ConfigMap forbidden (403)")
    assert written["health"] == "Degraded" and written["openIncidents"] == 1  # the rest of the status is there
    # The actions already taken still count against the budget, whichever stage failed.
    assert [e["id"] for e in written["remediations"]] == ["inc-1/2/restart"]
    assert a_pass["events"] == [("Zentinel", "PassDegraded")]
    # The next pass with the same failure: nothing new written, no second Event.
    again = await run_pass(a_pass, stored=written)
    assert again == failures and len(a_pass["status"]) == 1 and len(a_pass["events"]) == 1
    # Fixed: the condition clears with a Normal Event.
    a_pass["fail"] = set()
    assert await run_pass(a_pass, stored=written) == []
    assert degraded(a_pass["status"][-1])["status"] == "False"
    assert a_pass["events"][-1] == ("Zentinel", "PassRecovered")


async def test_a_gather_part_that_fails_is_named(a_pass: dict[str, Any]) -> None:
    a_pass["gaps"] = ["certificates: Secret edge-tls forbidden (403)"]
    failures = await run_pass(a_pass)
    assert failures == [StageFailure("Gather", "certificates: Secret edge-tls forbidden (403)")]
    assert a_pass["notifier"].synced == ["inc-1"]


async def test_without_a_snapshot_incidents_and_notifications_still_run_and_the_status_is_kept(
    a_pass: dict[str, Any],
) -> None:
    a_pass["fail"] = {"gather"}
    failures = await run_pass(a_pass, stored=EARLIER)
    assert failures == [StageFailure("Gather", "workload: Deployment edge internal error (500)")]
    assert a_pass["notifier"].synced == ["inc-1"]
    patch = a_pass["status"][-1]
    assert set(patch) == {"conditions"}  # nothing else is claimed from a pass that saw nothing
    assert degraded(patch)["reason"] == "GatherFailed"


async def test_a_failed_status_write_still_says_so_in_an_event(a_pass: dict[str, Any]) -> None:
    a_pass["fail"] = {"status"}
    failures = await run_pass(a_pass)
    assert failures == [StageFailure("Status", "Zentinel edge was changed concurrently (conflict) (409)")]
    assert a_pass["events"] == [("Zentinel", "PassDegraded")]


async def test_a_failing_incident_stage_leaves_the_rest_of_the_status_alone(a_pass: dict[str, Any]) -> None:
    a_pass["fail"] = {"record"}
    failures = await run_pass(a_pass, stored=EARLIER)
    assert [f.stage for f in failures] == ["Incidents"]
    assert a_pass["notifier"].synced == []  # no incidents were read: nothing to sync
    assert set(a_pass["status"][-1]) == {"conditions"}
