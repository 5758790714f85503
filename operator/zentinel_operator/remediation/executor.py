"""Carry out remediation steps (the I/O half of "respond"), each idempotent and verifiable.

Synchronous: the pass runs these in a worker thread. Every function returns the updated record;
the caller writes it to the incident's status. Each action can be run again after a crash without
doing anything twice: config writes compare content first, restarts carry the record id, pod
deletions are pinned to the pods' UIDs, certificate writes check what the Secret already holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from .. import k8s
from ..core import liveconfig, zconfig
from ..core.certs import (
    fingerprint_sha256,
    issue_from_ca,
    key_type_of,
    read_tls_secret,
    self_signed,
    tls_secret_data,
    verify_pair,
)
from ..core.quantity import format_memory
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
)
from ..core.revisions import snapshot_name
from ..core.snapshot import Snapshot
from ..models.incident import CertificateChange, ConfigChange, RemediationRecord
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import IssuerType, ReloadMode, TLSRef, Zentinel
from ..names import (
    ANN_CONFIG_REVISION,
    ANN_RESTART,
    ANN_TLS,
    ANN_WRITTEN_BY_OPERATOR,
    API_VERSION,
    KIND_ZENTINEL,
    LABEL_REVISION,
    LABEL_ZENTINEL,
)
from ..signals import pods as pod_signals

log = logging.getLogger(__name__)


class ActionError(RuntimeError):
    """The action could not be carried out; the message says why (never with secret values)."""


@dataclasses.dataclass
class ExecContext:
    zen: Zentinel
    deployment: dict[str, Any] | None
    snapshot: Snapshot
    policy: ZentinelIncidentPolicySpec
    now: dt.datetime


# ----------------------------------------------------------------------------- config
def read_config(zen: Zentinel) -> tuple[str, dict[str, Any]]:
    cm = k8s.get_configmap(zen.metadata.namespace, zen.spec.config.config_map_name)
    if cm is None:
        raise ActionError(f"ConfigMap {zen.spec.config.config_map_name} does not exist")
    text = (cm.get("data") or {}).get(zen.spec.config.key)
    if text is None:
        raise ActionError(f"ConfigMap {zen.spec.config.config_map_name} has no key {zen.spec.config.key}")
    return str(text), cm


def save_revision(zen: Zentinel, revision: str, text: str) -> None:
    """Keep an immutable copy of one config revision, owned by the Zentinel (create-or-409)."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot_name(zen.metadata.name, revision),
            "namespace": zen.metadata.namespace,
            "labels": {
                LABEL_ZENTINEL: zen.metadata.name,
                LABEL_REVISION: revision,
                "app.kubernetes.io/managed-by": "zentinel-incident-operator",
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND_ZENTINEL,
                    "name": zen.metadata.name,
                    "uid": zen.metadata.uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ]
            if zen.metadata.uid
            else [],
        },
        "immutable": True,
        "data": {zen.spec.config.key: text},
    }
    k8s.create_configmap(zen.metadata.namespace, body)


def revision_text(zen: Zentinel, revision: str) -> str | None:
    cm = k8s.get_configmap(zen.metadata.namespace, snapshot_name(zen.metadata.name, revision))
    text = ((cm or {}).get("data") or {}).get(zen.spec.config.key)
    return None if text is None else str(text)


def _deliver(zen: Zentinel, revision: str, record_id: str) -> str:
    """Make the running pods pick up the new config, per the Zentinel's reload mode."""
    if zen.spec.config.reload_mode == ReloadMode.AUTO_RELOAD:
        return "auto-reload (Zentinel polls the file)"
    k8s.patch_deployment(
        zen.metadata.namespace,
        zen.spec.workload.name,
        {"spec": {"template": {"metadata": {"annotations": {ANN_CONFIG_REVISION: revision, ANN_RESTART: record_id}}}}},
    )
    return f"rolling restart of Deployment {zen.spec.workload.name}"


