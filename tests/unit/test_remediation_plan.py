"""The remediation planner and its guardrails, as pure functions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from zentinel_operator.core import remediation as rem
from zentinel_operator.core.snapshot import (
    ConfigSignal,
    ContainerSignal,
    Finding,
    PodSignal,
    Snapshot,
    TargetSignal,
    TargetStatus,
    UpstreamsSignal,
    WorkloadSignal,
)
from zentinel_operator.models import Zentinel
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.incident import Approval, ConfigChange, Decision, RemediationRecord
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec
from zentinel_operator.models.zentinel import RemediationLedgerEntry

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def zen(**status: Any) -> Zentinel:
    return Zentinel.model_validate(
        {
            "metadata": {"name": "edge", "namespace": "shop"},
            "spec": {
                "workload": {"name": "edge"},
                "config": {"configMapName": "edge-config"},
                "tls": [
                    {"name": "public", "secretName": "edge-tls", "issuer": {"type": "CASecret", "caSecretName": "ca"}},
                    {"name": "partner", "secretName": "partner-tls"},
                ],
            },
            "status": status,
        }
    )


def policy(**remediation: Any) -> ZentinelIncidentPolicySpec:
    base = {"defaultMode": "Automatic", "cooldown": "0s", "holdOffAfterChange": "5m", "verifyTimeout": "3m"}
    base.update(remediation)
    return ZentinelIncidentPolicySpec.model_validate({"remediation": base})


def pods(n: int = 3, crashing: int = 0, oom: bool = False) -> tuple[PodSignal, ...]:
    out = []
    for i in range(n):
        bad = i < crashing
        c = ContainerSignal(
            name="zentinel",
            ready=not bad,
            running=not bad,
            restart_count=5 if bad else 0,
            waiting_reason="CrashLoopBackOff" if bad else None,
            last_terminated_reason="OOMKilled" if bad and oom else None,
            last_exit_code=137 if bad and oom else None,
        )
        out.append(PodSignal(name=f"edge-{i}", ip=f"127.128.0.{i + 1}", phase="Running", ready=not bad, container=c))
    return tuple(out)


def snapshot(
    *,
    crashing: int = 0,
    oom: bool = False,
    unhealthy: int = 0,
    rolling: bool = False,
    changed_minutes_ago: float | None = None,
    memory_limit: int | None = 512 * 2**20,
) -> Snapshot:
    targets = tuple(
        TargetSignal("api", f"10.0.1.{10 + i}:8000", TargetStatus.UNHEALTHY if i < unhealthy else TargetStatus.HEALTHY)
        for i in range(3)
    )
    changed = NOW - dt.timedelta(minutes=changed_minutes_ago) if changed_minutes_ago is not None else None
    return Snapshot(
        namespace="shop",
        zentinel="edge",
        observed_at=NOW,
        workload=WorkloadSignal(
            exists=True,
            desired=3,
            updated=3,
            available=3 - crashing,
            rolling_out=rolling,
            memory_limit_bytes=memory_limit,
        ),
        pods=pods(3, crashing, oom),
        upstreams=UpstreamsSignal(available=True, targets=targets),
        config=ConfigSignal(present=True, revision="bbbb", valid=True, changed_at=changed, last_known_good="aaaa"),
    )


def ctx(
    z: Zentinel | None = None,
    snap: Snapshot | None = None,
    pol: ZentinelIncidentPolicySpec | None = None,
    *,
    cluster_recent: int = 0,
    approvals: dict[str, str | Approval] | None = None,
    by_operator: bool = False,
    lkg_valid: bool = True,
) -> rem.Context:
    return rem.Context(
        zentinel=z or zen(lastKnownGoodRevision="aaaa"),
        snapshot=snap or snapshot(),
        policy=pol or policy(),
        now=NOW,
        cluster_recent=cluster_recent,
        config_text_valid={"aaaa": lkg_valid},
        config_changed_by_operator=by_operator,
        approvals={
            k: v if isinstance(v, Approval) else Approval(action_id=k, by=v) for k, v in (approvals or {}).items()
        },
    )


def finding(
    cat: Category, sev: Severity = Severity.SEV2, *, config_caused: bool = False, subjects: tuple[str, ...] = ()
) -> Finding:
    return Finding(category=cat, severity=sev, summary="s", config_caused=config_caused, subjects=subjects)


def kinds(steps: list[rem.Step]) -> list[tuple[str, str | None, str | None]]:
    return [(s.kind, s.action.value if s.action else None, s.record.state if s.record else None) for s in steps]


def test_config_caused_crash_rolls_back_to_last_known_good() -> None:
    steps = rem.plan(
        "inc-1",
        [],
        finding(Category.PROCESS_CRASH, config_caused=True),
        ctx(snap=snapshot(crashing=3, changed_minutes_ago=1)),
    )
    assert kinds(steps) == [("execute", "configRollback", "Running")]
    assert steps[0].params == {"target": "aaaa", "current": "bbbb"}
    assert steps[0].record is not None and steps[0].record.id == "inc-1/0/configRollback"
    # The record carries the revisions as data from the start (a restarted operator reads them back),
    # and its target says the same for a person.
    assert steps[0].record.config == ConfigChange(from_revision="bbbb", to_revision="aaaa")
    assert steps[0].record.target == "revision bbbb -> aaaa"


def test_rollback_never_targets_an_unproven_revision() -> None:
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH, config_caused=True), ctx(z=zen()))
    # Refused, recorded, and nobody paged past the primary for it (the response target decides that).
    assert kinds(steps) == [("record", "configRollback", "Refused")]
    assert "never rolling back to an unproven config" in (steps[0].record.reason or "")  # type: ignore[union-attr]


def test_rollback_refused_when_the_saved_copy_does_not_validate() -> None:
    steps = rem.plan("inc-1", [], finding(Category.CONFIG_ERROR), ctx(lkg_valid=False))
    assert kinds(steps)[0] == ("record", "configRollback", "Refused")


def test_crash_not_caused_by_config_skips_rollback_and_restarts() -> None:
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH), ctx(snap=snapshot(crashing=1)))
    assert kinds(steps) == [("execute", "restart", "Running")]
    assert steps[0].record.step == 2  # type: ignore[union-attr]


def test_oom_raises_the_memory_limit_within_the_cap() -> None:
    pol = policy(actions={"memoryLimit": {"factor": 1.5, "cap": "700Mi"}})
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH), ctx(snap=snapshot(crashing=1, oom=True), pol=pol))
    assert kinds(steps) == [("execute", "memoryLimit", "Running")]
    assert steps[0].params["new"] == 700 * 2**20  # 1.5 x 512Mi = 768Mi, capped at 700Mi


def killed(reason: str) -> Snapshot:
    """Pod edge-0 crash-looping after exit 137 with ``reason`` as its last termination reason."""
    snap = snapshot(crashing=1)
    first = snap.pods[0]
    assert first.container is not None
    container = dataclasses.replace(first.container, last_terminated_reason=reason, last_exit_code=137)
    return dataclasses.replace(snap, pods=(dataclasses.replace(first, container=container), *snap.pods[1:]))


def test_a_liveness_kill_is_not_met_with_a_memory_raise_but_an_oom_kill_is() -> None:
    # Exit 137 with reason Error is a SIGKILL from a liveness probe or a grace period: triage does not
    # call it memory exhaustion, and the planner must not raise the memory limit for it either.
    liveness = killed("Error")
    assert not liveness.oom_killed(liveness.pods[0])
    assert rem.applicable(rem.Action.MEMORY_LIMIT, finding(Category.PROCESS_CRASH), ctx(snap=liveness)) == (
        False,
        {},
        "no container was OOMKilled",
    )
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH), ctx(snap=liveness))
    assert kinds(steps) == [("execute", "restart", "Running")]

    oom = killed("OOMKilled")
    assert oom.oom_killed(oom.pods[0])
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH), ctx(snap=oom))
    assert kinds(steps) == [("execute", "memoryLimit", "Running")]


def test_memory_at_cap_is_skipped_to_the_next_rung() -> None:
    pol = policy(actions={"memoryLimit": {"cap": "512Mi"}})
    steps = rem.plan("inc-1", [], finding(Category.PROCESS_CRASH), ctx(snap=snapshot(crashing=1, oom=True), pol=pol))
    assert kinds(steps) == [("record", "memoryLimit", "Refused"), ("execute", "restart", "Running")]


def test_modes_dry_run_needs_approval_and_off() -> None:
    f = finding(Category.UPSTREAM_FAILURE, subjects=("api/10.0.1.10:8000",))
    snap = snapshot(unhealthy=1)
    dry = rem.plan("i", [], f, ctx(snap=snap, pol=policy(defaultMode="DryRun")))
    assert kinds(dry) == [("execute", "ejectTargets", "DryRun")]
    pending = rem.plan("i", [], f, ctx(snap=snap, pol=policy(actions={"ejectTargets": {"mode": "NeedsApproval"}})))
    assert kinds(pending) == [("record", "ejectTargets", "PendingApproval")]
    off = rem.plan("i", [], f, ctx(snap=snap, pol=policy(actions={"ejectTargets": {"mode": "Off"}})))
    assert kinds(off) == [("execute", "restart", "Running")]


def test_pending_action_waits_for_approval_then_runs_on_current_facts() -> None:
    f = finding(Category.UPSTREAM_FAILURE)
    snap = snapshot(unhealthy=1)
    pol = policy(actions={"ejectTargets": {"mode": "NeedsApproval", "ttl": "15m"}})
    pending = rem.plan("i", [], f, ctx(snap=snap, pol=pol))[0].record
    assert pending is not None
    assert rem.plan("i", [pending], f, ctx(snap=snap, pol=pol)) == []
    approved = rem.plan("i", [pending], f, ctx(snap=snap, pol=pol, approvals={pending.id: "alice"}))
    assert kinds(approved) == [("execute", "ejectTargets", "Running")]
    assert approved[0].record.approved_by == "alice"  # type: ignore[union-attr]
    assert approved[0].params["targets"] == {"api": ["10.0.1.10:8000"]}
    assert approved[0].params["ttl_seconds"] == 900


def test_a_rejected_action_is_refused_with_who_and_why_and_the_ladder_goes_on() -> None:
    f = finding(Category.UPSTREAM_FAILURE)
    snap = snapshot(unhealthy=1)
    pol = policy(actions={"ejectTargets": {"mode": "NeedsApproval", "ttl": "15m"}})
    pending = rem.plan("i", [], f, ctx(snap=snap, pol=pol))[0].record
    assert pending is not None
    no = Approval(action_id=pending.id, by="bob", decision=Decision.REJECT, reason="target is fine, a deploy is on")
    steps = rem.plan("i", [pending], f, ctx(snap=snap, pol=pol, approvals={pending.id: no}))
    assert kinds(steps) == [("record", "ejectTargets", "Refused")]
    rejected = steps[0].record
    assert rejected is not None and rejected.rejected_by == "bob" and rejected.approved_by is None
    assert rejected.reason == "skip: rejected by bob: target is fine, a deploy is on"
    # Nothing escalates on a rejection alone, and the next pass goes on to the next rung.
    after = rem.plan("i", [rejected], f, ctx(snap=snap, pol=pol, approvals={pending.id: no}))
    assert kinds(after) == [("execute", "restart", "Running")]


def test_quorum_guard_refuses_and_moves_on() -> None:
    pol = policy(actions={"ejectTargets": {"minRemainingShare": 0.5}})
    steps = rem.plan("i", [], finding(Category.UPSTREAM_FAILURE), ctx(snap=snapshot(unhealthy=2), pol=pol))
    assert kinds(steps) == [("record", "ejectTargets", "Refused"), ("execute", "restart", "Running")]
    assert "would leave 1" in (steps[0].record.reason or "")  # type: ignore[union-attr]


def test_budget_per_zentinel_and_per_cluster() -> None:
    ledger = [RemediationLedgerEntry(action="restart", at=NOW - dt.timedelta(minutes=m)) for m in (5, 10, 15)]
    z = zen(lastKnownGoodRevision="aaaa", remediations=[e.model_dump(by_alias=True, mode="json") for e in ledger])
    steps = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(z=z))
    assert kinds(steps) == [("record", "restart", "Refused")]
    assert "budget exhausted: 3 actions" in (steps[0].record.reason or "")  # type: ignore[union-attr]
    old = [RemediationLedgerEntry(action="restart", at=NOW - dt.timedelta(hours=2))] * 5
    z_old = zen(remediations=[e.model_dump(by_alias=True, mode="json") for e in old])
    assert kinds(rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(z=z_old)))[0][0] == "execute"
    cluster = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(cluster_recent=10))
    assert "cluster budget exhausted" in (cluster[0].record.reason or "")  # type: ignore[union-attr]


def test_cooldown_waits_without_failing() -> None:
    ledger = [RemediationLedgerEntry(action="restart", at=NOW - dt.timedelta(minutes=2))]
    z = zen(remediations=[e.model_dump(by_alias=True, mode="json") for e in ledger])
    steps = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(z=z, pol=policy(cooldown="10m")))
    assert kinds(steps) == [("record", "restart", "Waiting")]
    assert "cooldown until" in (steps[0].record.reason or "")  # type: ignore[union-attr]
    # Waiting again with the same reason writes nothing new.
    again = rem.plan(
        "i",
        [steps[0].record],
        finding(Category.HEALTH_CHECK_FAILURE),  # type: ignore[list-item]
        ctx(z=z, pol=policy(cooldown="10m")),
    )
    assert again == []


def test_the_same_action_for_another_incident_waits_while_the_first_is_in_flight() -> None:
    # Cooldown 0s: without this guard a second incident rotated a certificate the first was verifying.
    pol = policy(cooldown="0s")
    verifying = RemediationRecord(
        id="inc-1/0/restart", action="restart", mode="Automatic", state="Verifying", step=0, started_at=NOW
    )
    held = rem.in_flight({"inc-1": [verifying], "inc-2": []})
    assert held == {"restart": "inc-1"}
    other = rem.plan(
        "inc-2", [], finding(Category.HEALTH_CHECK_FAILURE), dataclasses.replace(ctx(pol=pol), in_flight=held)
    )
    assert kinds(other) == [("record", "restart", "Waiting")]
    assert "restart for inc-1 is still in flight" in (other[0].record.reason or "")  # type: ignore[union-attr]
    # Once it is verified (Succeeded), the other incident may act.
    done = rem.in_flight({"inc-1": [verifying.model_copy(update={"state": "Succeeded"})]})
    assert done == {}
    after = rem.plan(
        "inc-2", [], finding(Category.HEALTH_CHECK_FAILURE), dataclasses.replace(ctx(pol=pol), in_flight=done)
    )
    assert kinds(after)[0][0] == "execute"


def test_hold_off_on_foreign_rollout_and_config_change_but_not_for_rollback() -> None:
    rolling = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(snap=snapshot(rolling=True)))
    assert kinds(rolling) == [("record", "restart", "Waiting")]
    changed = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(snap=snapshot(changed_minutes_ago=2)))
    assert "someone changed the config" in (changed[0].record.reason or "")  # type: ignore[union-attr]
    ours = rem.plan(
        "i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(snap=snapshot(changed_minutes_ago=2), by_operator=True)
    )
    assert kinds(ours)[0][0] == "execute"
    rollback = rem.plan(
        "i",
        [],
        finding(Category.PROCESS_CRASH, config_caused=True),
        ctx(snap=snapshot(crashing=3, rolling=True, changed_minutes_ago=1)),
    )
    assert kinds(rollback) == [("execute", "configRollback", "Running")]


def test_paused_zentinel_refuses_everything() -> None:
    z = zen(lastKnownGoodRevision="aaaa")
    z = z.model_copy(update={"spec": z.spec.model_copy(update={"paused": True})})
    steps = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), ctx(z=z))
    assert "paused" in (steps[0].record.reason or "")  # type: ignore[union-attr]


def rec(action: rem.Action, step: int, state: str, minutes_ago: float, **kw: Any) -> RemediationRecord:
    return RemediationRecord(
        id=f"i/{step}/{action.value}",
        action=action.value,
        mode=kw.pop("mode", "Automatic"),
        state=state,
        step=step,
        started_at=NOW - dt.timedelta(minutes=minutes_ago),
        finished_at=kw.pop("finished_at", None),
        **kw,
    )


def test_in_flight_record_is_verified_not_repeated() -> None:
    verifying = rec(rem.Action.RESTART, 0, rem.VERIFYING, 1)
    steps = rem.plan("i", [verifying], finding(Category.HEALTH_CHECK_FAILURE), ctx())
    assert kinds(steps) == [("verify", "restart", "Verifying")]


def test_a_record_left_running_is_resumed_without_a_second_guardrail_check() -> None:
    """The operator stopped between writing the record and acting: finish it, even on a spent budget."""
    running = rec(rem.Action.EJECT_TARGETS, 0, rem.RUNNING, 1)
    ledger = [RemediationLedgerEntry(action="ejectTargets", at=NOW - dt.timedelta(minutes=1))] * 3
    z = zen(lastKnownGoodRevision="aaaa", remediations=[e.model_dump(by_alias=True, mode="json") for e in ledger])
    pol = policy(actions={"ejectTargets": {"ttl": "10m"}})
    steps = rem.plan("i", [running], finding(Category.UPSTREAM_FAILURE), ctx(z=z, snap=snapshot(unhealthy=1), pol=pol))
    assert kinds(steps) == [("resume", "ejectTargets", "Running")]
    assert steps[0].params["targets"] == {"api": ["10.0.1.10:8000"]}
    assert steps[0].params["ttl_seconds"] == 600


def test_ladder_advances_after_a_failed_step_and_ends_with_a_page() -> None:
    failed = rec(
        rem.Action.RESTART,
        0,
        rem.FAILED,
        5,
        finished_at=NOW - dt.timedelta(minutes=1),
        failed_in=rem.FAILED_IN_VERIFICATION,
    )
    steps = rem.plan("i", [failed], finding(Category.HEALTH_CHECK_FAILURE), ctx())
    assert kinds(steps) == [("escalate", "page", "Succeeded")]
    assert steps[0].reason == "remediation did not recover: restart ran and verification showed no recovery"
    done = rem.plan("i", [failed, steps[0].record], finding(Category.HEALTH_CHECK_FAILURE), ctx())  # type: ignore[list-item]
    assert done == []


def test_success_gets_its_verify_window_before_the_next_rung() -> None:
    ok = rec(rem.Action.RESTART, 0, rem.SUCCEEDED, 2, finished_at=NOW - dt.timedelta(minutes=1))
    assert rem.plan("i", [ok], finding(Category.HEALTH_CHECK_FAILURE), ctx()) == []
    stale = rec(rem.Action.RESTART, 0, rem.SUCCEEDED, 10, finished_at=NOW - dt.timedelta(minutes=5))
    # The next rung is the page; a step that verified is no ground to page past the primary.
    assert kinds(rem.plan("i", [stale], finding(Category.HEALTH_CHECK_FAILURE), ctx())) == [
        ("record", "page", "Refused")
    ]


def test_temporary_change_is_reverted_after_its_ttl_even_when_healthy() -> None:
    ejected = rec(
        rem.Action.EJECT_TARGETS,
        0,
        rem.SUCCEEDED,
        20,
        revert_at=NOW - dt.timedelta(seconds=1),
        finished_at=NOW - dt.timedelta(minutes=19),
    )
    steps = rem.plan("i", [ejected], None, ctx())
    assert kinds(steps) == [("revert", "ejectTargets", "Succeeded")]
    not_yet = ejected.model_copy(update={"revert_at": NOW + dt.timedelta(minutes=1)})
    assert rem.plan("i", [not_yet], None, ctx()) == []


def test_a_change_still_verifying_at_its_ttl_is_reverted_and_not_verified_in_the_same_pass() -> None:
    # Verifying the stale copy after the revert would write it over the Reverted record (seen on the
    # real API server: the ConfigMap reverted, the record Verifying again, reverted once more).
    verifying = rec(rem.Action.EJECT_TARGETS, 0, rem.VERIFYING, 1, revert_at=NOW - dt.timedelta(seconds=1))
    steps = rem.plan("i", [verifying], finding(Category.UPSTREAM_FAILURE), ctx())
    assert kinds(steps) == [("revert", "ejectTargets", "Verifying")]
    before_ttl = verifying.model_copy(update={"revert_at": NOW + dt.timedelta(minutes=1)})
    assert kinds(rem.plan("i", [before_ttl], finding(Category.UPSTREAM_FAILURE), ctx())) == [
        ("verify", "ejectTargets", "Verifying")
    ]


@pytest.mark.parametrize(
    ("in_place", "has_finding", "minutes", "expected"),
    [
        (True, False, 1, rem.SUCCEEDED),
        (True, True, 1, rem.VERIFYING),
        (False, False, 1, rem.VERIFYING),
        (True, True, 3, rem.FAILED),
        (False, False, 4, rem.FAILED),
    ],
)
def test_verify_outcome(in_place: bool, has_finding: bool, minutes: float, expected: str) -> None:
    r = rec(rem.Action.RESTART, 0, rem.VERIFYING, minutes)
    f = finding(Category.HEALTH_CHECK_FAILURE) if has_finding else None
    assert rem.verify_outcome(r, effect_in_place=in_place, finding=f, now=NOW, policy=policy()) == expected


def test_no_failure_verdict_on_signals_read_before_the_verify_timeout() -> None:
    """An event pass reuses the last scan's metrics: read before the step timed out, they cannot fail it."""
    r = rec(rem.Action.RESTART, 0, rem.VERIFYING, 4)  # started 4 minutes ago, the timeout is 3
    f = finding(Category.HIGH_ERROR_RATE)
    before = NOW - dt.timedelta(minutes=2)  # the last scan, one minute after the step started
    assert rem.verify_outcome(r, effect_in_place=True, finding=f, now=NOW, policy=policy(), signals_at=before) == (
        rem.VERIFYING
    )
    assert rem.verify_outcome(r, effect_in_place=True, finding=f, now=NOW, policy=policy(), signals_at=NOW) == (
        rem.FAILED
    )
    # Recovery is recovery, whenever it was read.
    assert rem.verify_outcome(r, effect_in_place=True, finding=None, now=NOW, policy=policy(), signals_at=before) == (
        rem.SUCCEEDED
    )


