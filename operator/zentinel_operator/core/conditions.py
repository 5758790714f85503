"""Conditions per the Kubernetes API conventions: ``lastTransitionTime`` moves only when status flips."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.common import Condition, ConditionStatus


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    *,
    now: dt.datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return a new list with ``type_`` set; other conditions are kept in order."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE

    def made(previous: Condition | None) -> Condition:
        """The condition as set, after ``previous`` (None: it is new)."""
        transition, observed = now, generation
        if previous is not None:
            if previous.status == status and previous.last_transition_time:
                transition = previous.last_transition_time
            if generation is None:
                observed = previous.observed_generation
        return Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=transition,
            observed_generation=observed,
        )

    result = [made(cond) if cond.type == type_ else cond for cond in conditions]
    if all(cond.type != type_ for cond in conditions):
        result.append(made(None))
    return result


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    cond = get_condition(conditions, type_)
    return cond is not None and cond.status == ConditionStatus.TRUE


READY = "Ready"


def _ready_true(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A pod's ``Ready`` condition, as the API returns it, when it is ``True``."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == READY and c.get("status") == "True"), None)


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """A pod as the API returns it has its ``Ready`` condition ``True``."""
    return _ready_true(pod) is not None


def pod_ready_since(pod: Mapping[str, Any]) -> dt.datetime | None:
    """When a Ready pod's ``Ready`` condition last turned ``True`` (None: not Ready, or no readable time)."""
    cond = _ready_true(pod)
    if cond is None:
        return None
    try:
        since = dt.datetime.fromisoformat(str(cond.get("lastTransitionTime")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)
