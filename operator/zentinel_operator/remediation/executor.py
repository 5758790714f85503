"""Carry out remediation steps (the I/O half of "respond"), each idempotent and verifiable.

Synchronous: the pass runs these in a worker thread. Every function returns the updated record;
the caller writes it to the incident's status. Each action can be run again after a crash without
doing anything twice: config writes compare content first, restarts carry the record id, pod
deletions are pinned to the pods' UIDs, certificate writes check what the Secret already holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from .. import k8s
from ..core import liveconfig, zconfig
from ..core.certs import fingerprint_sha256, read_tls_secret
from ..core.remediation import (
    CONFIG_ACTIONS,
    DRY_RUN,
    FAILED,
    FAILED_IN_ACTION,
    FAILED_IN_REVERT,
    REVERTED,
    VERIFYING,
    Action,
    Step,
    restart_settle,
)
from ..models.incident import CertificateChange, ConfigChange, RemediationRecord
from ..models.zentinel import IssuerType
from ..names import ANN_RESTART, ANN_TLS
from ..signals import pods as pod_signals
from . import certificates, config_store, workload
from .config_store import read_config, revision_text, save_revision, write_config
from .context import ActionError, ExecContext

log = logging.getLogger(__name__)


__all__ = ["ActionError", "ExecContext", "revision_text", "save_revision"]


def _dry_run(rec: RemediationRecord, *, diff: str, before: str, after: str, now: dt.datetime) -> RemediationRecord:
    """A config change worked out in full (its diff and revisions) and not written."""
    reason = "dry run: nothing changed"
    return rec.model_copy(update={"diff": diff, "before": before, "after": after, "finished_at": now, "reason": reason})


def failure_reason(e: BaseException) -> str:
    """Why an action could not be carried out, for its record and event: never a secret value."""
    if isinstance(e, ActionError | zconfig.ConfigEditError):
        return str(e)[:1000]
    if isinstance(e, ApiException):
        return k8s.describe_error(e)
    if isinstance(e, urllib3.exceptions.HTTPError):
        return f"the API server could not be reached ({type(e).__name__})"
    return f"unexpected error ({type(e).__name__})"


def failed(rec: RemediationRecord, e: BaseException, *, now: dt.datetime, stage: str) -> RemediationRecord:
    """``rec`` as a terminal Failed record (the ladder moves on; nothing retries it every pass)."""
    reason = failure_reason(e)
    if isinstance(e, ActionError | zconfig.ConfigEditError | ApiException | urllib3.exceptions.HTTPError):
        log.warning("remediation %s failed: %s", rec.id, reason)
    else:  # a bug: keep the traceback (exception messages here carry names, never secret values)
        log.error("remediation %s failed: %s", rec.id, reason, exc_info=e)
    return rec.model_copy(update={"state": FAILED, "reason": reason, "finished_at": now, "failed_in": stage})


def execute(step: Step, ctx: ExecContext) -> RemediationRecord:
    """Run (or dry-run) ``step``; the returned record is Verifying, DryRun or Failed, never an exception.

    An API error (the Deployment is gone, a conflict, an invalid patch) fails this step with its reason;
    what was learned before it (diff, revisions) is kept on the record, since part of a change may be made.
    """
    assert step.record is not None
    progress: dict[str, Any] = {}
    try:
        return _execute(step, ctx, progress)
    except Exception as e:
        return failed(step.record.model_copy(update=progress), e, now=ctx.now, stage=FAILED_IN_ACTION)


def _execute(step: Step, ctx: ExecContext, progress: dict[str, Any]) -> RemediationRecord:
    assert step.record is not None and step.action is not None
    return _ACTIONS[step.action](step, step.record, ctx, progress)


def _config_rollback(
    step: Step, rec: RemediationRecord, ctx: ExecContext, progress: dict[str, Any]
) -> RemediationRecord:
    target = str(step.params["target"])
    good = revision_text(ctx.api, ctx.zen, target)
    if good is None:
        raise ActionError(f"the saved copy of revision {target} is gone")
    current, _ = read_config(ctx.api, ctx.zen)
    diff = zconfig.unified_diff(current, good, ctx.zen.spec.config.key)
    before = zconfig.config_revision(current)
    if rec.state == DRY_RUN:
        return _dry_run(rec, diff=diff, before=before, after=target, now=ctx.now)
    change = ConfigChange(from_revision=before, to_revision=target)
    progress.update(diff=diff, before=before, after=target, config=change)
    save_revision(ctx.api, ctx.zen, before, current)  # the bad revision stays retrievable
    _, after, how = write_config(ctx.api, ctx.zen, good, rec.id)
    reason = f"rolled back to last known good; delivered by {how}{workload.restart_crash_looping(ctx)}"
    change = ConfigChange(from_revision=before, to_revision=after)
    return rec.model_copy(update={**progress, "state": VERIFYING, "after": after, "config": change, "reason": reason})


def _config_edit(step: Step, rec: RemediationRecord, ctx: ExecContext, progress: dict[str, Any]) -> RemediationRecord:
    """Eject targets, rate-limit routes, set connection limits: a temporary KDL edit with its undo."""
    assert step.action is not None
    current, _ = read_config(ctx.api, ctx.zen)
    new, diff, undos = config_store.edit_text(step.action, current, step, ctx)
    before = zconfig.config_revision(current)
    after = zconfig.config_revision(new)
    ttl = float(str(step.params.get("ttl_seconds", 0) or 0))
    revert_at = ctx.now + dt.timedelta(seconds=ttl) if ttl else None
    if rec.state == DRY_RUN:
        return _dry_run(rec, diff=diff, before=before, after=after, now=ctx.now)
    progress.update(diff=diff, before=before, after=after, undo={"edits": undos}, revert_at=revert_at)
    _, after, how = write_config(ctx.api, ctx.zen, new, rec.id)
    reason = f"temporary change, delivered by {how}"
    change = ConfigChange(from_revision=before, to_revision=after)
    return rec.model_copy(update={**progress, "state": VERIFYING, "after": after, "config": change, "reason": reason})


def _carried_out(rec: RemediationRecord, ctx: ExecContext, **fields: Any) -> RemediationRecord:
    """A workload or certificate action's record: Verifying, or finished as a dry run."""
    dry = rec.state == DRY_RUN
    return rec.model_copy(
        update={"state": DRY_RUN if dry else VERIFYING, "finished_at": ctx.now if dry else None, **fields}
    )


