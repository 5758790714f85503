"""Zentinel's ``/admin/upstreams`` answer -> targets -> one :class:`UpstreamsSignal` over every pod.

Pure functions, no I/O. The body (``zentinel-proxy`` ``builtin_handlers.rs``, ``upstreams_handler``)::

    {"timestamp": "...", "request_id": "...",
     "summary": {"total_upstreams", "total_targets", "healthy", "unhealthy", "unknown"},
     "upstreams": [{"id": "backend", "load_balancing": "RoundRobin",
                    "targets": [{"address": "10.0.0.1:8080", "weight": 1,
                                 "status": "healthy" | "unhealthy" | "unknown",
                                 "failure_rate": 0.8 | null, "last_error": "..." | null}]}]}

With no upstreams configured the list is empty and a ``"message"`` says so. Zentinel derives the
status from its passive health checker: ``unhealthy`` when the failure rate is above 0.5,
``unknown`` before any request reached the target. Each pod has its own view, hence the vote in
:func:`merge_upstreams`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ..core.snapshot import TargetSignal, TargetStatus, UpstreamsSignal
from ..core.zconfig import HealthCheck


class UpstreamsError(Exception):
    """A body that is not Zentinel's ``/admin/upstreams`` JSON. ``reason`` is short and meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise UpstreamsError(f"{where}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise UpstreamsError(f"{where}: expected {_kind_name(kind)}, got {_json_type(value)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def parse_upstreams(body: str | bytes) -> list[TargetSignal]:
    """Every target of every upstream in one pod's ``/admin/upstreams`` answer.

    Raises :class:`UpstreamsError` on text that is not JSON or JSON of another shape. A status
    string this version does not know is read as ``unknown``.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamsError(f"not JSON: {exc}") from exc
    _expect(doc, dict, "body")
    if "upstreams" not in doc:
        raise UpstreamsError("body: no 'upstreams' key (not an /admin/upstreams answer)")
    upstreams = _expect(doc["upstreams"], list, "upstreams")
    targets: list[TargetSignal] = []
    for i, upstream in enumerate(upstreams):
        where = f"upstreams[{i}]"
        _expect(upstream, dict, where)
        upstream_id = _expect(upstream.get("id"), str, f"{where}.id")
        for j, target in enumerate(_expect(upstream.get("targets"), list, f"{where}.targets")):
            twhere = f"{where}.targets[{j}]"
            _expect(target, dict, twhere)
            address = _expect(target.get("address"), str, f"{twhere}.address")
            raw_status = _expect(target.get("status"), str, f"{twhere}.status")
            try:
                status = TargetStatus(raw_status.lower())
            except ValueError:
                status = TargetStatus.UNKNOWN
            failure_rate = target.get("failure_rate")
            if failure_rate is not None:
                failure_rate = float(_expect(failure_rate, (int, float), f"{twhere}.failure_rate"))
            last_error = target.get("last_error")
            if last_error is not None:
                last_error = _expect(last_error, str, f"{twhere}.last_error")
            targets.append(
                TargetSignal(
                    upstream=upstream_id,
                    address=address,
                    status=status,
                    failure_rate=failure_rate,
                    last_error=last_error,
                )
            )
    return targets


_RANK = {TargetStatus.UNHEALTHY: 2, TargetStatus.UNKNOWN: 1, TargetStatus.HEALTHY: 0}


@dataclasses.dataclass
class _Votes:
    healthy: int = 0
    unhealthy: int = 0
    pods: int = 0
    failure_rate: float | None = None
    last_error: str | None = None
    last_error_rate: float = -1.0


def merge_upstreams(per_pod: list[list[TargetSignal]], failures: list[str]) -> UpstreamsSignal:
    """One view of every target from the views of several pods, which may disagree.

    A target is ``unhealthy`` when at least half of the pods that report it say so (one pod of two
    is enough: a target that fails for half the proxies is not one to keep), ``healthy`` when more
    than half say healthy, ``unknown`` otherwise. The worst ``failure_rate`` is kept, and the
    ``last_error`` of the pod that saw the worst rate (or any pod's, when none reported a rate).

    ``available`` is ``False`` when no pod answered; ``error`` then says why (from ``failures``).
    Targets come sorted by upstream and address.
    """
    if not per_pod:
        reason = "; ".join(failures[:3]) if failures else "no pods to ask"
        if len(failures) > 3:
            reason += f"; and {len(failures) - 3} more"
        return UpstreamsSignal(available=False, error=f"no pod answered /admin/upstreams: {reason}")

    votes: dict[tuple[str, str], _Votes] = {}
    for pod_targets in per_pod:
        # One vote per pod and target, even if a pod lists an address twice: its worst status.
        worst: dict[tuple[str, str], TargetSignal] = {}
        for target in pod_targets:
            key = (target.upstream, target.address)
            seen = worst.get(key)
            if seen is None or _RANK[target.status] > _RANK[seen.status]:
                worst[key] = target
            v = votes.setdefault(key, _Votes())
            if target.failure_rate is not None:
                v.failure_rate = max(v.failure_rate or 0.0, target.failure_rate)
            if target.last_error:
                rate = target.failure_rate if target.failure_rate is not None else 0.0
                if v.last_error is None or rate > v.last_error_rate:
                    v.last_error, v.last_error_rate = target.last_error, rate
        for key, target in worst.items():
            v = votes[key]
            v.pods += 1
            if target.status is TargetStatus.HEALTHY:
                v.healthy += 1
            elif target.status is TargetStatus.UNHEALTHY:
                v.unhealthy += 1

    merged: list[TargetSignal] = []
    for (upstream, address), v in sorted(votes.items()):
        if 2 * v.unhealthy >= v.pods:
            status = TargetStatus.UNHEALTHY
        elif 2 * v.healthy > v.pods:
            status = TargetStatus.HEALTHY
        else:
            status = TargetStatus.UNKNOWN
        merged.append(
            TargetSignal(
                upstream=upstream,
                address=address,
                status=status,
                failure_rate=v.failure_rate,
                last_error=v.last_error,
            )
        )
    return UpstreamsSignal(available=True, targets=tuple(merged))


# Zentinel 0.6.45 reports every target as "unknown", health check or not (the contract test shows it).
# When no pod can tell, the operator asks the targets itself, as the runbook's diagnostics do (curl each
# backend), on the path of the upstream's own HTTP health check: no health check, no probe.
PROBE_ERROR_PREFIX = "operator probe: "


def probe_plan(signal: UpstreamsSignal, health_checks: Mapping[str, HealthCheck]) -> dict[tuple[str, str], str]:
    """(upstream, address) -> URL to probe, for targets no pod could judge whose upstream has an HTTP check."""
    if not signal.available:
        return {}
    plan: dict[tuple[str, str], str] = {}
    for t in signal.targets:
        check = health_checks.get(t.upstream)
        if t.status is TargetStatus.UNKNOWN and check is not None:
            plan[(t.upstream, t.address)] = f"http://{t.address}{check.path}"
    return plan


def apply_probes(
    signal: UpstreamsSignal,
    health_checks: Mapping[str, HealthCheck],
    answers: Mapping[tuple[str, str], tuple[int | None, str | None]],
) -> UpstreamsSignal:
    """The signal with each probed target judged by its answer: ``healthy`` when it gave the expected
    status, ``unhealthy`` (with the answer as ``last_error``) when it gave another or none."""
    if not answers:
        return signal
    judged = []
    for t in signal.targets:
        key = (t.upstream, t.address)
        if key not in answers:
            judged.append(t)
            continue
        status, error = answers[key]
        expected = health_checks[t.upstream].expected_status
        path = health_checks[t.upstream].path
        if status == expected:
            judged.append(dataclasses.replace(t, status=TargetStatus.HEALTHY))
        else:
            why = f"GET {path} answered {status}" if status is not None else f"GET {path} failed: {error}"
            judged.append(dataclasses.replace(t, status=TargetStatus.UNHEALTHY, last_error=PROBE_ERROR_PREFIX + why))
    return dataclasses.replace(signal, targets=tuple(judged))
