"""Respond: plan remediation per open incident (core.remediation), carry it out (remediation.executor),
and record every step on the incident, the record written before the action runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import checkpoints, k8s, leader
from .. import operator_metrics as metrics
from ..api import Api
from ..core import lifecycle as lc
from ..core import remediation as rem
from ..core import zconfig
from ..core.observation import Observation
from ..core.patches import merge_patch
from ..core.silences import remediation_hold
from ..core.snapshot import Finding
from ..models.common import Category, Source
from ..models.incident import RemediationRecord, ZentinelIncident, ZentinelIncidentStatus
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.silence import ZentinelSilence
from ..models.zentinel import RemediationLedgerEntry, Zentinel
from ..names import API_VERSION, KIND_INCIDENT
from ..remediation import executor

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Responded:
    notifications: list[tuple[str, lc.Notification]] = dataclasses.field(default_factory=list)
    ledger: list[RemediationLedgerEntry] = dataclasses.field(default_factory=list)
    incidents: list[ZentinelIncident] = dataclasses.field(default_factory=list)
    awaiting_live: bool = False  # a config change awaits verification: the next gather reads /admin/config
    failures: list[str] = dataclasses.field(default_factory=list)  # per incident, for the Zentinel's status


def ledger_of(incidents: Sequence[ZentinelIncident]) -> list[RemediationLedgerEntry]:
    """Actions that changed something (dry runs, refusals and waits excluded), from the incidents' records."""
    entries = []
    for inc in incidents:
        for r in inc.status.remediations:
            if r.state in (rem.RUNNING, rem.VERIFYING, rem.SUCCEEDED, rem.FAILED, rem.REVERTED) and r.started_at:
                if r.action == rem.Action.PAGE.value or (r.state == rem.FAILED and r.before is None):
                    continue
                entries.append(
                    RemediationLedgerEntry(action=r.action, at=r.started_at, incident=inc.metadata.name, id=r.id)
                )
    entries.sort(key=lambda e: e.at)
    return entries


def _replace(records: list[RemediationRecord], rec: RemediationRecord) -> list[RemediationRecord]:
    """Put ``rec`` in place of the record with its id (the last one if several), else append it."""
    for i in range(len(records) - 1, -1, -1):
        if records[i].id == rec.id:
            out = list(records)
            out[i] = rec
            return out
    return [*records, rec]


def _write(api: Api, inc: ZentinelIncident, old: ZentinelIncidentStatus, new: ZentinelIncidentStatus) -> None:
    patch = merge_patch(old.dump(), new.dump())
    if patch:
        api.patch_incident_status(inc.metadata.namespace, inc.metadata.name, patch)


def _describe(rec: RemediationRecord) -> str:
    parts = [f"{rec.action} [{rec.state}]"]
    if rec.target:
        parts.append(f"on {rec.target}")
    if rec.before or rec.after:
        parts.append(f"before: {rec.before or '-'}; after: {rec.after or '-'}")
    if rec.reason:
        parts.append(rec.reason)
    return " - ".join(parts)


