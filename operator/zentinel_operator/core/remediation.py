"""The runbook's first response as a plan (pure): which action, on what, and whether guardrails allow it.

Each category has a ladder of actions; each step is followed by a check and a timeout before the
next. The planner reads the incident's remediation records (kept in its status, so they survive
restarts) and returns what to do now. The executor (``zentinel_operator.remediation``) carries it
out and writes the records; a record is written *before* its action runs, so a restarted operator
finds it and never repeats a change.

Guardrails: mode per action (Automatic, NeedsApproval, DryRun, Off), a silence holding remediation
(the ladder waits), a paused Zentinel, budgets per Zentinel and per cluster, a cooldown, hold-off
while a rollout or someone else's config change is fresh, a quorum guard on ejections, rollbacks
only to proven-good revisions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping, Sequence

from ..models.common import Category
from ..models.incident import Approval, ConfigChange, Decision, RecordState, RemediationRecord, ZentinelIncident
from ..models.policy import RemediationMode, ZentinelIncidentPolicySpec
from ..models.zentinel import IssuerType, RemediationLedgerEntry, Zentinel
from ..names import ANN_APPROVED_BY
from .durations import format_duration, parse_duration
from .quantity import parse_quantity
from .snapshot import Finding, Snapshot, TargetStatus


class Action(enum.StrEnum):
    CONFIG_ROLLBACK = "configRollback"
    MEMORY_LIMIT = "memoryLimit"
    RESTART = "restart"
    EJECT_TARGETS = "ejectTargets"
    RATE_LIMIT = "rateLimit"
    CONNECTION_LIMITS = "connectionLimits"
    CERTIFICATE_ROTATION = "certificateRotation"
    PAGE = "page"


# The escalating ladder per category: the runbook's Immediate Actions, safest first, paging last.
LADDERS: dict[Category, tuple[Action, ...]] = {
    Category.PROCESS_CRASH: (Action.CONFIG_ROLLBACK, Action.MEMORY_LIMIT, Action.RESTART, Action.PAGE),
    Category.CONFIG_ERROR: (Action.CONFIG_ROLLBACK, Action.PAGE),
    Category.UPSTREAM_FAILURE: (Action.EJECT_TARGETS, Action.RESTART, Action.PAGE),
    Category.HIGH_ERROR_RATE: (Action.CONFIG_ROLLBACK, Action.EJECT_TARGETS, Action.RATE_LIMIT, Action.PAGE),
    Category.TRAFFIC_SPIKE: (Action.RATE_LIMIT, Action.CONNECTION_LIMITS, Action.PAGE),
    Category.MEMORY_EXHAUSTION: (Action.MEMORY_LIMIT, Action.CONNECTION_LIMITS, Action.RESTART, Action.PAGE),
    Category.CERTIFICATE_EXPIRING: (Action.CERTIFICATE_ROTATION, Action.PAGE),
    Category.CERTIFICATE_INVALID: (Action.CERTIFICATE_ROTATION, Action.PAGE),
    Category.HEALTH_CHECK_FAILURE: (Action.RESTART, Action.PAGE),
    Category.PERFORMANCE_DEGRADATION: (Action.PAGE,),
}

TEMPORARY = {Action.EJECT_TARGETS, Action.RATE_LIMIT, Action.CONNECTION_LIMITS}
# Actions that change the config: verified on each pod's /admin/config as well as in the ConfigMap.
CONFIG_ACTIONS = {Action.CONFIG_ROLLBACK, *TEMPORARY}

# Record states (RecordState), as the plain strings a record holds.
PLANNED = RecordState.PLANNED.value
PENDING_APPROVAL = RecordState.PENDING_APPROVAL.value
DRY_RUN = RecordState.DRY_RUN.value
RUNNING = RecordState.RUNNING.value
VERIFYING = RecordState.VERIFYING.value
SUCCEEDED = RecordState.SUCCEEDED.value
FAILED = RecordState.FAILED.value
REFUSED = RecordState.REFUSED.value
REVERTED = RecordState.REVERTED.value
WAITING = RecordState.WAITING.value
IN_FLIGHT = {RUNNING, VERIFYING}

# Where a Failed step failed (RemediationRecord.failed_in).
FAILED_IN_ACTION = "Action"  # not carried out: an API error, the executor's own refusal
FAILED_IN_VERIFICATION = "Verification"  # carried out; the signal did not recover
FAILED_IN_REVERT = "Revert"
# The reasons verification gives when it fails (also how records written before failed_in existed are read).
NOT_RECOVERED_IN_PLACE = "the change is in place but the signal persists"
NOT_RECOVERED_NOT_IN_PLACE = "the change did not take effect in time"


@dataclasses.dataclass(frozen=True)
class Context:
    """What the planner may look at besides the incident."""

    zentinel: Zentinel
    snapshot: Snapshot
    policy: ZentinelIncidentPolicySpec
    now: dt.datetime
    cluster_recent: int  # actions across the cluster within the budget window
    config_text_valid: dict[str, bool]  # revision -> valid, for rollback targets
    config_changed_by_operator: bool  # the current ConfigMap content was written by the operator
    approvals: dict[str, Approval]  # action id -> who approved or rejected it
    # action -> the incident whose step of that action is in flight (Running/Verifying) on this Zentinel
    in_flight: dict[str, str] = dataclasses.field(default_factory=dict)
    # Why a silence holds this incident's remediation (ZentinelSilence with silenceRemediation), or None.
    silenced: str | None = None


class StepKind(enum.StrEnum):
    """What a :class:`Step` asks the executor to do."""

    EXECUTE = "execute"  # carry out the action (or its dry run)
    RECORD = "record"  # write the record only: refused, waiting, pending approval, closing the ladder
    VERIFY = "verify"  # check whether an in-flight action recovered the signal
    REVERT = "revert"  # undo a temporary change whose TTL is reached
    ESCALATE = "escalate"  # page past the primary: the ladder is exhausted
    RESUME = "resume"  # carry on with a record left Running by a restart


@dataclasses.dataclass(frozen=True)
class Step:
    """What to do now for one incident."""

    kind: StepKind
    action: Action | None = None
    record: RemediationRecord | None = None
    reason: str = ""
    params: dict[str, object] = dataclasses.field(default_factory=dict)
    applies: bool = True  # resume only: False when today's facts no longer call for the action (see reason)


def mode_for(policy: ZentinelIncidentPolicySpec, action: Action) -> RemediationMode:
    if action == Action.PAGE:
        return RemediationMode.AUTOMATIC
    actions = policy.remediation.actions
    per_action = {
        Action.CONFIG_ROLLBACK: actions.config_rollback.mode,
        Action.CERTIFICATE_ROTATION: actions.certificate_rotation.mode,
        Action.RESTART: actions.restart.mode,
        Action.CONNECTION_LIMITS: actions.connection_limits.mode,
        Action.MEMORY_LIMIT: actions.memory_limit.mode,
        Action.RATE_LIMIT: actions.rate_limit.mode,
        Action.EJECT_TARGETS: actions.eject_targets.mode,
    }[action]
    return per_action or policy.remediation.default_mode


def ttl_for(policy: ZentinelIncidentPolicySpec, action: Action) -> dt.timedelta | None:
    a = policy.remediation.actions
    ttl = {
        Action.EJECT_TARGETS: a.eject_targets.ttl,
        Action.RATE_LIMIT: a.rate_limit.ttl,
        Action.CONNECTION_LIMITS: a.connection_limits.ttl,
    }.get(action)
    return parse_duration(ttl) if ttl else None


def record_id(incident: str, step: int, action: Action) -> str:
    return f"{incident}/{step}/{action.value}"


def recent(
    ledger: Sequence[RemediationLedgerEntry], now: dt.datetime, window: dt.timedelta
) -> list[RemediationLedgerEntry]:
    return [e for e in ledger if now - e.at < window]


# ---------------------------------------------------------------------------- applicability
def _unhealthy_targets(snapshot: Snapshot) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if snapshot.upstreams is None or not snapshot.upstreams.available:
        return out
    for t in snapshot.upstreams.targets:
        if t.status == TargetStatus.UNHEALTHY:
            out.setdefault(t.upstream, []).append(t.address)
    return out


def _eject_plan(ctx: Context) -> tuple[dict[str, list[str]], str | None]:
    """Targets to take out per upstream, or why not (the quorum guard)."""
    share = ctx.policy.remediation.actions.eject_targets.min_remaining_share
    plan: dict[str, list[str]] = {}
    refusals: list[str] = []
    upstreams = ctx.snapshot.upstreams
    assert upstreams is not None
    for upstream, bad in sorted(_unhealthy_targets(ctx.snapshot).items()):
        total = len(upstreams.targets_of(upstream))
        remaining = total - len(bad)
        if total == 0 or remaining / total < share or remaining < 1:
            refusals.append(
                f"upstream {upstream}: ejecting {len(bad)} of {total} targets would leave {remaining} "
                f"({remaining / total:.0%} < minRemainingShare {share:.0%})"
            )
            continue
        plan[upstream] = sorted(bad)
    if not plan and refusals:
        return {}, "quorum guard: " + "; ".join(refusals)
    return plan, None


def _routes_for_rate_limit(finding: Finding, snapshot: Snapshot) -> list[str]:
    if finding.subjects:
        routes = [s for s in finding.subjects if not s.startswith("(")]
        if routes:
            return sorted(set(routes))
    m = snapshot.metrics
    if m is None:
        return []
    return sorted({r.route for r in m.routes if not r.route.startswith("(") and r.requests > 0})


def _oom(snapshot: Snapshot) -> bool:
    return any(snapshot.oom_killed(p) for p in snapshot.pods)


def _certs_to_rotate(ctx: Context, finding: Finding) -> list[str]:
    names = set(finding.subjects) or {c.name for c in ctx.snapshot.certificates}
    rotatable = []
    for ref in ctx.zentinel.spec.tls:
        if ref.name in names and ref.issuer.type != IssuerType.EXTERNAL:
            rotatable.append(ref.name)
    return sorted(rotatable)


def applicable(action: Action, finding: Finding, ctx: Context) -> tuple[bool, dict[str, object], str]:
    """(applies, parameters, why not). A step that does not apply is skipped, not failed."""
    zen = ctx.zentinel
    snap = ctx.snapshot
    if action == Action.PAGE:
        return True, {}, ""
    if action == Action.CONFIG_ROLLBACK:
        cfg = snap.config
        caused = finding.config_caused or finding.category == Category.CONFIG_ERROR
        if not caused:
            return False, {}, "the trouble does not follow a config change"
        if cfg is not None and not cfg.present:
            return False, {}, "the ConfigMap is missing; nothing to roll back"
        return True, {"target": zen.status.last_known_good_revision, "current": cfg.revision if cfg else None}, ""
    if action == Action.MEMORY_LIMIT:
        if not _oom(snap):
            return False, {}, "no container was OOMKilled"
        if snap.workload.memory_limit_bytes is None:
            return False, {}, "the container has no memory limit to raise"
        return True, {"current": snap.workload.memory_limit_bytes}, ""
    if action == Action.RESTART:
        if not snap.workload.exists:
            return False, {}, "the Deployment does not exist"
        return True, {}, ""
    if action == Action.EJECT_TARGETS:
        if not _unhealthy_targets(snap):
            return False, {}, "no target is reported unhealthy"
        return True, {}, ""
    if action == Action.RATE_LIMIT:
        routes = _routes_for_rate_limit(finding, snap)
        if not routes:
            return False, {}, "no route to limit"
        return True, {"routes": routes}, ""
    if action == Action.CONNECTION_LIMITS:
        return (snap.config is not None and snap.config.present and snap.config.valid), {}, "the config is not valid"
    if action == Action.CERTIFICATE_ROTATION:
        certs = _certs_to_rotate(ctx, finding)
        if not certs:
            return False, {}, "every affected certificate is issued externally (issuer.type External)"
        return True, {"certificates": certs}, ""
    raise AssertionError(action)


# -------------------------------------------------------------------------------- guardrails
def guardrail(
    action: Action, ctx: Context, params: dict[str, object], incident: str | None = None
) -> tuple[str | None, str]:
    """(refusal kind or None, reason). Kinds: 'refuse' (escalate now), 'skip' (next step), 'wait'."""
    if action == Action.PAGE:
        return None, ""
    policy = ctx.policy
    r = policy.remediation
    zen = ctx.zentinel
    if ctx.silenced:
        # Maintenance: nothing new starts; the ladder waits on this rung and goes on once the silence ends.
        return "wait", ctx.silenced
    if zen.spec.paused:
        return "refuse", "the Zentinel is paused (spec.paused)"
    window = parse_duration(r.budget.window)
    mine = recent(zen.status.remediations, ctx.now, window)
    if len(mine) >= r.budget.per_zentinel:
        return "refuse", f"budget exhausted: {len(mine)} actions on this Zentinel in the last {r.budget.window}"
    if ctx.cluster_recent >= r.budget.per_cluster:
        return "refuse", f"cluster budget exhausted: {ctx.cluster_recent} actions in the last {r.budget.window}"
    if mine:
        last = max(e.at for e in mine)
        cooldown = parse_duration(r.cooldown)
        if ctx.now - last < cooldown:
            until = last + cooldown
            return "wait", f"cooldown until {until.isoformat()} ({format_duration(until - ctx.now)} left)"
    # One remedy at a time: while another incident's step of the same action is being carried out or
    # verified, this one waits (a cooldown shorter than that let two incidents rotate one certificate).
    holder = ctx.in_flight.get(action.value)
    if holder is not None and holder != incident:
        return "wait", f"{action.value} for {holder} is still in flight; waiting for its verification"
    verify_window = parse_duration(r.verify_timeout)
    hold = parse_duration(r.hold_off_after_change)
    config_caused_rollback = action == Action.CONFIG_ROLLBACK
    if not config_caused_rollback:
        last_ours = max((e.at for e in mine), default=None)
        ours_recently = last_ours is not None and ctx.now - last_ours < verify_window
        if ctx.snapshot.workload.rolling_out and not ours_recently:
            return "wait", "the Deployment is rolling out; holding off"
        cfg = ctx.snapshot.config
        if (
            cfg is not None
            and cfg.changed_at is not None
            and not ctx.config_changed_by_operator
            and ctx.now - cfg.changed_at < hold
        ):
            return "wait", f"someone changed the config {format_duration(ctx.now - cfg.changed_at)} ago; holding off"
    if action == Action.CONFIG_ROLLBACK:
        target = params.get("target")
        current = params.get("current")
        if not target:
            return "refuse", "no revision has been proven good yet; never rolling back to an unproven config"
        if target == current:
            return "refuse", f"the current revision {current} is the last known good; nothing to roll back to"
        if not ctx.config_text_valid.get(str(target), False):
            return "refuse", f"the saved copy of revision {target} is missing or does not validate"
    if action == Action.EJECT_TARGETS:
        _, why = _eject_plan(ctx)
        if why:
            return "skip", why
    if action == Action.MEMORY_LIMIT and int(str(params["current"])) >= _memory_target(ctx, params):
        return "skip", f"the memory limit is already at the cap ({r.actions.memory_limit.cap})"
    params.update(_derived_params(action, ctx, params))
    return None, ""


def _memory_target(ctx: Context, params: dict[str, object]) -> int:
    m = ctx.policy.remediation.actions.memory_limit
    current = int(str(params["current"]))
    cap = parse_quantity(m.cap) or current
    return min(int(current * m.factor), cap)


def _derived_params(action: Action, ctx: Context, params: dict[str, object]) -> dict[str, object]:
    """What the executor needs beyond applicability: the targets to eject, the new memory limit."""
    if action == Action.EJECT_TARGETS:
        plan, _ = _eject_plan(ctx)
        return {"targets": plan}
    if action == Action.MEMORY_LIMIT and "current" in params:
        return {"new": _memory_target(ctx, params)}
    return {}


# ----------------------------------------------------------------------------------- planner
def approvals(obj: ZentinelIncident) -> dict[str, Approval]:
    """Action id -> the decision on it: ``spec.approvals`` (the first decision on an id counts), or the
    ``approved-by`` annotation for the last pending one."""
    result: dict[str, Approval] = {}
    for a in obj.spec.approvals:
        result.setdefault(a.action_id, a)
    who = obj.metadata.annotations.get(ANN_APPROVED_BY)
    pending = [r for r in obj.status.remediations if r.state == PENDING_APPROVAL]
    if who and pending:
        result.setdefault(pending[-1].id, Approval(action_id=pending[-1].id, by=who))
    return result


def in_flight(records_by_incident: Mapping[str, Sequence[RemediationRecord]]) -> dict[str, str]:
    """action -> the incident with a step of it Running or Verifying (for :attr:`Context.in_flight`)."""
    return {
        r.action: name for name, records in sorted(records_by_incident.items()) for r in records if r.state in IN_FLIGHT
    }


def _last(records: Sequence[RemediationRecord]) -> RemediationRecord | None:
    return records[-1] if records else None


def plan(incident_name: str, records: Sequence[RemediationRecord], finding: Finding | None, ctx: Context) -> list[Step]:
    """What to do now for one open incident. Deterministic for the same inputs."""
    steps: list[Step] = []
    now = ctx.now
    verify_timeout = parse_duration(ctx.policy.remediation.verify_timeout)

    # Temporary changes whose time is up are undone first, whatever else happens.
    for rec in records:
        if rec.revert_at is not None and rec.state in (SUCCEEDED, VERIFYING, FAILED) and now >= rec.revert_at:
            steps.append(Step(StepKind.REVERT, Action(rec.action), rec, f"TTL reached ({rec.revert_at.isoformat()})"))

    last = _last(records)
    if last is not None and any(s.record is not None and s.record.id == last.id for s in steps):
        # Undone this pass: verifying the same record now would write its stale copy over the Reverted
        # one. The next pass plans from the Reverted record.
        return steps
    if last is not None and last.state == RUNNING:
        # Recorded, but the operator may have stopped before carrying it out: finish it. Guardrails
        # passed when it was recorded; the executor looks before it acts, so nothing happens twice.
        # A change already made is recognised first (by the executor); one not made and no longer
        # called for is not made now (applies=False).
        action = Action(last.action)
        params: dict[str, object] = {}
        if finding is not None and action != Action.PAGE:
            ok, params, why_not = applicable(action, finding, ctx)
            if not ok:
                why = f"no longer applies after a restart: {why_not}"
                steps.append(Step(StepKind.RESUME, action, last, why, {}, False))
                return steps
            params.update(_derived_params(action, ctx, params))
            _with_ttl(params, ctx.policy, action)
        steps.append(Step(StepKind.RESUME, action, last, "resumed after a restart", params))
        return steps
    if last is not None and last.state in IN_FLIGHT:
        steps.append(Step(StepKind.VERIFY, Action(last.action), last))
        return steps
    if last is not None and last.state == PENDING_APPROVAL:
        decided = ctx.approvals.get(last.id)
        if decided is None:
            return steps
        action = Action(last.action)
        if decided.decision == Decision.REJECT:
            # Not carried out; the ladder goes on to its next rung (the person may reject that too).
            why = f"rejected by {decided.by}" + (f": {decided.reason}" if decided.reason else "")
            rejected = last.model_copy(update={"rejected_by": decided.by})
            return steps + _refusal(action, rejected, "skip", why, now, records)
        # Approved: decide on today's facts (targets and guardrails may have changed while it waited).
        who = decided.by
        approved = last.model_copy(update={"approved_by": who, "started_at": now})
        if finding is None:
            return steps + _refusal(action, approved, "skip", "approved, but the signal is gone", now, records)
        ok, params, why_not = applicable(action, finding, ctx)
        kind, reason = guardrail(action, ctx, params, incident_name) if ok else ("skip", why_not)
        if kind == "wait":
            return steps  # approved, but a cooldown or hold-off is on: it runs when that clears
        if kind is not None:
            return steps + _refusal(action, approved, kind, reason, now, records)
        _with_ttl(params, ctx.policy, action)
        steps.append(
            Step(StepKind.EXECUTE, action, approved.model_copy(update={"state": RUNNING}), f"approved by {who}", params)
        )
        return steps
    if finding is None:
        return steps  # signals are healthy: nothing new to try

    ladder = LADDERS.get(finding.category, ())
    if not ladder:
        return steps
    next_index = 0
    if last is not None:
        ended = last.finished_at or last.started_at or now
        if last.state == WAITING:
            next_index = last.step
        elif last.state in (DRY_RUN, SUCCEEDED, REVERTED) and now - ended < verify_timeout:
            return steps  # give the last step (or the dry run's would-be effect) its time
        elif last.state == REFUSED and last.action != Action.PAGE.value and (last.reason or "").startswith("skip:"):
            next_index = last.step + 1
        elif last.state == REFUSED:
            return steps  # refusals escalate once; people take it from there
        else:
            next_index = last.step + 1
        if last.action == Action.PAGE.value and last.state in (SUCCEEDED, REFUSED):
            return steps  # the ladder ended with a page
    for index in range(next_index, len(ladder)):
        action = ladder[index]
        ok, params, _why_not = applicable(action, finding, ctx)
        if not ok:
            continue
        rid = record_id(incident_name, index, action)
        kind, reason = guardrail(action, ctx, params, incident_name)
        base = RemediationRecord(
            id=rid,
            action=action.value,
            mode=mode_for(ctx.policy, action).value,
            state=PLANNED,
            step=index,
            target=_target_text(action, params),
            config=_config_change(action, params),
            reason=None,
            started_at=now,
        )
        if kind == "wait":
            if last is not None and last.id == rid and last.state == WAITING and last.reason == reason:
                return steps
            steps.append(Step(StepKind.RECORD, action, base.model_copy(update={"state": WAITING, "reason": reason})))
            return steps
        if kind == "skip":
            steps += _refusal(action, base, kind, reason, now, records)
            continue
        if kind == "refuse":
            return steps + _refusal(action, base, kind, reason, now, records)
        if action == Action.PAGE:
            grounds = ran_without_recovery(records)
            if not grounds:
                # Dry runs, refusals and actions that could not be carried out page nobody by themselves.
                why = not_escalated_reason(records)
                closing: dict[str, object] = {"state": REFUSED, "finished_at": now, "reason": why}
                steps.append(Step(StepKind.RECORD, action, base.model_copy(update=closing)))
                return steps
            steps.append(
                Step(
                    StepKind.ESCALATE,
                    action,
                    base.model_copy(update={"state": SUCCEEDED, "finished_at": now, "reason": "ladder exhausted"}),
                    escalation_message(grounds),
                )
            )
            return steps
        mode = mode_for(ctx.policy, action)
        if mode == RemediationMode.OFF:
            continue
        rec = base.model_copy(update={"revert_at": None})
        if mode == RemediationMode.DRY_RUN:
            steps.append(Step(StepKind.EXECUTE, action, rec.model_copy(update={"state": DRY_RUN}), "dry run", params))
            return steps
        if mode == RemediationMode.NEEDS_APPROVAL:
            steps.append(
                Step(
                    StepKind.RECORD,
                    action,
                    rec.model_copy(update={"state": PENDING_APPROVAL, "reason": "needs approval"}),
                    params=params,
                )
            )
            return steps
        _with_ttl(params, ctx.policy, action)
        steps.append(Step(StepKind.EXECUTE, action, rec.model_copy(update={"state": RUNNING}), "automatic", params))
        return steps
    return steps


def _refusal(
    action: Action,
    rec: RemediationRecord,
    kind: str,
    reason: str,
    now: dt.datetime,
    records: Sequence[RemediationRecord],
) -> list[Step]:
    """Record a refused step; 'skip' moves on to the next rung, 'refuse' ends the ladder.

    A refusal pages nobody by itself: it escalates past the primary only when an earlier real action
    ran and did not help (then there is nothing left to try); otherwise the response target decides.
    """
    text = f"skip: {reason}" if kind == "skip" else reason
    refused = rec.model_copy(update={"state": REFUSED, "reason": text, "finished_at": now})
    steps = [Step(StepKind.RECORD, action, refused)]
    grounds = ran_without_recovery(records)
    if kind == "refuse" and grounds:
        message = f"{action.value} refused: {reason}; {escalation_message(grounds)}"
        steps.append(Step(StepKind.ESCALATE, Action.PAGE, None, message))
    return steps


def failed_verification(rec: RemediationRecord) -> bool:
    """A real action (not a dry run, not refused, not a page) that was carried out and did not bring recovery."""
    if rec.state != FAILED or rec.action == Action.PAGE.value or rec.mode == RemediationMode.DRY_RUN.value:
        return False
    if rec.failed_in is not None:
        return rec.failed_in == FAILED_IN_VERIFICATION
    # Written before failed_in existed: verification's own words say so.
    reason = rec.reason or ""
    return reason.endswith((NOT_RECOVERED_IN_PLACE, NOT_RECOVERED_NOT_IN_PLACE))


def ran_without_recovery(records: Sequence[RemediationRecord]) -> list[RemediationRecord]:
    """The grounds for escalating past the primary before the response target (empty: there are none)."""
    return [r for r in records if failed_verification(r)]


def escalation_message(grounds: Sequence[RemediationRecord]) -> str:
    actions = ", ".join(dict.fromkeys(r.action for r in grounds))
    return f"remediation did not recover: {actions} ran and verification showed no recovery"


def not_escalated_reason(records: Sequence[RemediationRecord]) -> str:
    """Why the end of the ladder pages nobody new: what was tried instead of a real, verified action."""
    tried: dict[str, list[str]] = {}
    for r in records:
        if r.action == Action.PAGE.value:
            continue
        label = "dry run" if r.state == DRY_RUN or r.mode == RemediationMode.DRY_RUN.value else r.state.lower()
        tried.setdefault(label, []).append(r.action)
    what = "; ".join(f"{k}: {', '.join(dict.fromkeys(v))}" for k, v in tried.items()) or "no step applied"
    return (
        f"ladder ended without escalation: no real action ran and failed its verification ({what}); "
        "the primary was paged at detection, the secondary is paged at the response target"
    )


def verify_failure_reason(rec: RemediationRecord, *, in_place: bool, live_gap: str | None = None) -> str:
    """A Failed verification's reason: the record's own reason, then why it did not help (with what the
    pods' ``/admin/config`` showed instead, when the change never reached the live processes)."""
    why = NOT_RECOVERED_IN_PLACE if in_place else NOT_RECOVERED_NOT_IN_PLACE
    if live_gap and not in_place:
        why = f"not live on the pods ({live_gap}); {why}"
    return f"{rec.reason}; {why}" if rec.reason else why


def _with_ttl(params: dict[str, object], policy: ZentinelIncidentPolicySpec, action: Action) -> None:
    """Temporary actions carry their TTL to the executor, which sets the record's revert time."""
    ttl = ttl_for(policy, action)
    if ttl is not None:
        params["ttl_seconds"] = ttl.total_seconds()


def _target_text(action: Action, params: dict[str, object]) -> str | None:
    if action == Action.CONFIG_ROLLBACK:
        return f"revision {params.get('current')} -> {params.get('target')}"  # for a person; the data is in `config`
    if action == Action.RATE_LIMIT:
        return "routes " + ", ".join(str(r) for r in params.get("routes", []))  # type: ignore[attr-defined]
    if action == Action.CERTIFICATE_ROTATION:
        return "certificates " + ", ".join(str(c) for c in params.get("certificates", []))  # type: ignore[attr-defined]
    return None


def _config_change(action: Action, params: dict[str, object]) -> ConfigChange | None:
    """A rollback's revisions, on its record from the start: a restarted operator reads them back."""
    if action != Action.CONFIG_ROLLBACK or not params.get("target"):
        return None
    current = params.get("current")
    return ConfigChange(from_revision=str(current) if current else None, to_revision=str(params["target"]))


def restart_settle(policy: ZentinelIncidentPolicySpec) -> dt.timedelta:
    """How long the pods a restart left must stay Ready before it counts as done: ``min(10 s, verifyTimeout / 2)``,
    so a verification that fails still has half its time to see the pods stay up."""
    return min(dt.timedelta(seconds=10), parse_duration(policy.remediation.verify_timeout) / 2)


def verify_outcome(
    record: RemediationRecord,
    *,
    effect_in_place: bool,
    finding: Finding | None,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
    signals_at: dt.datetime | None = None,
) -> str:
    """The state a Running/Verifying record moves to: Verifying, Succeeded or Failed.

    ``signals_at``: when the pods' endpoint signals behind the verdict were read (default ``now``). Failure
    needs signals read after the verify timeout: an event pass, which reuses the last scan's metrics and live
    configs, never fails a step on signals from before the step could have worked."""
    started = record.started_at or now
    timeout = parse_duration(policy.remediation.verify_timeout)
    if effect_in_place and finding is None:
        return SUCCEEDED
    if min(signals_at or now, now) - started >= timeout:
        return FAILED
    return VERIFYING
