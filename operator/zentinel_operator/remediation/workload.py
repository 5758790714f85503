"""Workload actions: pod deletions pinned to UIDs, rolling restarts carrying the record id, the memory
limit, and reading a rollout back."""

from __future__ import annotations

from typing import Any

from .. import k8s
from ..core.quantity import format_memory
from ..core.remediation import Step
from ..models.zentinel import ReloadMode
from ..names import ANN_RESTART
from ..signals import pods as pod_signals
from .context import ActionError, ExecContext


def rollout_complete(deployment: dict[str, Any] | None, template_ok: Any = None) -> bool:
    """The Deployment's rollout finished (:attr:`WorkloadSignal.rollout_complete`), for a pod template
    ``template_ok`` accepts by its annotations."""
    if deployment is None:
        return False
    if template_ok is not None and not template_ok(pod_signals.template_annotations(deployment)):
        return False
    return pod_signals.workload_signal(deployment, None).rollout_complete


def pdb_allows(ctx: ExecContext) -> tuple[bool, str]:
    labels = ((ctx.deployment or {}).get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("labels") or {}
    for pdb in ctx.api.list_pdbs(ctx.zen.metadata.namespace):
        sel = (pdb.get("spec") or {}).get("selector") or {}
        match = sel.get("matchLabels") or {}
        if match and all(labels.get(k) == v for k, v in match.items()):
            allowed = int(((pdb.get("status") or {}).get("disruptionsAllowed")) or 0)
            if allowed < 1:
                return False, f"PodDisruptionBudget {pdb['metadata']['name']} allows no disruption now"
    return True, ""


def delete_pods(ctx: ExecContext, names: list[str]) -> None:
    """Delete these pods of the workload, each by its uid (a pod replaced since the snapshot is left alone)."""
    if ctx.deployment is None:
        raise ActionError(f"Deployment {ctx.zen.spec.workload.name} not found")
    raw = {
        p["metadata"]["name"]: p["metadata"].get("uid")
        for p in ctx.api.list_pods(
            ctx.zen.metadata.namespace, k8s.label_selector_string(ctx.deployment["spec"]["selector"])
        )
    }
    for name in names:
        if name in raw:
            ctx.api.delete_pod(ctx.zen.metadata.namespace, name, raw[name])


def restart_crash_looping(ctx: ExecContext) -> str:
    """After a rollback under AutoReload: pods crash-looping on the bad config poll no file. Deleting them
    lets their ReplicaSet start them on the restored one now, not after the kubelet's back-off (up to 5 min)."""
    if ctx.zen.spec.config.reload_mode != ReloadMode.AUTO_RELOAD:
        return ""
    down = [
        p.name for p in ctx.snapshot.pods if not p.deleting and p.container is not None and p.container.crash_looping
    ]
    if not down:
        return ""
    delete_pods(ctx, down)
    return f"; restarted {len(down)} crash-looping pod(s) on it: {', '.join(down)}"


def restart(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str, str, list[str] | None]:
    """Delete stuck pods (they serve nothing) or, when all are Ready, roll the Deployment.

    Returns (target, before, after, the pods deleted: None for a rolling restart)."""
    stuck = [p for p in ctx.snapshot.pods if not p.ready and not p.deleting]
    w = ctx.snapshot.workload
    if stuck:
        budget = max(1, w.max_unavailable) if w.desired > 1 else 1
        chosen = stuck[:budget] if len(stuck) < w.desired else stuck
        names = [p.name for p in chosen]
        if not dry:
            delete_pods(ctx, names)
        return ("pods " + ", ".join(names), f"{len(stuck)} pod(s) not Ready", "deleted " + ", ".join(names), names)
    ok, why = pdb_allows(ctx)
    if not ok:
        raise ActionError(why)
    if not dry:
        ctx.api.patch_deployment(
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


def memory(step: Step, ctx: ExecContext, dry: bool) -> tuple[str, str]:
    new = int(str(step.params["new"]))
    cur = int(str(step.params["current"]))
    container = (
        ctx.zen.spec.workload.container or (ctx.deployment or {})["spec"]["template"]["spec"]["containers"][0]["name"]
    )
    if not dry:
        ctx.api.patch_deployment(
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