def respond(
    *,
    api: Api,
    zen: Zentinel,
    observation: Observation,
    findings: Sequence[Finding],
    policy: ZentinelIncidentPolicySpec,
    incidents: Sequence[ZentinelIncident],
    now: dt.datetime,
    cluster_recent: int,
    silences: Sequence[ZentinelSilence] = (),
) -> Responded:
    """Plan, guard, act and verify for each open incident, from the pass's observation (its snapshot, the
    Deployment as read, whether the operator wrote the current config). Every read and write goes through
    ``api``."""
    snapshot = observation.snapshot
    deployment = observation.deployment
    out = Responded()
    by_cat = {f.category: f for f in findings}
    ectx = executor.ExecContext(zen=zen, deployment=deployment, snapshot=snapshot, policy=policy, now=now, api=api)
    valid_targets: dict[str, bool] = {}
    lkg = zen.status.last_known_good_revision
    # The rollback target is read only when an incident may plan: a quiet pass reads nothing.
    if lkg and any(_may_act(inc) for inc in incidents):
        try:
            text = executor.revision_text(api, zen, lkg)
        except Exception as e:  # unreadable now: not a target this pass (a rollback is refused, not attempted)
            out.failures.append(f"saved revision {lkg}: {k8s.describe_error(e)}")
            log.warning("remediation for %s/%s: %s", zen.metadata.namespace, zen.metadata.name, out.failures[-1])
            text = None
        valid_targets[lkg] = text is not None and zconfig.check_config(text).valid
    all_incidents = list(incidents)
    for index, inc in enumerate(all_incidents):
        if not _may_act(inc):
            continue
        base = rem.Context(
            zentinel=zen.model_copy(
                update={"status": zen.status.model_copy(update={"remediations": ledger_of(all_incidents)})}
            ),
            snapshot=snapshot,
            policy=policy,
            now=now,
            cluster_recent=cluster_recent,
            config_text_valid=valid_targets,
            config_changed_by_operator=observation.config_written_by_operator,
            approvals=rem.approvals(inc),
            in_flight=rem.in_flight({i.metadata.name: i.status.remediations for i in all_incidents}),
            silenced=remediation_hold(inc, silences, now),
        )
        try:
            all_incidents[index] = _respond_one(api, inc, base, by_cat, ectx, out)
        except Exception as e:  # one incident's trouble stops neither the others nor the pass
            out.failures.append(f"{inc.metadata.name}: {k8s.describe_error(e)}")
            log.warning("remediation of %s/%s failed: %s", inc.metadata.namespace, inc.metadata.name, out.failures[-1])
    out.incidents = all_incidents
    out.ledger = ledger_of(all_incidents)
    out.awaiting_live = zen.spec.config.verify_live and any(
        r.state in rem.IN_FLIGHT and r.action in rem.CONFIG_ACTIONS
        for inc in all_incidents
        for r in inc.status.remediations
    )
    return out


def _respond_one(
    api: Api,
    inc: ZentinelIncident,
    ctx: rem.Context,
    by_cat: Mapping[Category, Finding],
    ectx: executor.ExecContext,
    out: Responded,
) -> ZentinelIncident:
    """Plan and carry out what one incident needs now; returns it with its new status (written)."""
    finding = by_cat.get(inc.spec.category) if lc.is_open(inc.status) else None
    steps = rem.plan(inc.metadata.name, inc.status.remediations, finding, ctx)
    if not steps:
        return inc
    old = inc.status
    st = old.model_copy(deep=True)
    try:
        for step in steps:
            st = _apply(api, step, inc, st, ectx, finding, ctx.policy, out)
    finally:
        _write(api, inc, old, st)  # what the steps before a failure did is recorded, so nothing is done twice
    return inc.model_copy(update={"status": st})


def _may_act(inc: ZentinelIncident) -> bool:
    """The operator's own incident, open or with work left: the pass plans, acts or verifies for it."""
    return inc.spec.source == Source.OPERATOR and (lc.is_open(inc.status) or _still_acting(inc))


def _still_acting(inc: ZentinelIncident) -> bool:
    """A resolved incident still has work: a change to verify or finish, or a temporary one to undo."""
    return any(
        r.state in rem.IN_FLIGHT or (r.revert_at is not None and r.state in (rem.SUCCEEDED, rem.VERIFYING, rem.FAILED))
        for r in inc.status.remediations
    )


@dataclasses.dataclass
class _Apply:
    """One step of one incident, with what carrying it out needs."""

    api: Api
    step: rem.Step
    rec: RemediationRecord  # the step's record (every step but a refusal-escalation has one)
    inc: ZentinelIncident
    st: ZentinelIncidentStatus
    ectx: executor.ExecContext
    finding: Finding | None
    policy: ZentinelIncidentPolicySpec
    out: Responded

    @property
    def now(self) -> dt.datetime:
        return self.ectx.now

    def noted(self, message: str) -> ZentinelIncidentStatus:
        return lc.note_action(self.st, message=message, now=self.now, policy=self.policy)

    def replaced(self, rec: RemediationRecord) -> None:
        self.st.remediations = _replace(self.st.remediations, rec)
        metrics.REMEDIATIONS.labels(rec.action, rec.state).inc()