def _restart(step: Step, rec: RemediationRecord, ctx: ExecContext, progress: dict[str, Any]) -> RemediationRecord:
    dry = rec.state == DRY_RUN
    target, before, after, deleted = workload.restart(step, ctx, dry)
    return _carried_out(
        rec,
        ctx,
        target=target,
        before=before,
        after=after,
        deleted_pods=None if dry else deleted,
        diff=f"would {after}" if dry else None,
    )


def _memory(step: Step, rec: RemediationRecord, ctx: ExecContext, progress: dict[str, Any]) -> RemediationRecord:
    before, after = workload.memory(step, ctx, rec.state == DRY_RUN)
    return _carried_out(rec, ctx, before=before, after=after, diff=f"resources.limits.memory: {before} -> {after}")


def _rotation(step: Step, rec: RemediationRecord, ctx: ExecContext, progress: dict[str, Any]) -> RemediationRecord:
    dry = rec.state == DRY_RUN
    before, after, changes = certificates.rotate(step, ctx, dry)
    return _carried_out(
        rec,
        ctx,
        before=before,
        after=after,
        diff=f"would install a new certificate ({after})" if dry else None,
        certificates=None if dry else changes,
    )


# One carrier per action the planner can ask to run (a page is the notifier's, not an action here).
_ACTIONS: dict[Action, Callable[[Step, RemediationRecord, ExecContext, dict[str, Any]], RemediationRecord]] = {
    Action.CONFIG_ROLLBACK: _config_rollback,
    Action.EJECT_TARGETS: _config_edit,
    Action.RATE_LIMIT: _config_edit,
    Action.CONNECTION_LIMITS: _config_edit,
    Action.RESTART: _restart,
    Action.MEMORY_LIMIT: _memory,
    Action.CERTIFICATE_ROTATION: _rotation,
}


def already_done(rec: RemediationRecord, ctx: ExecContext) -> dict[str, Any] | None:
    """For a record left Running by a stopped operator: is the change it names already made?

    Returns the record fields to set when it is, else None. A certificate rotation must not run twice
    (it makes a new key each time); a config rollback or a rolling restart that already happened is
    recognised so that it is verified even when the signal is gone by now. A rollback whose content is
    back but whose delivery was not made yet (the operator stopped between the ConfigMap write and the
    Deployment patch) is delivered here, not run again: a second run would record the good revision as
    "before" with an empty diff, or be refused once the crash no longer follows a config change, and the
    pods would never load the good config. Other actions are idempotent and simply run again.
    """
    action = Action(rec.action)
    if action == Action.CONFIG_ROLLBACK and rec.config is not None:
        source, target = rec.config.from_revision, rec.config.to_revision
        try:
            current, _ = read_config(ctx.api, ctx.zen)
        except ActionError:
            return None
        if zconfig.config_revision(current) != target:
            return None
        # Made again when it was made already: the same annotations, so no second rollout.
        how = config_store.deliver(ctx.api, ctx.zen, target, rec.id)
        return {
            "before": source,
            "after": target,
            "reason": f"rolled back to last known good (before a restart); delivered by {how}",
        }
    if action == Action.RESTART and ctx.deployment is not None:
        if pod_signals.template_annotations(ctx.deployment).get(ANN_RESTART) == rec.id:
            return {"after": "rolling restart (before a restart of the operator)"}
        return None
    if action != Action.CERTIFICATE_ROTATION or rec.started_at is None:
        return None
    from cryptography import x509

    rotated: dict[str, CertificateChange] = {}
    for ref in ctx.zen.spec.tls:
        if rec.target and ref.name not in rec.target:
            continue
        secret = ctx.api.get_secret(ctx.zen.metadata.namespace, ref.secret_name)
        leaf = read_tls_secret(dict((secret or {}).get("data") or {})).cert_pem
        if leaf is None:
            return None
        try:
            not_before = x509.load_pem_x509_certificate(leaf).not_valid_before_utc
        except ValueError:
            return None
        if not_before < rec.started_at - dt.timedelta(minutes=6):  # issued before this record: not ours
            return None
        rotated[ref.name] = CertificateChange(
            name=ref.name, issuer=ref.issuer.type, fingerprint=fingerprint_sha256(leaf)
        )
    if not rotated:
        return None
    return {
        "after": "; ".join(f"{k}: {(c.fingerprint or '')[:16]}" for k, c in sorted(rotated.items())),
        "certificates": [rotated[k] for k in sorted(rotated)],
    }