def test_certificate_rotation_only_for_rotatable_issuers() -> None:
    steps = rem.plan("i", [], finding(Category.CERTIFICATE_EXPIRING, subjects=("public",)), ctx())
    assert kinds(steps) == [("execute", "certificateRotation", "Running")]
    assert steps[0].params["certificates"] == ["public"]
    external = rem.plan("i", [], finding(Category.CERTIFICATE_EXPIRING, subjects=("partner",)), ctx())
    assert kinds(external) == [("record", "page", "Refused")]  # nothing ran: the response target decides


def test_plans_are_deterministic() -> None:
    f = finding(Category.UPSTREAM_FAILURE)
    assert rem.plan("i", [], f, ctx(snap=snapshot(unhealthy=1))) == rem.plan(
        "i", [], f, ctx(snap=snapshot(unhealthy=1))
    )


def test_a_record_left_running_that_no_longer_applies_is_not_carried_out() -> None:
    """A rollback recorded Running whose crash no longer follows a config change: resume, but as refused."""
    running = rec(rem.Action.CONFIG_ROLLBACK, 0, rem.RUNNING, 1, target="revision bbbb -> aaaa")
    z = zen(lastKnownGoodRevision="aaaa")
    steps = rem.plan("i", [running], finding(Category.PROCESS_CRASH), ctx(z=z))
    assert kinds(steps) == [("resume", "configRollback", "Running")]
    assert steps[0].applies is False
    assert "does not follow a config change" in steps[0].reason
    assert steps[0].params == {}


