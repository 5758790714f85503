"""Which policy governs a Zentinel: label selectors evaluated without the API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.common import LabelSelector
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import GoverningPolicy, PolicyReason, Zentinel
from ..names import KIND_CLUSTER_POLICY, KIND_POLICY


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


def _ranked(
    labels: Mapping[str, str], policies: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str, Mapping[str, Any]]]:
    """The policies (as stored) selecting ``labels``, best first: highest priority, then name order."""
    candidates: list[tuple[int, str, Mapping[str, Any]]] = []
    for body in policies:
        try:
            spec = ZentinelIncidentPolicySpec.model_validate(body.get("spec") or {})
            if selector_matches(spec.selector, labels):
                candidates.append((spec.priority, str(body["metadata"]["name"]), body))
        except (ValueError, SelectorError, KeyError):
            continue
    candidates.sort(key=lambda c: (-c[0], c[1]))
    return candidates


def choose_policy(labels: Mapping[str, str], policies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Among policy objects of one scope (as stored), the one selecting ``labels``: highest priority, then name."""
    ranked = _ranked(labels, policies)
    return ranked[0][2] if ranked else None


@dataclasses.dataclass(frozen=True)
class Governing:
    """The policy in force for one Zentinel: the object as stored, and what ``status.policy`` says of it."""

    body: Mapping[str, Any]
    status: GoverningPolicy

    @property
    def cluster(self) -> bool:
        return self.status.kind == KIND_CLUSTER_POLICY


def _described(kind: str, ranked: list[tuple[int, str, Mapping[str, Any]]]) -> str:
    priority, name, body = ranked[0]
    ns = (body.get("metadata") or {}).get("namespace") or ""
    text = f"{kind} {ns + '/' if ns else ''}{name} (priority {priority}) selects this Zentinel"
    if len(ranked) > 1:
        others = ", ".join(n for _, n, _ in ranked[1:])
        text += f", over {len(ranked) - 1} more of its scope ({others}) by priority, then name"
    return text


def choose_governing(
    labels: Mapping[str, str],
    namespaced: Sequence[Mapping[str, Any]],
    cluster: Sequence[Mapping[str, Any]],
) -> Governing | None:
    """The one rule for which policy governs a Zentinel with ``labels``.

    ``namespaced`` are the ``ZentinelIncidentPolicy`` objects of the Zentinel's namespace, ``cluster`` every
    ``ZentinelClusterIncidentPolicy``. A namespaced policy that selects the Zentinel wins over any cluster
    policy (reason ``ShadowsClusterPolicy`` when one would have matched); within one scope the highest
    ``priority`` wins, then the first name. ``None``: nothing selects it, the defaults apply."""
    local, shared = _ranked(labels, namespaced), _ranked(labels, cluster)
    if local:
        _, name, body = local[0]
        message = _described(KIND_POLICY, local)
        reason = PolicyReason.SELECTED
        if shared:
            reason = PolicyReason.SHADOWS_CLUSTER_POLICY
            message += f"; it shadows {KIND_CLUSTER_POLICY} {shared[0][1]}, which selects it too"
        ns = str((body.get("metadata") or {}).get("namespace") or "")
        return Governing(
            body, GoverningPolicy(kind=KIND_POLICY, name=name, namespace=ns, reason=reason, message=message)
        )
    if shared:
        _, name, body = shared[0]
        message = _described(KIND_CLUSTER_POLICY, shared) + f"; no {KIND_POLICY} in the namespace does"
        return Governing(
            body, GoverningPolicy(kind=KIND_CLUSTER_POLICY, name=name, reason=PolicyReason.SELECTED, message=message)
        )
    return None


def secrets_namespace(governing: Governing | None, zentinel_namespace: str, operator_namespace: str) -> str:
    """Where the receivers' Secrets of the governing policy are read: a cluster policy's in the operator's
    namespace, a namespaced policy's in its own (the Zentinel's)."""
    if governing is not None and governing.cluster:
        return operator_namespace
    return zentinel_namespace


def policy_for(
    zen: Zentinel, policies: Sequence[Mapping[str, Any]], cluster_policies: Sequence[Mapping[str, Any]] = ()
) -> tuple[Governing | None, ZentinelIncidentPolicySpec]:
    """The governing policy (:func:`choose_governing`) and its spec; the defaults when none selects ``zen``."""
    chosen = choose_governing(zen.metadata.labels, policies, cluster_policies)
    if chosen is None:
        return None, ZentinelIncidentPolicySpec()
    return chosen, ZentinelIncidentPolicySpec.model_validate(chosen.body.get("spec") or {})