def _apply(
    api: Api,
    step: rem.Step,
    inc: ZentinelIncident,
    st: ZentinelIncidentStatus,
    ectx: executor.ExecContext,
    finding: Finding | None,
    policy: ZentinelIncidentPolicySpec,
    out: Responded,
) -> ZentinelIncidentStatus:
    if step.kind in (rem.StepKind.REVERT, rem.StepKind.RESUME, rem.StepKind.EXECUTE):
        leader.ensure_active()  # a replica whose Lease lapsed makes no change (its successor may be acting)
    if step.kind == rem.StepKind.ESCALATE:
        return _escalate(step, inc, st, ectx.now, policy, out)
    if step.record is None:
        return st
    return _BY_KIND[step.kind](_Apply(api, step, step.record, inc, st, ectx, finding, policy, out))


def _revert(a: _Apply) -> ZentinelIncidentStatus:
    rec = executor.revert(a.rec, a.ectx)
    a.replaced(rec)
    return a.noted(f"Reverted {_describe(rec)}")


def _verify(a: _Apply) -> ZentinelIncidentStatus:
    rec, now, st = a.rec, a.now, a.st
    checkpoints.reached("verifying", f"{a.inc.metadata.name} {rec.action} {rec.id}")
    in_place = executor.effect_in_place(rec, a.ectx)
    state = rem.verify_outcome(
        rec,
        effect_in_place=in_place,
        finding=a.finding,
        now=now,
        policy=a.policy,
        signals_at=a.ectx.snapshot.endpoints_at or now,
    )
    if state == rec.state and rec.verified_at is not None:
        return st
    updates: dict[str, Any] = {"state": state}
    if in_place and rec.verified_at is None:
        updates["verified_at"] = now
    if state != rem.VERIFYING:
        updates["finished_at"] = now
        if state == rem.FAILED:
            gap = None if in_place else executor.live_gap(rec, a.ectx)
            updates["reason"] = rem.verify_failure_reason(rec, in_place=in_place, live_gap=gap)
            updates["failed_in"] = rem.FAILED_IN_VERIFICATION
    rec = rec.model_copy(update=updates)
    st.remediations = _replace(st.remediations, rec)
    if state == rem.SUCCEEDED:
        metrics.REMEDIATIONS.labels(rec.action, rem.SUCCEEDED).inc()
        generation = a.inc.metadata.generation
        st = lc.mark_mitigated(st, action=rec.action, now=now, policy=a.policy, generation=generation)
        _post_event(a.api, a.inc, "RemediationSucceeded", _describe(rec), "Normal", now)
    elif state == rem.FAILED:
        metrics.REMEDIATIONS.labels(rec.action, rem.FAILED).inc()
        st = lc.note_action(st, message=f"Did not help: {_describe(rec)}", now=now, policy=a.policy)
        _post_event(a.api, a.inc, "RemediationFailed", _describe(rec), "Warning", now)
    return st


def _record(a: _Apply) -> ZentinelIncidentStatus:
    rec = a.rec
    previous = next((r for r in reversed(a.st.remediations) if r.id == rec.id), None)
    if previous is not None and previous.state == rec.state and previous.reason == rec.reason:
        return a.st
    if rec.state == rem.PENDING_APPROVAL and previous is None:
        rec = _with_preview(a.step, rec, a.ectx)
    a.replaced(rec)
    return a.noted(_describe(rec))


def _escalate(
    step: rem.Step,
    inc: ZentinelIncident,
    st: ZentinelIncidentStatus,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
    out: Responded,
) -> ZentinelIncidentStatus:
    if step.record is not None:
        st.remediations = _replace(st.remediations, step.record)
    reason = "RemediationExhausted" if step.record is not None else "RemediationRefused"
    outcome = lc.escalate_now(
        st,
        category=inc.spec.category,
        reason=reason,
        message=step.reason,
        now=now,
        policy=policy,
        generation=inc.metadata.generation,
    )
    out.notifications += [(inc.metadata.name, n) for n in outcome.notifications]
    metrics.observe(outcome.metrics)
    return outcome.status


