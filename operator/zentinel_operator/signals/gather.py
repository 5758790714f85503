"""Gather one Zentinel's snapshot: the I/O half of "observe".

Kubernetes reads run in worker threads (the official client is synchronous); HTTP scrapes run in
asyncio with a concurrency bound. What one pass must remember for the next (counter values for
rates, restart counts, the request-rate baseline) lives in :class:`PassMemory`; losing it on a
restart costs one pass of rates, never an incident (unknown is not healthy, see core.zstatus).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

from .. import k8s
from ..core.snapshot import ConfigSignal, LogMatch, PodSignal, Snapshot, WorkloadSignal
from ..models.zentinel import Zentinel
from . import logs as log_signals
from . import pods as pod_signals

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PassMemory:
    """Per-Zentinel state carried from one pass to the next (in memory only)."""

    restarts: dict[str, int] = dataclasses.field(default_factory=dict)
    pod_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # pod name -> PodMetrics
    scraped_at: dt.datetime | None = None
    baseline_rps: float | None = None
    config_revision: str | None = None
    config_changed_at: dt.datetime | None = None


@dataclasses.dataclass
class GatherSettings:
    scrape_timeout: float = 3.0
    scrape_concurrency: int = 32
    scrape_max_bytes: int = 8_000_000
    log_tail_lines: int = 200


def _pods(
    zen: Zentinel, deployment: dict[str, Any] | None, memory: PassMemory
) -> tuple[WorkloadSignal, tuple[PodSignal, ...], list[dict[str, Any]]]:
    container = pod_signals.container_name(deployment, zen.spec.workload.container)
    workload = pod_signals.workload_signal(deployment, container)
    if deployment is None:
        return workload, (), []
    selector = k8s.label_selector_string(deployment["spec"]["selector"])
    raw = k8s.list_pods(zen.metadata.namespace, selector)
    signals = []
    for pod in raw:
        name = pod["metadata"]["name"]
        signal = pod_signals.pod_signal(pod, container, memory.restarts.get(name))
        if signal.container is not None:
            memory.restarts[name] = signal.container.restart_count
        signals.append(signal)
    live = {p.name for p in signals}
    for gone in set(memory.restarts) - live:
        memory.restarts.pop(gone, None)
    return workload, tuple(signals), raw


def _logs(namespace: str, pods: tuple[PodSignal, ...], tail: int) -> tuple[LogMatch, ...]:
    """Logs of troubled pods only (crashing, restarting or not Ready): cheap when all is well."""
    matches: list[LogMatch] = []
    for pod in pods:
        c = pod.container
        if c is None or (pod.ready and pod.restart_growth == 0 and not c.crash_looping):
            continue
        for previous in (False, True):
            if previous and c.restart_count == 0:
                continue
            try:
                text = k8s.pod_log(namespace, pod.name, c.name, previous=previous, tail_lines=tail)
            except Exception as e:  # a log we cannot read is a missing clue, not a failed pass
                log.debug("logs of %s unavailable: %s", pod.name, e)
                continue
            matches += log_signals.match_lines(pod.name, c.name, text, previous=previous)
    return log_signals.newest_per_cause(matches)


def _config(zen: Zentinel, memory: PassMemory, now: dt.datetime) -> ConfigSignal:
    from ..core.zconfig import check_config, config_revision

    cm = k8s.get_configmap(zen.metadata.namespace, zen.spec.config.config_map_name)
    text = ((cm or {}).get("data") or {}).get(zen.spec.config.key)
    if text is None:
        return ConfigSignal(present=False, errors=(
            f"ConfigMap {zen.spec.config.config_map_name} or its key {zen.spec.config.key} is missing",))
    revision = config_revision(text)
    if memory.config_revision != revision:
        if memory.config_revision is not None:
            memory.config_changed_at = now
        memory.config_revision = revision
    check = check_config(text)
    return ConfigSignal(
        present=True,
        revision=revision,
        valid=check.valid,
        errors=tuple(check.errors),
        changed_at=memory.config_changed_at or _first_seen(zen, revision),
        last_known_good=zen.status.last_known_good_revision,
    )


def _first_seen(zen: Zentinel, revision: str) -> dt.datetime | None:
    for rev in zen.status.revisions:
        if rev.revision == revision:
            return rev.first_seen
    return None


def _kube_part(zen: Zentinel, memory: PassMemory, now: dt.datetime, settings: GatherSettings) -> dict[str, Any]:
    ns = zen.metadata.namespace
    deployment = k8s.get_deployment(ns, zen.spec.workload.name)
    workload, pods, raw = _pods(zen, deployment, memory)
    return {
        "deployment": deployment,
        "workload": workload,
        "pods": pods,
        "raw_pods": raw,
        "logs": _logs(ns, pods, settings.log_tail_lines),
        "config": _config(zen, memory, now),
    }


async def gather(zen: Zentinel, memory: PassMemory, *, now: dt.datetime, settings: GatherSettings) -> Snapshot:
    kube = await asyncio.to_thread(_kube_part, zen, memory, now, settings)
    return Snapshot(
        namespace=zen.metadata.namespace,
        zentinel=zen.metadata.name,
        observed_at=now,
        workload=kube["workload"],
        pods=kube["pods"],
        config=kube["config"],
        logs=kube["logs"],
    )