# ------------------------------------------------------------------ escalation that means something
def stale(action: rem.Action, state: str, **kw: Any) -> RemediationRecord:
    """A record whose verify window is over, so the planner moves on to the next rung (the page here)."""
    return rec(action, 0, state, 10, finished_at=NOW - dt.timedelta(minutes=5), **kw)


def page_after(*records: RemediationRecord) -> list[tuple[str, str | None, str | None]]:
    return kinds(rem.plan("i", list(records), finding(Category.HEALTH_CHECK_FAILURE), ctx()))


def test_a_dry_run_only_ladder_ends_without_paging_past_the_primary() -> None:
    dry = stale(rem.Action.RESTART, rem.DRY_RUN, mode="DryRun")
    steps = rem.plan("i", [dry], finding(Category.HEALTH_CHECK_FAILURE), ctx())
    assert kinds(steps) == [("record", "page", "Refused")]
    reason = steps[0].record.reason or ""  # type: ignore[union-attr]
    assert "no real action ran and failed its verification (dry run: restart)" in reason
    assert "secondary is paged at the response target" in reason
    # The ladder is over: the next pass does nothing more (and pages nobody).
    assert rem.plan("i", [dry, steps[0].record], finding(Category.HEALTH_CHECK_FAILURE), ctx()) == []  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("record", "escalates"),
    [
        # The demo's case: a dry run that itself failed.
        (stale(rem.Action.RESTART, rem.FAILED, mode="DryRun", failed_in=rem.FAILED_IN_ACTION), False),
        # Not carried out: the API refused it (the Deployment was gone).
        (
            stale(rem.Action.RESTART, rem.FAILED, failed_in=rem.FAILED_IN_ACTION, reason="Deployment edge not found"),
            False,
        ),
        (stale(rem.Action.RESTART, rem.FAILED, failed_in=rem.FAILED_IN_REVERT), False),
        (stale(rem.Action.RESTART, rem.REFUSED, reason="skip: the Deployment does not exist"), False),
        (stale(rem.Action.RESTART, rem.REVERTED), False),
        # Carried out, verified, no recovery.
        (stale(rem.Action.RESTART, rem.FAILED, failed_in=rem.FAILED_IN_VERIFICATION), True),
        # A dry run never escalates, even one marked as failed in verification.
        (stale(rem.Action.RESTART, rem.FAILED, mode="DryRun", failed_in=rem.FAILED_IN_VERIFICATION), False),
        # Written before failedIn existed: verification's own words tell.
        (stale(rem.Action.RESTART, rem.FAILED, reason=f"rolling restart; {rem.NOT_RECOVERED_IN_PLACE}"), True),
        (stale(rem.Action.RESTART, rem.FAILED, reason=rem.NOT_RECOVERED_NOT_IN_PLACE), True),
        (stale(rem.Action.RESTART, rem.FAILED, reason="Deployment edge not found (404)"), False),
    ],
)
def test_only_a_real_action_that_did_not_recover_escalates_at_the_end_of_the_ladder(
    record: RemediationRecord, escalates: bool
) -> None:
    assert rem.failed_verification(record) is escalates
    expected = ("escalate", "page", "Succeeded") if escalates else ("record", "page", "Refused")
    assert page_after(record) == [expected]


