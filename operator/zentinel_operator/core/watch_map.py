"""Which Zentinels a change to a pod, a Deployment, a ConfigMap or a Secret concerns (pure).

A change to one of these objects starts the pass of each Zentinel it concerns at once
(``scheduler.PassScheduler``), instead of at its next tick. The rule is the one the pass reads the
objects by (``signals.gather``): the Deployment named by ``spec.workload.name``, the pods its
selector selects, the ConfigMap named by ``spec.config.configMapName`` and the Secrets named in
``spec.tls[]`` (the certificate's Secret and the CA Secrets its chain is checked against), all in
the Zentinel's namespace. Nothing else starts a pass: not the Zentinel's own status (which the pass
writes), nor the config snapshots and evidence ConfigMaps the operator keeps.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..models.common import LabelSelector
from .selection import SelectorError, selector_matches


class Kind(enum.StrEnum):
    POD = "Pod"
    DEPLOYMENT = "Deployment"
    CONFIGMAP = "ConfigMap"
    SECRET = "Secret"  # noqa: S105 - a kind, not a secret


@dataclasses.dataclass(frozen=True)
class Watched:
    """What one Zentinel's pass reads by name, in its namespace."""

    name: str
    workload: str | None = None
    config_map: str | None = None
    secrets: frozenset[str] = frozenset()


def watched(body: Mapping[str, Any]) -> Watched | None:
    """The names a Zentinel (as stored) refers to; None without a name. Lenient: a spec the pass would refuse
    still names what it names, and its pass (started by the timer anyway) reports what is wrong with it."""
    name = (body.get("metadata") or {}).get("name")
    if not name:
        return None
    spec = body.get("spec") or {}
    secrets: set[str] = set()
    for ref in spec.get("tls") or []:
        if not isinstance(ref, Mapping):
            continue
        issuer = ref.get("issuer")
        issuer = issuer if isinstance(issuer, Mapping) else {}
        secrets |= {s for s in (ref.get("secretName"), ref.get("caSecretName"), issuer.get("caSecretName")) if s}
    return Watched(
        name=str(name),
        workload=(spec.get("workload") or {}).get("name"),
        config_map=(spec.get("config") or {}).get("configMapName"),
        secrets=frozenset(secrets),
    )


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Deployment's selector (as stored) selects these labels. An empty or unreadable selector selects
    nothing here: the API server refuses an empty one for a Deployment, and the pass cannot list by a bad one."""
    if not selector:
        return False
    try:
        parsed = LabelSelector.model_validate(dict(selector))
        if not parsed.match_labels and not parsed.match_expressions:
            return False
        return selector_matches(parsed, labels)
    except (ValidationError, SelectorError):
        return False


def concerned(
    kind: Kind,
    name: str,
    labels: Mapping[str, str],
    zentinels: Iterable[Watched],
    selectors: Mapping[str, Mapping[str, Any] | None],
) -> list[str]:
    """Names of the Zentinels (of the object's namespace) whose pass reads this object, sorted.

    ``selectors`` maps each Deployment of the namespace to its ``spec.selector``: a pod concerns the Zentinels
    whose workload selects it.
    """
    hits: set[str] = set()
    for z in zentinels:
        if kind == Kind.DEPLOYMENT:
            hit = z.workload == name
        elif kind == Kind.POD:
            hit = z.workload is not None and z.workload in selectors and selects(selectors[z.workload], labels)
        elif kind == Kind.CONFIGMAP:
            hit = z.config_map == name
        else:
            hit = name in z.secrets
        if hit:
            hits.add(z.name)
    return sorted(hits)
