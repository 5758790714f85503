"""The Ready condition (kstatus, `kubectl wait --for=condition=Ready`) on Zentinels and policies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from zentinel_operator.core.conditions import get_condition, set_condition, with_ready
from zentinel_operator.core.patches import merge_patch
from zentinel_operator.core.snapshot import Finding, Snapshot, WorkloadSignal
from zentinel_operator.core.zstatus import build_status
from zentinel_operator.handlers import policies
from zentinel_operator.models.common import Category, Condition, ConditionStatus, Severity
from zentinel_operator.models.zentinel import ZentinelStatus

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)
T2 = T1 + dt.timedelta(minutes=5)


def _ready(conds: list[Condition]) -> Condition:
    c = get_condition(conds, "Ready")
    assert c is not None
    return c


def ready(conds: list[Condition], now: dt.datetime = T0, generation: int | None = 3) -> Condition:
    return _ready(
        with_ready(
            conds,
            required=("Healthy",),
            blocking=("ConfigValid", "UpstreamsHealthy"),
            reason="Healthy",
            message="all good",
            now=now,
            generation=generation,
        )
    )


def conds(**statuses: ConditionStatus | bool) -> list[Condition]:
    out: list[Condition] = []
    for type_, status in statuses.items():
        out = set_condition(out, type_, status, f"Because{type_}", f"{type_} says so", now=T0)
    return out


def test_true_when_required_true_and_blocking_not_false() -> None:
    c = ready(conds(Healthy=True, ConfigValid=True, UpstreamsHealthy=ConditionStatus.UNKNOWN))
    assert (c.status, c.reason, c.message, c.observed_generation) == (ConditionStatus.TRUE, "Healthy", "all good", 3)


def test_false_with_the_first_false_conditions_reason() -> None:
    c = ready(conds(Healthy=False, ConfigValid=False))
    assert (c.status, c.reason, c.message) == (ConditionStatus.FALSE, "BecauseHealthy", "Healthy: Healthy says so")
    c = ready(conds(Healthy=True, ConfigValid=True, UpstreamsHealthy=False))
    assert (c.status, c.reason) == (ConditionStatus.FALSE, "BecauseUpstreamsHealthy")


@pytest.mark.parametrize("healthy", [None, ConditionStatus.UNKNOWN])
def test_unknown_while_a_required_condition_is_not_known(healthy: ConditionStatus | None) -> None:
    c = ready(conds(Healthy=healthy) if healthy else conds(ConfigValid=True))
    assert (c.status, c.reason) == (ConditionStatus.UNKNOWN, "NotObserved")


def test_transition_time_moves_only_on_flips() -> None:
    good = conds(Healthy=True)
    first = with_ready(good, required=("Healthy",), reason="Healthy", message="ok", now=T0, generation=1)
    again = with_ready(first, required=("Healthy",), reason="Healthy", message="ok", now=T1, generation=1)
    assert again == first  # nothing changed: no status write
    assert merge_patch(ZentinelStatus(conditions=first).dump(), ZentinelStatus(conditions=again).dump()) == {}
    bad = set_condition(again, "Healthy", False, "ProcessCrash", "crash", now=T2)
    flipped = _ready(with_ready(bad, required=("Healthy",), reason="Healthy", message="ok", now=T2, generation=1))
    assert flipped.status == ConditionStatus.FALSE and flipped.last_transition_time == T2
    assert _ready(first).last_transition_time == T0


def _snapshot() -> Snapshot:
    return Snapshot(namespace="shop", zentinel="edge", observed_at=T0, workload=WorkloadSignal(exists=True, desired=3))


def test_zentinel_status_carries_ready() -> None:
    healthy = build_status(ZentinelStatus(), _snapshot(), [], [], now=T0, generation=4)
    c = _ready(healthy.conditions)
    assert (c.status, c.reason, c.observed_generation) == (ConditionStatus.TRUE, "Healthy", 4)
    crash = Finding(Category.PROCESS_CRASH, Severity.SEV1, "3 of 3 pods crash-looping")
    sick = build_status(healthy, _snapshot(), [crash], [], now=T1, generation=4)
    c = _ready(sick.conditions)
    assert (c.status, c.reason, c.last_transition_time) == (ConditionStatus.FALSE, "ProcessCrash", T1)
    assert c.message == "Healthy: 3 of 3 pods crash-looping"
    still = build_status(sick, _snapshot(), [crash], [], now=T2, generation=4)
    assert _ready(still.conditions).last_transition_time == T1


def _policy(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "p", "namespace": "shop", "generation": 2}, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


def test_policy_ready_follows_accepted_and_is_written_only_on_change(monkeypatch: pytest.MonkeyPatch) -> None:
    patches: list[dict[str, Any]] = []
    monkeypatch.setattr(policies.k8s, "patch_custom_status", lambda *args: patches.append(args[-1]))
    assert policies.reconcile(_policy({}), zentinels=[], policies=[], now=T0)
    status = patches[-1]
    ready_c = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready_c["status"], ready_c["reason"], ready_c["observedGeneration"]) == ("True", "Accepted", 2)
    assert not policies.reconcile(_policy({}, status), zentinels=[], policies=[], now=T1)
    assert len(patches) == 1
    bad = {"thresholds": {"errorRate": {"sev2": 0.01, "sev3": 0.05}}}
    assert policies.reconcile(_policy(bad, status), zentinels=[], policies=[], now=T1)
    ready_c = next(c for c in patches[-1]["conditions"] if c["type"] == "Ready")
    assert (ready_c["status"], ready_c["reason"]) == ("False", "Invalid")
    assert ready_c["message"].startswith("Accepted: spec.thresholds.errorRate: sev2 (0.01) must be greater")