def test_a_page_record_is_never_grounds_for_escalation() -> None:
    page = stale(rem.Action.PAGE, rem.FAILED, failed_in=rem.FAILED_IN_VERIFICATION)
    assert not rem.failed_verification(page) and rem.ran_without_recovery([page]) == []


def test_one_real_failure_among_dry_runs_and_refusals_is_enough() -> None:
    records = [
        rec(rem.Action.CONFIG_ROLLBACK, 0, rem.FAILED, 20, failed_in=rem.FAILED_IN_VERIFICATION),
        rec(rem.Action.EJECT_TARGETS, 1, rem.DRY_RUN, 15, mode="DryRun"),
        rec(rem.Action.RATE_LIMIT, 2, rem.REFUSED, 10, reason="skip: no route to limit"),
    ]
    assert rem.ran_without_recovery(records) == records[:1]
    assert rem.escalation_message(records[:1]).startswith("remediation did not recover: configRollback ran")
    text = rem.not_escalated_reason(records[1:])
    assert "(dry run: ejectTargets; refused: rateLimit)" in text
    assert "(no step applied)" in rem.not_escalated_reason([])


def test_a_refusal_escalates_only_after_a_real_action_did_not_recover() -> None:
    ledger = [RemediationLedgerEntry(action="restart", at=NOW - dt.timedelta(minutes=m)) for m in (5, 10, 15)]
    z = zen(lastKnownGoodRevision="aaaa", remediations=[e.model_dump(by_alias=True, mode="json") for e in ledger])
    spent = ctx(z=z)
    alone = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), spent)
    assert kinds(alone) == [("record", "restart", "Refused")]
    # UpstreamFailure: the ejection ran and did not help; the restart is refused on the budget: nothing is left.
    ejected = rec(rem.Action.EJECT_TARGETS, 0, rem.FAILED, 10, failed_in=rem.FAILED_IN_VERIFICATION)
    after = rem.plan("i", [ejected], finding(Category.UPSTREAM_FAILURE), spent)
    assert kinds(after) == [("record", "restart", "Refused"), ("escalate", "page", None)]
    assert "restart refused: budget exhausted" in after[1].reason
    assert "ejectTargets ran and verification showed no recovery" in after[1].reason


