"""Which policy governs a Zentinel: label selectors evaluated without the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models.common import LabelSelector
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import Zentinel


class SelectorError(ValueError):
    pass


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in selector.match_expressions:
        present = expr.key in labels
        if expr.operator == "In":
            if not present or labels[expr.key] not in expr.values:
                return False
        elif expr.operator == "NotIn":
            if present and labels[expr.key] in expr.values:
                return False
        elif expr.operator == "Exists":
            if not present:
                return False
        elif expr.operator == "DoesNotExist":
            if present:
                return False
        else:
            raise SelectorError(f"unknown operator {expr.operator!r}")
    return True


def choose_policy(labels: Mapping[str, str], policies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Among policy objects (as stored), the one selecting ``labels``: highest priority, then oldest name."""
    candidates: list[tuple[int, str, Mapping[str, Any]]] = []
    for body in policies:
        try:
            spec = ZentinelIncidentPolicySpec.model_validate(body.get("spec") or {})
            if selector_matches(spec.selector, labels):
                candidates.append((-spec.priority, str(body["metadata"]["name"]), body))
        except (ValueError, SelectorError, KeyError):
            continue
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]))
    return candidates[0][2]


def policy_for(zen: Zentinel, policies: Sequence[Mapping[str, Any]]) -> tuple[str | None, ZentinelIncidentPolicySpec]:
    """The policy governing ``zen``: its name and spec, or ``(None, defaults)`` when no policy selects it."""
    chosen = choose_policy(zen.metadata.labels, policies)
    if chosen is None:
        return None, ZentinelIncidentPolicySpec()
    return str(chosen["metadata"]["name"]), ZentinelIncidentPolicySpec.model_validate(chosen.get("spec") or {})