def write_config(zen: Zentinel, new_text: str, record_id: str) -> tuple[str, str, str]:
    """Write ``new_text`` (only if it validates) and deliver it; return (before rev, after rev, how)."""
    check = zconfig.check_config(new_text)
    if not check.valid:
        raise ActionError("refusing to write a config that does not validate: " + "; ".join(check.errors[:3]))
    current, _ = read_config(zen)
    before = zconfig.config_revision(current)
    after = check.revision
    if current != new_text:
        k8s.patch_configmap(
            zen.metadata.namespace,
            zen.spec.config.config_map_name,
            {
                "metadata": {"annotations": {ANN_WRITTEN_BY_OPERATOR: after}},
                "data": {zen.spec.config.key: new_text},
            },
        )
    how = _deliver(zen, after, record_id)
    return before, after, how


def config_in_place(zen: Zentinel, deployment: dict[str, Any] | None, revision: str | None) -> bool:
    """The ConfigMap holds ``revision`` and, with rolling restarts, the rollout for it completed."""
    if revision is None:
        return False
    try:
        text, _ = read_config(zen)
    except ActionError:
        return False
    if zconfig.config_revision(text) != revision:
        return False
    if zen.spec.config.reload_mode == ReloadMode.ROLLING_RESTART:
        return rollout_complete(deployment, lambda ann: ann.get(ANN_CONFIG_REVISION) == revision)
    return True


def rollout_complete(deployment: dict[str, Any] | None, template_ok: Any = None) -> bool:
    """The Deployment's rollout finished (:attr:`WorkloadSignal.rollout_complete`), for a pod template
    ``template_ok`` accepts by its annotations."""
    if deployment is None:
        return False
    ann = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
    if template_ok is not None and not template_ok(ann):
        return False
    return pod_signals.workload_signal(deployment, None).rollout_complete


# ---------------------------------------------------------------------------- actions
def _edit_text(action: Action, text: str, step: Step, ctx: ExecContext) -> tuple[str, str, list[dict[str, Any]]]:
    """The new config text for a KDL edit, its diff, and the undo records."""
    a = ctx.policy.remediation.actions
    undos: list[dict[str, Any]] = []
    name = ctx.zen.spec.config.key
    new = text
    if action == Action.EJECT_TARGETS:
        targets: dict[str, list[str]] = step.params.get("targets", {})  # type: ignore[assignment]
        for upstream, addresses in sorted(targets.items()):
            res = zconfig.remove_targets(new, upstream, addresses, missing_ok=True, name=name)
            new = res.text
            if res.changed:
                undos.append(res.undo.to_dict())
    elif action == Action.RATE_LIMIT:
        routes = [str(r) for r in step.params.get("routes", [])]  # type: ignore[attr-defined]
        res = zconfig.enable_rate_limit(
            new, routes, requests_per_second=a.rate_limit.requests_per_second, burst=a.rate_limit.burst, name=name
        )
        new = res.text
        if res.changed:
            undos.append(res.undo.to_dict())
    elif action == Action.CONNECTION_LIMITS:
        res = zconfig.set_limits(
            new,
            max_total_connections=a.connection_limits.max_total_connections,
            max_connections_per_client=a.connection_limits.max_connections_per_client,
            name=name,
        )
        new = res.text
        if res.changed:
            undos.append(res.undo.to_dict())
    else:
        raise AssertionError(action)
    return new, zconfig.unified_diff(text, new, name), undos


