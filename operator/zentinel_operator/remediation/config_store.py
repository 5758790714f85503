"""The config store: the Zentinel's ConfigMap, its saved revisions, KDL edits, and delivering a
change to the pods (a rolling restart, or Zentinel's own auto-reload). A config is written only if it
validates, and only when its content differs, so a write can be made again after a crash."""

from __future__ import annotations

from typing import Any

from ..api import ActionApi
from ..core import zconfig
from ..core.remediation import Action, Step
from ..core.revisions import snapshot_name
from ..models.zentinel import ReloadMode, Zentinel
from ..names import (
    ANN_CONFIG_REVISION,
    ANN_RESTART,
    ANN_WRITTEN_BY_OPERATOR,
    API_VERSION,
    KIND_ZENTINEL,
    LABEL_REVISION,
    LABEL_ZENTINEL,
)
from .context import ActionError, ExecContext
from .workload import rollout_complete


def read_config(api: ActionApi, zen: Zentinel) -> tuple[str, dict[str, Any]]:
    cm = api.get_configmap(zen.metadata.namespace, zen.spec.config.config_map_name)
    if cm is None:
        raise ActionError(f"ConfigMap {zen.spec.config.config_map_name} does not exist")
    text = (cm.get("data") or {}).get(zen.spec.config.key)
    if text is None:
        raise ActionError(f"ConfigMap {zen.spec.config.config_map_name} has no key {zen.spec.config.key}")
    return str(text), cm


def save_revision(api: ActionApi, zen: Zentinel, revision: str, text: str) -> None:
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
    api.create_configmap(zen.metadata.namespace, body)


def revision_text(api: ActionApi, zen: Zentinel, revision: str) -> str | None:
    cm = api.get_configmap(zen.metadata.namespace, snapshot_name(zen.metadata.name, revision))
    text = ((cm or {}).get("data") or {}).get(zen.spec.config.key)
    return None if text is None else str(text)


def deliver(api: ActionApi, zen: Zentinel, revision: str, record_id: str) -> str:
    """Make the running pods pick up the new config, per the Zentinel's reload mode."""
    if zen.spec.config.reload_mode == ReloadMode.AUTO_RELOAD:
        return "auto-reload (Zentinel polls the file)"
    api.patch_deployment(
        zen.metadata.namespace,
        zen.spec.workload.name,
        {"spec": {"template": {"metadata": {"annotations": {ANN_CONFIG_REVISION: revision, ANN_RESTART: record_id}}}}},
    )
    return f"rolling restart of Deployment {zen.spec.workload.name}"


def write_config(api: ActionApi, zen: Zentinel, new_text: str, record_id: str) -> tuple[str, str, str]:
    """Write ``new_text`` (only if it validates) and deliver it; return (before rev, after rev, how)."""
    check = zconfig.check_config(new_text)
    if not check.valid:
        raise ActionError("refusing to write a config that does not validate: " + "; ".join(check.errors[:3]))
    current, _ = read_config(api, zen)
    before = zconfig.config_revision(current)
    after = check.revision
    if current != new_text:
        api.patch_configmap(
            zen.metadata.namespace,
            zen.spec.config.config_map_name,
            {
                "metadata": {"annotations": {ANN_WRITTEN_BY_OPERATOR: after}},
                "data": {zen.spec.config.key: new_text},
            },
        )
    how = deliver(api, zen, after, record_id)
    return before, after, how


def config_in_place(api: ActionApi, zen: Zentinel, deployment: dict[str, Any] | None, revision: str | None) -> bool:
    """The ConfigMap holds ``revision`` and, with rolling restarts, the rollout for it completed."""
    if revision is None:
        return False
    try:
        text, _ = read_config(api, zen)
    except ActionError:
        return False
    if zconfig.config_revision(text) != revision:
        return False
    if zen.spec.config.reload_mode == ReloadMode.ROLLING_RESTART:
        return rollout_complete(deployment, lambda ann: ann.get(ANN_CONFIG_REVISION) == revision)
    return True


def edit_text(action: Action, text: str, step: Step, ctx: ExecContext) -> tuple[str, str, list[dict[str, Any]]]:
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
