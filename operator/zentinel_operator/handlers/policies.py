"""Keep each policy's status current: which Zentinels it governs, and whether it is acceptable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from .. import k8s
from ..core.patches import merge_patch
from ..core.policy_checks import check_policy, policy_conditions
from ..core.selection import choose_policy
from ..models.policy import ZentinelIncidentPolicyStatus
from ..names import POLICIES


def selected_by(
    policy_name: str, zentinels: Sequence[tuple[str, Mapping[str, str]]], policies: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Zentinels for which this policy wins (highest priority, then name)."""
    chosen = []
    for name, labels in zentinels:
        winner = choose_policy(labels, policies)
        if winner is not None and winner["metadata"]["name"] == policy_name:
            chosen.append(name)
    return sorted(chosen)


def reconcile(
    body: Mapping[str, Any],
    *,
    zentinels: Sequence[tuple[str, Mapping[str, str]]],
    policies: Sequence[Mapping[str, Any]],
    now: dt.datetime | None = None,
) -> bool:
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    meta = body["metadata"]
    try:
        old = ZentinelIncidentPolicyStatus.model_validate(body.get("status") or {})
    except ValidationError:
        old = ZentinelIncidentPolicyStatus()
    new = old.model_copy(deep=True)
    new.observed_generation = meta.get("generation")
    names = selected_by(meta["name"], zentinels, policies)
    new.selected_zentinels = len(names)
    new.selected = names
    problems = check_policy(body.get("spec") or {})
    new.conditions = policy_conditions(new.conditions, problems, now=now, generation=meta.get("generation"))
    patch = merge_patch(dict(body.get("status") or {}), new.dump())
    if not patch:
        return False
    k8s.patch_custom_status(POLICIES, meta["namespace"], meta["name"], patch)
    return True
