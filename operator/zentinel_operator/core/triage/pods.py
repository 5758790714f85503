"""The pods of one snapshot sorted into what the tree asks about them, and what they logged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from ...models.common import Severity
from ...models.policy import Thresholds
from ..snapshot import LogCause, LogMatch, PodSignal, Snapshot
from . import fmt

_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
_NOT_A_CRASH = frozenset({"Completed"})
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclasses.dataclass(frozen=True)
class Pods:
    """The pods of one snapshot, sorted by name, sorted into what the tree asks about them."""

    total: int  # max(desired replicas, pods that exist): the denominator of every pod share
    live: tuple[PodSignal, ...]  # every pod not being deleted
    up: tuple[PodSignal, ...]  # the proxy process runs and is not crash-looping
    down: tuple[PodSignal, ...]  # crash-looping, or failed to start (ImagePullBackOff, ...)
    starting: tuple[PodSignal, ...]  # Pending / ContainerCreating: neither up nor down yet
    ready: tuple[PodSignal, ...]  # up and Ready: what the Service sends traffic to
    not_ready: tuple[PodSignal, ...]  # up, not Ready, and not merely starting during a rollout
    finished: tuple[PodSignal, ...]  # Succeeded / Failed (evicted): replaced by the ReplicaSet, not counted
    crash_looping: frozenset[str]  # names

    def state(self, pod: PodSignal) -> str:
        """How a person would name the pod's state: the waiting reason, else phase, else what is wrong."""
        c = pod.container
        if c is not None and c.waiting_reason:
            return c.waiting_reason
        if pod.phase != "Running":
            return pod.phase
        if c is not None and not c.running:
            return "container not running"
        if pod.name in self.crash_looping:
            return "restarting"
        return "running" if pod.ready else "not Ready"

    def lines(self, pods: Sequence[PodSignal]) -> list[str]:
        """``2 of 3 pods CrashLoopBackOff (edge-a: 5 restarts, last exit 137 OOMKilled; edge-b: ...)``,
        one line per state, the most common state first."""
        groups: dict[str, list[PodSignal]] = {}
        for pod in pods:
            groups.setdefault(self.state(pod), []).append(pod)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return [
            f"{len(members)} of {self.total} pods {state} ({fmt.listing([pod_detail(p) for p in members])})"
            for state, members in ordered
        ]


def _crash_reason(pod: PodSignal) -> bool:
    c = pod.container
    if c is None:
        return False
    if c.last_terminated_reason is not None and c.last_terminated_reason not in _NOT_A_CRASH:
        return True
    return c.last_exit_code is not None and c.last_exit_code != 0


def _crash_looping(pod: PodSignal, thresholds: Thresholds) -> bool:
    """CrashLoopBackOff; or restarts still growing after a crash; or at least
    ``restarts_for_crash_loop`` restarts on a container that is not running or still restarting.

    A high restart count on a container that has been running steadily since is history, not a
    crash loop: Kubernetes never resets the count.
    """
    c = pod.container
    if c is None or pod.deleting:
        return False
    if c.crash_looping:
        return True
    if pod.restart_growth > 0 and _crash_reason(pod):
        return True
    return c.restart_count >= thresholds.restarts_for_crash_loop and (not c.running or pod.restart_growth > 0)


def _starting(pod: PodSignal) -> bool:
    c = pod.container
    if c is not None and c.waiting_reason is not None:
        return c.waiting_reason in _STARTING_REASONS
    return pod.phase == "Pending"


def _restarts(pod: PodSignal) -> int:
    return pod.container.restart_count if pod.container is not None else 0


def classify_pods(snapshot: Snapshot, thresholds: Thresholds) -> Pods:
    ordered = sorted(snapshot.pods, key=lambda p: p.name)
    finished = tuple(p for p in ordered if not p.deleting and p.phase in _FINISHED_PHASES)
    live = tuple(p for p in ordered if not p.deleting and p.phase not in _FINISHED_PHASES)
    up: list[PodSignal] = []
    down: list[PodSignal] = []
    starting: list[PodSignal] = []
    for pod in live:
        if _crash_looping(pod, thresholds):
            down.append(pod)
        elif pod.process_running:
            up.append(pod)
        elif _starting(pod):
            starting.append(pod)
        else:
            down.append(pod)
    rolling_out = snapshot.workload.rolling_out
    return Pods(
        total=max(snapshot.workload.desired, len(live)),
        live=live,
        up=tuple(up),
        down=tuple(down),
        starting=tuple(starting),
        ready=tuple(p for p in up if p.ready),
        not_ready=tuple(p for p in up if not p.ready and not (rolling_out and _restarts(p) == 0)),
        finished=finished,
        crash_looping=frozenset(p.name for p in down if _crash_looping(p, thresholds)),
    )


def share_severity(affected: int, total: int) -> Severity:
    """The runbook's rule for a share of pods: all of them is a complete outage (SEV1), half or
    more a partial outage (SEV2), fewer limited impact (SEV3)."""
    if affected >= total:
        return Severity.SEV1
    if 2 * affected >= total:
        return Severity.SEV2
    return Severity.SEV3


def pod_detail(pod: PodSignal) -> str:
    c = pod.container
    parts: list[str] = []
    if c is not None:
        if c.restart_count:
            parts.append(fmt.plural(c.restart_count, "restart"))
        if c.last_exit_code is not None or c.last_terminated_reason:
            exit_code = "" if c.last_exit_code is None else f" {c.last_exit_code}"
            reason = f" {c.last_terminated_reason}" if c.last_terminated_reason else ""
            parts.append(f"last exit{exit_code}{reason}")
    return f"{pod.name}: {', '.join(parts)}" if parts else pod.name


def logs(snapshot: Snapshot, pods: Iterable[PodSignal], cause: LogCause) -> list[LogMatch]:
    names = {p.name for p in pods}
    matches = [m for m in snapshot.logs if m.cause == cause and m.pod in names]
    return sorted(matches, key=lambda m: (m.pod, not m.previous, m.line))


def _log_text(match: LogMatch) -> str:
    where = f"{match.pod} (previous container)" if match.previous else match.pod
    return f'{where}: "{fmt.clip(match.line)}"'


def log_evidence(label: str, matches: Sequence[LogMatch]) -> list[str]:
    return [f"{label}: {_log_text(m)}" for m in matches[: fmt.LISTED]]