def effect_in_place(rec: RemediationRecord, ctx: ExecContext) -> bool:
    """Whether the change a record describes is really in place (read back, not assumed)."""
    action = Action(rec.action)
    if action in CONFIG_ACTIONS:
        revision = rec.config.to_revision if rec.config else None
        return config_store.config_in_place(ctx.api, ctx.zen, ctx.deployment, revision) and live_gap(rec, ctx) is None
    if action in (Action.RESTART, Action.MEMORY_LIMIT):
        if rec.deleted_pods:
            gone = set(rec.deleted_pods)
            live = [p for p in ctx.snapshot.pods if not p.deleting]
            settle = restart_settle(ctx.policy)
            return not (gone & {p.name for p in live}) and bool(live) and all(p.settled(ctx.now, settle) for p in live)
        return workload.rollout_complete(ctx.deployment, lambda ann: ann.get(ANN_RESTART) == rec.id)
    if action == Action.CERTIFICATE_ROTATION:
        return rotation_in_place(rec, ctx)
    return False


def rotation_in_place(rec: RemediationRecord, ctx: ExecContext) -> bool:
    """A rotation is in place when the Secrets hold what it installed, the rolling restart that loads them
    has finished, and every pod that answered a handshake on a certificate's TLS port served the new one.

    The handshake's answer must be about the new certificate (``served_matches`` True): an event pass
    right after the Secret was written has no handshake with it yet (None), and the old pods still serve
    the old one, so that is not in place. A certificate without a TLS port cannot be probed: the finished
    rollout is the proof. A cert-manager re-issue has no fingerprint: the request is what is in place."""
    changes = rec.certificates or []
    installed = {c.name: c.fingerprint for c in changes if c.fingerprint}
    if not installed:
        return any(c.issuer == IssuerType.CERT_MANAGER for c in changes)
    probed = {t.name for t in ctx.zen.spec.tls if t.port is not None}
    seen = {c.name: c for c in ctx.snapshot.certificates}
    for name, fingerprint in installed.items():
        cert = seen.get(name)
        if cert is None or cert.fingerprint != fingerprint:
            return False
        if cert.served_matches is False or (name in probed and cert.served_matches is not True):
            return False
    want = certificates.rolled_for(installed)
    return workload.rollout_complete(ctx.deployment, lambda ann: ann.get(ANN_TLS) == want)


def live_gap(rec: RemediationRecord, ctx: ExecContext) -> str | None:
    """Why a config change is not yet running on every pod (None: it is, or the Zentinel opted out).

    Read from each running pod's ``/admin/config`` in this pass's snapshot, against the config in the
    ConfigMap (which :func:`config_in_place` has checked is the record's revision).
    """
    if Action(rec.action) not in CONFIG_ACTIONS or not ctx.zen.spec.config.verify_live:
        return None
    try:
        text, _ = read_config(ctx.api, ctx.zen)
    except ActionError as e:
        return str(e)
    pods = [p.name for p in ctx.snapshot.pods if p.process_running and not p.deleting]
    return liveconfig.live_gap(zconfig.check_config(text), ctx.snapshot.live_configs, pods)


def revert(rec: RemediationRecord, ctx: ExecContext) -> RemediationRecord:
    """Undo a temporary config edit (anchored on the KDL, so other edits since then are kept)."""
    edits = list(((rec.undo or {}).get("edits")) or [])
    try:
        current, _ = read_config(ctx.api, ctx.zen)
        new = current
        for raw in reversed(edits):
            new = zconfig.revert(new, zconfig.UndoRecord.from_dict(raw), name=ctx.zen.spec.config.key).text
        diff = zconfig.unified_diff(current, new, ctx.zen.spec.config.key)
        if new != current:
            write_config(ctx.api, ctx.zen, new, rec.id + "/revert")
    except Exception as e:  # an API error as much as an edit that no longer applies: terminal, not retried each pass
        out = failed(rec, e, now=ctx.now, stage=FAILED_IN_REVERT)
        return out.model_copy(update={"reason": f"revert failed: {(out.reason or '')[:500]}", "revert_at": None})
    return rec.model_copy(
        update={
            "state": REVERTED,
            "finished_at": ctx.now,
            "revert_at": None,
            "reason": f"TTL reached: undone ({diff.count(chr(10))} diff lines)",
        }
    )
