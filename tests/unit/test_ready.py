"""The Ready condition (kstatus, `kubectl wait --for=condition=Ready`) on Zentinels and policies.

A Zentinel is Ready when the operator watches its current generation and every stage of the last pass
succeeded; the proxy's health is the Healthy condition's. A policy is Ready when it is Accepted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from support.fake_api import FakeApi
from zentinel_operator.core.conditions import get_condition
from zentinel_operator.core.patches import merge_patch
from zentinel_operator.core.snapshot import Finding, Snapshot, WorkloadSignal
from zentinel_operator.core.zstatus import StageFailure, build_status, pass_condition, ready_condition
from zentinel_operator.handlers import policies
from zentinel_operator.models.common import Category, Condition, ConditionStatus, Severity
from zentinel_operator.models.zentinel import ZentinelStatus

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)
T2 = T1 + dt.timedelta(minutes=5)
CRASH = Finding(Category.PROCESS_CRASH, Severity.SEV1, "3 of 3 pods crash-looping")


def _ready(conds: list[Condition]) -> Condition:
    c = get_condition(conds, "Ready")
    assert c is not None
    return c


def _snapshot() -> Snapshot:
    return Snapshot(namespace="shop", zentinel="edge", observed_at=T0, workload=WorkloadSignal(exists=True, desired=3))


def one_pass(
    old: ZentinelStatus,
    *,
    findings: list[Finding] | None = None,
    failures: list[StageFailure] | None = None,
    observed: bool = True,
    now: dt.datetime = T0,
    generation: int = 4,
) -> ZentinelStatus:
    """The status as handlers.zentinel.reconcile makes it: build_status (when the pass observed), then the
    pass condition, then Ready."""
    st = (
        build_status(old, _snapshot(), findings or [], [], now=now, generation=generation)
        if observed
        else old.model_copy(deep=True)
    )
    st.conditions, _ = pass_condition(st.conditions, failures or [], now=now, generation=generation)
    st.conditions = ready_condition(st.conditions, now=now, generation=generation)
    return st


def test_ready_after_a_pass_that_succeeded() -> None:
    st = one_pass(ZentinelStatus())
    c = _ready(st.conditions)
    assert (c.status, c.reason, c.observed_generation, c.last_transition_time) == (
        ConditionStatus.TRUE,
        "Watched",
        4,
        T0,
    )
    assert st.observed_generation == 4  # kstatus compares status.observedGeneration with metadata.generation


def test_an_incident_does_not_make_the_zentinel_unready() -> None:
    """The proxy's trouble is Healthy's; Ready stays True so GitOps tools do not hold back the fix."""
    st = one_pass(one_pass(ZentinelStatus()), findings=[CRASH], now=T1)
    healthy = get_condition(st.conditions, "Healthy")
    assert healthy is not None and (healthy.status, healthy.reason) == (ConditionStatus.FALSE, "ProcessCrash")
    c = _ready(st.conditions)
    assert (c.status, c.last_transition_time) == (ConditionStatus.TRUE, T0)


def test_a_failed_stage_makes_it_unready_with_the_stage_named() -> None:
    good = one_pass(ZentinelStatus())
    # Without the workload the pass observes nothing: build_status does not run, the old status is kept.
    gone = one_pass(
        good, observed=False, failures=[StageFailure("Gather", "workload: Deployment edge not found")], now=T1
    )
    c = _ready(gone.conditions)
    assert (c.status, c.reason, c.last_transition_time) == (ConditionStatus.FALSE, "GatherFailed", T1)
    assert "gather: workload: Deployment edge not found" in c.message
    back = one_pass(gone, now=T2)
    assert (_ready(back.conditions).status, _ready(back.conditions).last_transition_time) == (ConditionStatus.TRUE, T2)


def test_unknown_until_a_pass_completed_for_this_generation() -> None:
    st = one_pass(ZentinelStatus())
    # The spec changed (generation 5) and this pass could not observe: Healthy is still generation 4's.
    stale = one_pass(st, observed=False, generation=5, now=T1)
    c = _ready(stale.conditions)
    assert (c.status, c.reason, c.observed_generation) == (ConditionStatus.UNKNOWN, "NotObserved", 5)


def test_an_unchanged_pass_writes_nothing() -> None:
    first = one_pass(ZentinelStatus())
    again = one_pass(first, now=T1)
    assert _ready(again.conditions) == _ready(first.conditions)
    patch = merge_patch(first.dump(), again.dump())
    assert set(patch) <= {"summary"} and set(patch.get("summary", {})) <= {"observedAt"}


def _policy(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "p", "namespace": "shop", "generation": 2}, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


def test_policy_ready_follows_accepted_and_is_written_only_on_change() -> None:
    api = FakeApi()
    patches = api.status_patches
    assert policies.reconcile(_policy({}), zentinels=[], policies=[], api=api, now=T0)
    status = patches[-1][3]
    assert status["observedGeneration"] == 2
    ready_c = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready_c["status"], ready_c["reason"], ready_c["observedGeneration"]) == ("True", "Valid", 2)
    assert not policies.reconcile(_policy({}, status), zentinels=[], policies=[], api=api, now=T1)
    assert len(patches) == 1
    bad = {"thresholds": {"errorRate": {"sev2": 0.01, "sev3": 0.05}}}
    assert policies.reconcile(_policy(bad, status), zentinels=[], policies=[], api=api, now=T1)
    by_type = {c["type"]: c for c in patches[-1][3]["conditions"]}
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "Invalid")
    assert by_type["Ready"]["message"].startswith("spec.thresholds.errorRate: sev2 (0.01) must be greater")
    assert by_type["Accepted"]["message"] == by_type["Ready"]["message"]
    assert by_type["Ready"]["lastTransitionTime"] == T1.isoformat().replace("+00:00", "Z")
