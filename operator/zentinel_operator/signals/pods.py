"""Pods and the Deployment, as the API returns them, turned into typed signals (pure conversions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.conditions import pod_ready, pod_ready_since
from ..core.quantity import parse_quantity
from ..core.snapshot import ContainerSignal, PodSignal, WorkloadSignal
from ..names import ANN_CONFIG_REVISION as CONFIG_REVISION_ANNOTATION
from ..names import ANN_TLS


def _container_spec(deployment: Mapping[str, Any], name: str | None) -> Mapping[str, Any] | None:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    if not containers:
        return None
    if name:
        return next((c for c in containers if c.get("name") == name), None)
    first: Mapping[str, Any] = containers[0]
    return first


def container_name(deployment: Mapping[str, Any] | None, name: str | None) -> str | None:
    if deployment is None:
        return name
    spec = _container_spec(deployment, name)
    return str(spec["name"]) if spec else name


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 1
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        share = float(text[:-1]) / 100 * total
        whole = int(share)
        return whole + 1 if round_up and share > whole else whole
    return int(text)


def template_annotations(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations of a Deployment's pod template (empty when it has none)."""
    return (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}


def workload_signal(deployment: Mapping[str, Any] | None, container: str | None) -> WorkloadSignal:
    if deployment is None:
        return WorkloadSignal(exists=False)
    spec = deployment.get("spec", {})
    status = deployment.get("status", {}) or {}
    meta = deployment.get("metadata", {})
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    strategy = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    rolling = (generation is not None and observed is not None and observed < generation) or (
        updated < desired or replicas > desired
    )
    cspec = _container_spec(deployment, container) or {}
    limit = parse_quantity(((cspec.get("resources") or {}).get("limits") or {}).get("memory"))
    return WorkloadSignal(
        exists=True,
        desired=desired,
        updated=updated,
        available=int(status.get("availableReplicas") or 0),
        replicas=replicas,
        rolling_out=rolling,
        max_unavailable=_int_or_percent(strategy.get("maxUnavailable", "25%"), desired, round_up=False),
        max_surge=_int_or_percent(strategy.get("maxSurge", "25%"), desired, round_up=True),
        memory_limit_bytes=limit,
        generation=generation,
        observed_generation=observed,
        tls_rolled=template_annotations(deployment).get(ANN_TLS),
    )


def _container_signal(pod: Mapping[str, Any], container: str | None) -> ContainerSignal | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return None
    cs = next((c for c in statuses if c.get("name") == container), None) if container else None
    cs = cs or statuses[0]
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    terminated = state.get("terminated") or {}
    last = last or terminated
    return ContainerSignal(
        name=str(cs.get("name")),
        ready=bool(cs.get("ready")),
        running=bool(state.get("running")),
        restart_count=int(cs.get("restartCount") or 0),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        last_terminated_reason=last.get("reason"),
        last_exit_code=last.get("exitCode"),
        last_terminated_message=last.get("message"),
    )


def pod_signal(pod: Mapping[str, Any], container: str | None, previous_restarts: int | None) -> PodSignal:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    cs = _container_signal(pod, container)
    growth = 0
    if cs is not None and previous_restarts is not None:
        growth = max(0, cs.restart_count - previous_restarts)
    return PodSignal(
        name=str(meta.get("name")),
        ip=status.get("podIP"),
        phase=str(status.get("phase") or "Unknown"),
        ready=pod_ready(pod),
        deleting=bool(meta.get("deletionTimestamp")),
        container=cs,
        restart_growth=growth,
        config_revision=(meta.get("annotations") or {}).get(CONFIG_REVISION_ANNOTATION),
        ready_since=pod_ready_since(pod),
        tls_rolled=(meta.get("annotations") or {}).get(ANN_TLS),
    )