def _pdb_allows(ctx: ExecContext) -> tuple[bool, str]:
    labels = ((ctx.deployment or {}).get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("labels") or {}
    for pdb in k8s.list_pdbs(ctx.zen.metadata.namespace):
        sel = (pdb.get("spec") or {}).get("selector") or {}
        match = sel.get("matchLabels") or {}
        if match and all(labels.get(k) == v for k, v in match.items()):
            allowed = int(((pdb.get("status") or {}).get("disruptionsAllowed")) or 0)
            if allowed < 1:
                return False, f"PodDisruptionBudget {pdb['metadata']['name']} allows no disruption now"
    return True, ""


def _delete_pods(ctx: ExecContext, names: list[str]) -> None:
    """Delete these pods of the workload, each by its uid (a pod replaced since the snapshot is left alone)."""
    if ctx.deployment is None:
        raise ActionError(f"Deployment {ctx.zen.spec.workload.name} not found")
    raw = {
        p["metadata"]["name"]: p["metadata"].get("uid")
        for p in k8s.list_pods(
            ctx.zen.metadata.namespace, k8s.label_selector_string(ctx.deployment["spec"]["selector"])
        )
    }
    for name in names:
        if name in raw:
            k8s.delete_pod(ctx.zen.metadata.namespace, name, raw[name])


def _restart_crash_looping(ctx: ExecContext) -> str:
    """After a rollback under AutoReload: pods crash-looping on the bad config poll no file. Deleting them
    lets their ReplicaSet start them on the restored one now, not after the kubelet's back-off (up to 5 min)."""
    if ctx.zen.spec.config.reload_mode != ReloadMode.AUTO_RELOAD:
        return ""
    down = [
        p.name for p in ctx.snapshot.pods if not p.deleting and p.container is not None and p.container.crash_looping
    ]
    if not down:
        return ""
    _delete_pods(ctx, down)
    return f"; restarted {len(down)} crash-looping pod(s) on it: {', '.join(down)}"


def _restart(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str, str, list[str] | None]:
    """Delete stuck pods (they serve nothing) or, when all are Ready, roll the Deployment.

    Returns (target, before, after, the pods deleted: None for a rolling restart)."""
    stuck = [p for p in ctx.snapshot.pods if not p.ready and not p.deleting]
    w = ctx.snapshot.workload
    if stuck:
        budget = max(1, w.max_unavailable) if w.desired > 1 else 1
        chosen = stuck[:budget] if len(stuck) < w.desired else stuck
        names = [p.name for p in chosen]
        if not dry:
            _delete_pods(ctx, names)
        return ("pods " + ", ".join(names), f"{len(stuck)} pod(s) not Ready", "deleted " + ", ".join(names), names)
    ok, why = _pdb_allows(ctx)
    if not ok:
        raise ActionError(why)
    if not dry:
        k8s.patch_deployment(
            ctx.zen.metadata.namespace,
            ctx.zen.spec.workload.name,
            {"spec": {"template": {"metadata": {"annotations": {ANN_RESTART: step.record.id if step.record else ""}}}}},
        )
    return (
        f"Deployment {ctx.zen.spec.workload.name}",
        f"{w.desired} pods",
        f"rolling restart (maxUnavailable {w.max_unavailable}, maxSurge {w.max_surge})",
        None,
    )


def _memory(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str]:
    new = int(str(step.params["new"]))
    cur = int(str(step.params["current"]))
    container = (
        ctx.zen.spec.workload.container or (ctx.deployment or {})["spec"]["template"]["spec"]["containers"][0]["name"]
    )
    if not dry:
        k8s.patch_deployment(
            ctx.zen.metadata.namespace,
            ctx.zen.spec.workload.name,
            {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {ANN_RESTART: step.record.id if step.record else ""}},
                        "spec": {
                            "containers": [{"name": container, "resources": {"limits": {"memory": format_memory(new)}}}]
                        },
                    }
                }
            },
        )
    return format_memory(cur), format_memory(new)