def _resume(a: _Apply) -> ZentinelIncidentStatus:
    rec = a.rec
    done_already = executor.already_done(rec, a.ectx)
    if done_already is not None:
        resumed = rec.model_copy(update={"state": rem.VERIFYING, **done_already})
    elif a.finding is None or not a.step.applies:
        why = "the signal went away before it was carried out" if a.finding is None else a.step.reason
        resumed = rec.model_copy(update={"state": rem.REFUSED, "finished_at": a.now, "reason": f"skip: {why}"})
    else:
        resumed = executor.execute(a.step, a.ectx)
    a.replaced(resumed)
    return a.noted(f"Resumed after a restart: {_describe(resumed)}")


def _execute(a: _Apply) -> ZentinelIncidentStatus:
    rec, inc, st, now, name = a.rec, a.inc, a.st, a.now, a.inc.metadata.name
    if rec.state != rem.DRY_RUN:
        checkpoints.reached("decided", f"{name} {rec.action} {rec.id}")
        # Record first: a crash from here on finds the record and never runs the action twice.
        running = rec.model_copy(update={"state": rem.RUNNING, "started_at": now})
        before_write = st.model_copy(deep=True)
        st.remediations = _replace(st.remediations, running)
        st = lc.note_action(st, message=f"Starting {_describe(running)}", now=now, policy=a.policy)
        _write(a.api, inc, before_write, st)
        inc = inc.model_copy(update={"status": st})
        st = st.model_copy(deep=True)
        rec = running
        checkpoints.reached("recorded", f"{name} {rec.action} {rec.id}")
    done = executor.execute(dataclasses.replace(a.step, record=rec), a.ectx)
    if done.state != rem.DRY_RUN:
        checkpoints.reached("acted", f"{name} {rec.action} {rec.id}")
    st.remediations = _replace(st.remediations, done)
    metrics.REMEDIATIONS.labels(done.action, done.state).inc()
    _post_event(
        a.api,
        inc,
        "Remediation" + ("DryRun" if done.state == rem.DRY_RUN else done.state),
        _describe(done),
        "Warning" if done.state == rem.FAILED else "Normal",
        now,
    )
    return lc.note_action(st, message=_describe(done), now=now, policy=a.policy)


# What each kind of step the planner returns does (an escalation is handled above: it may have no record).
_BY_KIND: dict[rem.StepKind, Callable[[_Apply], ZentinelIncidentStatus]] = {
    rem.StepKind.REVERT: _revert,
    rem.StepKind.VERIFY: _verify,
    rem.StepKind.RECORD: _record,
    rem.StepKind.RESUME: _resume,
    rem.StepKind.EXECUTE: _execute,
}


def _with_preview(step: rem.Step, rec: RemediationRecord, ectx: executor.ExecContext) -> RemediationRecord:
    """A remediation waiting for approval carries the change it would make (``diff``, ``before``,
    ``after``), from the executor's dry run, so that the person approving sees what they approve."""
    preview = executor.execute(dataclasses.replace(step, record=rec.model_copy(update={"state": rem.DRY_RUN})), ectx)
    if preview.state != rem.DRY_RUN:
        return rec.model_copy(update={"reason": f"needs approval (no preview: {preview.reason})"})
    return rec.model_copy(update={"diff": preview.diff, "before": preview.before, "after": preview.after})


def _post_event(api: Api, inc: ZentinelIncident, reason: str, message: str, type_: str, now: dt.datetime) -> None:
    meta: Mapping[str, Any] = {"name": inc.metadata.name, "namespace": inc.metadata.namespace, "uid": inc.metadata.uid}
    try:
        api.post_event(
            {"apiVersion": API_VERSION, "kind": KIND_INCIDENT, "metadata": dict(meta)},
            reason=reason,
            message=message,
            type_=type_,
            now=now,
        )
    except Exception as e:  # events are best effort
        log.warning("could not post event %s: %s", reason, e)