def test_a_verification_failure_names_why() -> None:
    r = rec(rem.Action.RESTART, 0, rem.VERIFYING, 5, reason="rolling restart")
    assert rem.verify_failure_reason(r, in_place=True) == f"rolling restart; {rem.NOT_RECOVERED_IN_PLACE}"
    bare = r.model_copy(update={"reason": None})
    assert rem.verify_failure_reason(bare, in_place=False) == rem.NOT_RECOVERED_NOT_IN_PLACE


def test_a_silence_holding_remediation_makes_the_ladder_wait_once_and_go_on_after() -> None:
    held = "silenced by maint until 2026-11-27T05:00:00Z (silenceRemediation)"
    quiet = dataclasses.replace(ctx(), silenced=held)
    steps = rem.plan("i", [], finding(Category.HEALTH_CHECK_FAILURE), quiet)
    assert kinds(steps) == [("record", "restart", "Waiting")]
    waiting = steps[0].record
    assert waiting is not None and waiting.reason == held
    assert rem.plan("i", [waiting], finding(Category.HEALTH_CHECK_FAILURE), quiet) == []  # recorded once
    after = rem.plan("i", [waiting], finding(Category.HEALTH_CHECK_FAILURE), ctx())
    assert kinds(after) == [("execute", "restart", "Running")] and after[0].record.id == waiting.id  # type: ignore[union-attr]