def _rotate_one(ref: TLSRef, ctx: ExecContext, dry: bool) -> tuple[str, CertificateChange]:
    """Re-issue one certificate; returns (the fingerprint before, what was issued)."""
    ns = ctx.zen.metadata.namespace
    secret = k8s.get_secret(ns, ref.secret_name)
    data = dict((secret or {}).get("data") or {})
    current = read_tls_secret(data)
    before = fingerprint_sha256(current.cert_pem) if current.cert_pem and not current.error else "none"
    if ref.issuer.type == IssuerType.CERT_MANAGER:
        # What `cmctl renew` does: set the Issuing condition; cert-manager re-issues.
        name = ref.issuer.certificate_name or ""
        if not dry:
            now = ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ")
            cert = k8s.get_other_custom("cert-manager.io", "v1", "certificates", ns, name)
            if cert is None:
                raise ActionError(f"cert-manager Certificate {name} does not exist")
            conds = [c for c in (cert.get("status") or {}).get("conditions") or [] if c.get("type") != "Issuing"]
            conds.append(
                {
                    "type": "Issuing",
                    "status": "True",
                    "reason": "ManuallyTriggered",
                    "message": "Certificate re-issuance requested by the Zentinel incident operator",
                    "lastTransitionTime": now,
                    "observedGeneration": cert["metadata"].get("generation"),
                }
            )
            k8s.patch_cluster_custom_status(
                "cert-manager.io", "v1", "certificates", ns, name, {"status": {"conditions": conds}}
            )
        return before, CertificateChange(name=ref.name, issuer=ref.issuer.type)
    template = current.cert_pem if current.cert_pem and not current.error else None
    validity = dt.timedelta(days=90)
    if ref.issuer.type == IssuerType.CA_SECRET:
        ca_secret = k8s.get_secret(ns, ref.issuer.ca_secret_name or "")
        ca = read_tls_secret(dict((ca_secret or {}).get("data") or {}))
        if ca.cert_pem is None or ca.key_pem is None:
            raise ActionError(f"CA Secret {ref.issuer.ca_secret_name} has no tls.crt and tls.key")
        issued = issue_from_ca(
            template_cert_pem=template,
            sans=[],
            common_name=None,
            ca_cert_pem=ca.cert_pem,
            ca_key_pem=ca.key_pem,
            now=ctx.now,
            validity=validity,
        )
        ca_pem: bytes | None = ca.cert_pem
    else:  # SelfSigned, for development
        if template is None:
            raise ActionError(f"Secret {ref.secret_name} holds no certificate to copy the SANs from")
        from ..core.certs import inspect_certificate

        info = inspect_certificate(
            name=ref.name, secret=ref.secret_name, cert_pem=template, key_pem=None, ca_pem=None, now=ctx.now
        )
        issued = self_signed(
            sans=list(info.sans), common_name=None, key_type=key_type_of(template), now=ctx.now, validity=validity
        )
        ca_pem = None
    expected = None
    if template is not None:
        from ..core.certs import inspect_certificate

        expected = list(
            inspect_certificate(
                name=ref.name, secret=ref.secret_name, cert_pem=template, key_pem=None, ca_pem=None, now=ctx.now
            ).sans
        )
    problems = verify_pair(
        issued.fullchain_pem,
        issued.key_pem,
        ca_pem if ca_pem else issued.chain_pem,
        now=ctx.now,
        expected_sans=expected,
    )
    if problems:
        raise ActionError("the new certificate failed verification, not installed: " + "; ".join(problems))
    after = CertificateChange(name=ref.name, issuer=ref.issuer.type, fingerprint=fingerprint_sha256(issued.cert_pem))
    if not dry:
        new_data = tls_secret_data(issued)
        if ca_pem is None:
            new_data.pop("ca.crt", None)
        k8s.replace_secret_data(
            ns, ref.secret_name, new_data, ((secret or {}).get("metadata") or {}).get("resourceVersion")
        )
    return before, after


