"""Keep each policy's status current: which Zentinels it governs, and whether it is acceptable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..api import StatusApi
from ..core.patches import merge_patch
from ..core.policy_checks import check_policy, policy_conditions
from ..core.selection import choose_governing
from ..models.policy import ZentinelIncidentPolicyStatus
from ..names import CLUSTER_POLICIES, POLICIES

ZentinelsByNamespace = Mapping[str, Sequence[tuple[str, Mapping[str, str]]]]
PoliciesByNamespace = Mapping[str, Sequence[Mapping[str, Any]]]


def selected_by(
    policy_name: str,
    zentinels: Sequence[tuple[str, Mapping[str, str]]],
    policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """Zentinels of one namespace that this namespaced policy governs (``core.selection.choose_governing``)."""
    chosen = []
    for name, labels in zentinels:
        winner = choose_governing(labels, policies, cluster_policies)
        if winner is not None and not winner.cluster and winner.status.name == policy_name:
            chosen.append(name)
    return sorted(chosen)


def selected_by_cluster_policy(
    policy_name: str,
    zentinels: ZentinelsByNamespace,
    policies: PoliciesByNamespace,
    cluster_policies: Sequence[Mapping[str, Any]],
) -> list[str]:
    """``namespace/name`` of every Zentinel this cluster policy governs: selected, and shadowed by no
    namespaced policy (``core.selection.choose_governing``)."""
    chosen = []
    for ns, members in zentinels.items():
        for name, labels in members:
            winner = choose_governing(labels, policies.get(ns, ()), cluster_policies)
            if winner is not None and winner.cluster and winner.status.name == policy_name:
                chosen.append(f"{ns}/{name}")
    return sorted(chosen)


def reconcile(
    body: Mapping[str, Any],
    *,
    zentinels: Sequence[tuple[str, Mapping[str, str]]],
    policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]] = (),
    api: StatusApi,
    now: dt.datetime | None = None,
) -> bool:
    """A namespaced policy: ``zentinels`` and ``policies`` are those of its namespace."""
    meta = body["metadata"]
    selected = selected_by(meta["name"], zentinels, policies, cluster_policies)
    return _write(api, body, selected, POLICIES, meta["namespace"], now)


def reconcile_cluster(
    body: Mapping[str, Any],
    *,
    zentinels: ZentinelsByNamespace,
    policies: PoliciesByNamespace,
    cluster_policies: Sequence[Mapping[str, Any]],
    api: StatusApi,
    now: dt.datetime | None = None,
) -> bool:
    """A cluster policy: every namespace's Zentinels and namespaced policies, and every cluster policy."""
    selected = selected_by_cluster_policy(body["metadata"]["name"], zentinels, policies, cluster_policies)
    return _write(api, body, selected, CLUSTER_POLICIES, None, now)


def _write(
    api: StatusApi,
    body: Mapping[str, Any],
    names: list[str],
    plural: str,
    namespace: str | None,
    now: dt.datetime | None,
) -> bool:
    """Patch the status (selected Zentinels, Accepted and Ready) when it changed."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    meta = body["metadata"]
    try:
        old = ZentinelIncidentPolicyStatus.model_validate(body.get("status") or {})
    except ValidationError:
        old = ZentinelIncidentPolicyStatus()
    new = old.model_copy(deep=True)
    new.observed_generation = meta.get("generation")
    new.selected_zentinels = len(names)
    new.selected = names
    problems = check_policy(body.get("spec") or {})
    new.conditions = policy_conditions(new.conditions, problems, now=now, generation=meta.get("generation"))
    patch = merge_patch(dict(body.get("status") or {}), new.dump())
    if not patch:
        return False
    api.patch_status(plural, namespace, meta["name"], patch)
    return True