def test_a_silence_holding_remediation_still_verifies_and_reverts_what_was_done() -> None:
    quiet = dataclasses.replace(ctx(), silenced="silenced by maint")
    verifying = rec(rem.Action.RESTART, 0, rem.VERIFYING, 1)
    assert kinds(rem.plan("i", [verifying], finding(Category.HEALTH_CHECK_FAILURE), quiet)) == [
        ("verify", "restart", "Verifying")
    ]
    ejected = rec(rem.Action.EJECT_TARGETS, 0, rem.SUCCEEDED, 20, revert_at=NOW - dt.timedelta(minutes=1))
    assert kinds(rem.plan("i", [ejected], None, quiet))[0] == ("revert", "ejectTargets", "Succeeded")


def test_an_approved_action_waits_for_the_silence_to_end() -> None:
    pending = rec(rem.Action.RESTART, 0, rem.PENDING_APPROVAL, 1, mode="NeedsApproval")
    quiet = dataclasses.replace(ctx(approvals={pending.id: "bob"}), silenced="silenced by maint")
    assert rem.plan("i", [pending], finding(Category.HEALTH_CHECK_FAILURE), quiet) == []
    steps = rem.plan("i", [pending], finding(Category.HEALTH_CHECK_FAILURE), ctx(approvals={pending.id: "bob"}))
    assert kinds(steps) == [("execute", "restart", "Running")]