def _rotate(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str, list[CertificateChange]]:
    names = [str(n) for n in step.params.get("certificates", [])]  # type: ignore[attr-defined]
    befores, afters = [], []
    changes: list[CertificateChange] = []
    for ref in ctx.zen.spec.tls:
        if ref.name not in names:
            continue
        before, change = _rotate_one(ref, ctx, dry)
        befores.append(f"{ref.name}: {before[:16]}")
        changes.append(change)
        if change.fingerprint is None:
            afters.append(f"{ref.name}: re-issue requested from cert-manager Certificate {ref.issuer.certificate_name}")
        else:
            afters.append(f"{ref.name}: {change.fingerprint[:16]}")
    installed = {c.name: c.fingerprint for c in changes if c.fingerprint}
    how = ""
    if installed and not dry:
        # Zentinel reloads certificates with a config reload; a rolling restart is the sure way.
        k8s.patch_deployment(
            ctx.zen.metadata.namespace,
            ctx.zen.spec.workload.name,
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                ANN_TLS: ",".join(f"{k}={v[:16]}" for k, v in sorted(installed.items())),
                                ANN_RESTART: step.record.id if step.record else "",
                            }
                        }
                    }
                }
            },
        )
        how = f"; rolling restart of Deployment {ctx.zen.spec.workload.name} to load it"
    return "; ".join(befores), "; ".join(afters) + how, changes


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
    rec = step.record
    dry = rec.state == DRY_RUN
    action = step.action
    now = ctx.now
    if action == Action.CONFIG_ROLLBACK:
        target = str(step.params["target"])
        good = revision_text(ctx.zen, target)
        if good is None:
            raise ActionError(f"the saved copy of revision {target} is gone")
        current, _ = read_config(ctx.zen)
        diff = zconfig.unified_diff(current, good, ctx.zen.spec.config.key)
        before = zconfig.config_revision(current)
        if dry:
            return _dry_run(rec, diff=diff, before=before, after=target, now=now)
        progress.update(
            diff=diff, before=before, after=target, config=ConfigChange(from_revision=before, to_revision=target)
        )
        save_revision(ctx.zen, before, current)  # the bad revision stays retrievable
        _, after, how = write_config(ctx.zen, good, rec.id)
        reason = f"rolled back to last known good; delivered by {how}{_restart_crash_looping(ctx)}"
        change = ConfigChange(from_revision=before, to_revision=after)
        return rec.model_copy(
            update={**progress, "state": VERIFYING, "after": after, "config": change, "reason": reason}
        )
    if action in (Action.EJECT_TARGETS, Action.RATE_LIMIT, Action.CONNECTION_LIMITS):
        current, _ = read_config(ctx.zen)
        new, diff, undos = _edit_text(action, current, step, ctx)
        before = zconfig.config_revision(current)
        after = zconfig.config_revision(new)
        ttl = float(str(step.params.get("ttl_seconds", 0) or 0))
        revert_at = now + dt.timedelta(seconds=ttl) if ttl else None
        if dry:
            return _dry_run(rec, diff=diff, before=before, after=after, now=now)
        progress.update(diff=diff, before=before, after=after, undo={"edits": undos}, revert_at=revert_at)
        _, after, how = write_config(ctx.zen, new, rec.id)
        reason = f"temporary change, delivered by {how}"
        change = ConfigChange(from_revision=before, to_revision=after)
        return rec.model_copy(
            update={**progress, "state": VERIFYING, "after": after, "config": change, "reason": reason}
        )
    if action == Action.RESTART:
        target, before, after, deleted = _restart(step, ctx, dry)
        return rec.model_copy(
            update={
                "state": DRY_RUN if dry else VERIFYING,
                "target": target,
                "before": before,
                "after": after,
                "deleted_pods": None if dry else deleted,
                "diff": f"would {after}" if dry else None,
                "finished_at": now if dry else None,
            }
        )
    if action == Action.MEMORY_LIMIT:
        before, after = _memory(step, ctx, dry)
        return rec.model_copy(
            update={
                "state": DRY_RUN if dry else VERIFYING,
                "before": before,
                "after": after,
                "diff": f"resources.limits.memory: {before} -> {after}",
                "finished_at": now if dry else None,
            }
        )
    if action == Action.CERTIFICATE_ROTATION:
        before, after, changes = _rotate(step, ctx, dry)
        return rec.model_copy(
            update={
                "state": DRY_RUN if dry else VERIFYING,
                "before": before,
                "after": after,
                "diff": f"would install a new certificate ({after})" if dry else None,
                "certificates": None if dry else changes,
                "finished_at": now if dry else None,
            }
        )
    raise AssertionError(action)


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
            current, _ = read_config(ctx.zen)
        except ActionError:
            return None
        if zconfig.config_revision(current) != target:
            return None
        # Made again when it was made already: the same annotations, so no second rollout.
        how = _deliver(ctx.zen, target, rec.id)
        return {
            "before": source,
            "after": target,
            "reason": f"rolled back to last known good (before a restart); delivered by {how}",
        }
    if action == Action.RESTART and ctx.deployment is not None:
        template = ((ctx.deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
        if (template.get("annotations") or {}).get(ANN_RESTART) == rec.id:
            return {"after": "rolling restart (before a restart of the operator)"}
        return None
    if action != Action.CERTIFICATE_ROTATION or rec.started_at is None:
        return None
    from cryptography import x509

    rotated: dict[str, CertificateChange] = {}
    for ref in ctx.zen.spec.tls:
        if rec.target and ref.name not in rec.target:
            continue
        secret = k8s.get_secret(ctx.zen.metadata.namespace, ref.secret_name)
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
        return config_in_place(ctx.zen, ctx.deployment, revision) and live_gap(rec, ctx) is None
    if action in (Action.RESTART, Action.MEMORY_LIMIT):
        if rec.deleted_pods:
            gone = set(rec.deleted_pods)
            live = {p.name for p in ctx.snapshot.pods if not p.deleting}
            return not (gone & live) and all(p.ready for p in ctx.snapshot.pods if not p.deleting) and bool(live)
        return rollout_complete(ctx.deployment, lambda ann: ann.get(ANN_RESTART) == rec.id)
    if action == Action.CERTIFICATE_ROTATION:
        changes = rec.certificates or []
        installed = {c.name: c.fingerprint for c in changes if c.fingerprint}
        for cert in ctx.snapshot.certificates:
            if cert.name in installed and (cert.fingerprint != installed[cert.name] or cert.served_matches is False):
                return False
        return bool(installed) or any(c.issuer == IssuerType.CERT_MANAGER for c in changes)
    return False


def live_gap(rec: RemediationRecord, ctx: ExecContext) -> str | None:
    """Why a config change is not yet running on every pod (None: it is, or the Zentinel opted out).

    Read from each running pod's ``/admin/config`` in this pass's snapshot, against the config in the
    ConfigMap (which :func:`config_in_place` has checked is the record's revision).
    """
    if Action(rec.action) not in CONFIG_ACTIONS or not ctx.zen.spec.config.verify_live:
        return None
    try:
        text, _ = read_config(ctx.zen)
    except ActionError as e:
        return str(e)
    pods = [p.name for p in ctx.snapshot.pods if p.process_running and not p.deleting]
    return liveconfig.live_gap(zconfig.check_config(text), ctx.snapshot.live_configs, pods)


def revert(rec: RemediationRecord, ctx: ExecContext) -> RemediationRecord:
    """Undo a temporary config edit (anchored on the KDL, so other edits since then are kept)."""
    edits = list(((rec.undo or {}).get("edits")) or [])
    try:
        current, _ = read_config(ctx.zen)
        new = current
        for raw in reversed(edits):
            new = zconfig.revert(new, zconfig.UndoRecord.from_dict(raw), name=ctx.zen.spec.config.key).text
        diff = zconfig.unified_diff(current, new, ctx.zen.spec.config.key)
        if new != current:
            write_config(ctx.zen, new, rec.id + "/revert")
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
