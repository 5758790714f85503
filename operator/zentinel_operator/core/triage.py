"""Triage: the runbook's "Initial Triage Decision Tree" over one :class:`~.snapshot.Snapshot`.

::

    Is the proxy process running?          -> ProcessCrash            (+ MemoryExhaustion on OOMKilled,
    └─ Is the health endpoint responding?  -> HealthCheckFailure         ConfigError on a config crash)
       └─ Are all upstreams healthy?       -> UpstreamFailure
          └─ Is error rate elevated?       -> HighErrorRate
             └─ otherwise                  -> PerformanceDegradation

and, independent of the tree: MemoryExhaustion (usage near the limit), CertificateInvalid,
CertificateExpiring, ConfigError (a config that does not validate), TrafficSpike and MetricsUnavailable.

Every ladder comes from the policy's :class:`~zentinel_operator.models.policy.Thresholds`. What the
policy has no field for is fixed here, each from the runbook's words: a share of pods (crash-looping,
OOMKilled, not Ready) is SEV1 when it is all of them, SEV2 from half, SEV3 below; a crash within
:data:`CONFIG_CHANGE_WINDOW` (15 minutes) of a config change is config-caused; an invalid certificate
is SEV2 (SEV1 once also expired); an admin endpoint that answers on no pod is SEV2; a config that does
not validate is SEV3 while the old one serves and at least SEV2 when pods crash on it; metrics that
cannot be read are SEV4.

Ladders are crossed strictly above a rung (lower-is-worse: at or below), except the two whose rungs
name an amount reached: failing routes (``sev2: 2`` is "multiple routes failing") and the share of an
upstream's targets that are unhealthy (``sev2: 0.5`` is half, ``sev1: 1.0`` all of them; a share
cannot exceed 1, so "strictly above" would make that rung unreachable).

How the tree is read where it is silent:

* One snapshot can hold several troubles, and the severity of an incident must never be understated,
  so each step raises its finding on its own signal; the tree decides what a step *means*, not whether
  a later step is looked at. Two exceptions follow the tree literally: when no proxy process runs at
  all, steps 2-5 are not judged (the data would be stale or absent, and the outage says it all); and
  Performance Degradation is the tree's "otherwise": when the error rate is elevated, elevated latency
  is one of High Error Rate's listed symptoms, so it is folded into that finding (evidence, and its
  severity when worse) instead of opening a second incident.
* ``None`` is unknown and never produces a finding by itself. Malformed numbers (NaN, negative
  counts) are treated as unknown too: triage never raises on bad data.
* Triage judges one snapshot. Holding off flapping signals is the lifecycle's job, with one
  exception that one snapshot can tell: during a rollout a pod that is running, not yet Ready and has
  never restarted is starting, not failing.

Pure: no I/O and no clock (``snapshot.observed_at`` is "now"); the same snapshot always gives the
same findings, in the same order, with the same text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from ..models.common import Category, Severity
from ..models.policy import Ladder, Thresholds
from .durations import format_duration
from .snapshot import (
    CertificateSignal,
    Finding,
    LogCause,
    LogMatch,
    MetricsSignal,
    PodSignal,
    Snapshot,
    TargetSignal,
    TargetStatus,
)

__all__ = [
    "CONFIG_CHANGE_WINDOW",
    "Health",
    "ladder_severity",
    "overall_health",
    "triage",
]

Health = Literal["Healthy", "Degraded", "Down", "Unknown"]

#: A crash within this long after the config changed is taken as caused by the change.
CONFIG_CHANGE_WINDOW = dt.timedelta(minutes=15)

_LISTED = 3  # pods, targets, routes or log lines named in one evidence line
_LOG_CHARS = 200  # a log line is clipped to this many characters
_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
_NOT_A_CRASH = frozenset({"Completed"})
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})

# Ties between equally severe findings are broken in the tree's order: the first finding names the
# procedure the runbook sends the on-call engineer to.
_ORDER = {
    category: index
    for index, category in enumerate(
        (
            Category.PROCESS_CRASH,
            Category.HEALTH_CHECK_FAILURE,
            Category.UPSTREAM_FAILURE,
            Category.HIGH_ERROR_RATE,
            Category.PERFORMANCE_DEGRADATION,
            Category.MEMORY_EXHAUSTION,
            Category.CONFIG_ERROR,
            Category.CERTIFICATE_INVALID,
            Category.CERTIFICATE_EXPIRING,
            Category.TRAFFIC_SPIKE,
            Category.METRICS_UNAVAILABLE,
            Category.EXTERNAL_ALERT,
        )
    )
}

_PROXY_ERROR_NOTES = {
    "502": "upstream returning invalid responses: check the upstream application's logs",
    "503": "all targets unhealthy or a circuit breaker open: follow the Upstream Failure procedure",
    "504": "upstream not responding in time (timeouts)",
}


# ------------------------------------------------------------------------------ public API
def ladder_severity(value: float, ladder: Ladder, *, higher_is_worse: bool, inclusive: bool = False) -> Severity | None:
    """The worst rung of ``ladder`` that ``value`` crosses, or ``None`` when it crosses none.

    Higher-is-worse ladders (error rate, latency, ...) are crossed strictly above a rung, as the
    runbook's "> 10 % error rate" reads. Lower-is-worse ladders (certificate days left) are crossed at
    or below a rung: ``0`` days left is already expired.

    ``inclusive=True`` makes a higher-is-worse rung crossed at the rung itself. Triage uses it for the
    two ladders whose rungs name an amount *reached* rather than a limit to exceed: the number of
    failing routes (``sev2: 2`` is "multiple routes failing") and the share of an upstream's targets
    that are unhealthy (``sev2: 0.5`` is half of them, ``sev1: 1.0`` all of them).

    A value that is not a number (NaN) crosses nothing.
    """
    if math.isnan(value):
        return None
    for severity, threshold in ladder.rungs():
        if not higher_is_worse:
            crossed = value <= threshold
        elif inclusive:
            crossed = value >= threshold
        else:
            crossed = value > threshold
        if crossed:
            return severity
    return None


def overall_health(findings: Iterable[Finding]) -> Health:
    """The Zentinel's health column: ``Down`` on any SEV1, ``Degraded`` on any other finding,
    ``Unknown`` when the only findings say the operator could not see (metrics unavailable), and
    ``Healthy`` when there is nothing to report."""
    found = list(findings)
    if not found:
        return "Healthy"
    if any(f.severity == Severity.SEV1 for f in found):
        return "Down"
    if all(f.category == Category.METRICS_UNAVAILABLE for f in found):
        return "Unknown"
    return "Degraded"


def triage(snapshot: Snapshot, thresholds: Thresholds) -> list[Finding]:
    """Walk the runbook's decision tree over ``snapshot``.

    At most one finding per category, worst severity first (ties in the tree's order).
    """
    out = _Findings()
    pods = _classify_pods(snapshot, thresholds)
    crash = _check_processes(snapshot, pods, out)
    if crash.tree_continues:
        admin_down = _check_health(snapshot, pods, out)
        _check_upstreams(snapshot, thresholds, out)
        _check_errors_and_latency(snapshot, thresholds, out)
        _check_circuit_breakers(snapshot, out)
        _check_observability(snapshot, admin_down, out)
    _check_memory_usage(snapshot, thresholds, out)
    _check_config(snapshot, pods, crash, out)
    _check_certificates(snapshot, thresholds, out)
    _check_traffic(snapshot, thresholds, out)
    return out.result()


# ------------------------------------------------------------------------------ collection
class _Findings:
    """At most one finding per category; a second one for a category is merged into the first."""

    def __init__(self) -> None:
        self._by_category: dict[Category, Finding] = {}

    def get(self, category: Category) -> Finding | None:
        return self._by_category.get(category)

    def add(self, finding: Finding) -> None:
        old = self._by_category.get(finding.category)
        if old is None:
            self._by_category[finding.category] = finding
            return
        worse = finding if finding.severity.worse_than(old.severity) else old
        self._by_category[finding.category] = Finding(
            category=finding.category,
            severity=worse.severity,
            summary=worse.summary,
            evidence=_unique((*old.evidence, *finding.evidence)),
            subjects=_unique((*old.subjects, *finding.subjects)),
            config_caused=old.config_caused or finding.config_caused,
        )

    def replace(self, finding: Finding) -> None:
        self._by_category[finding.category] = finding

    def result(self) -> list[Finding]:
        return sorted(self._by_category.values(), key=lambda f: (f.severity.rank, _ORDER.get(f.category, 99)))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# ------------------------------------------------------------------------------ pods
@dataclasses.dataclass(frozen=True)
class _Pods:
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
            f"{len(members)} of {self.total} pods {state} ({_listing([_pod_detail(p) for p in members])})"
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


def _classify_pods(snapshot: Snapshot, thresholds: Thresholds) -> _Pods:
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
    return _Pods(
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


def _share_severity(affected: int, total: int) -> Severity:
    """The runbook's rule for a share of pods: all of them is a complete outage (SEV1), half or
    more a partial outage (SEV2), fewer limited impact (SEV3)."""
    if affected >= total:
        return Severity.SEV1
    if 2 * affected >= total:
        return Severity.SEV2
    return Severity.SEV3


def _pod_detail(pod: PodSignal) -> str:
    c = pod.container
    parts: list[str] = []
    if c is not None:
        if c.restart_count:
            parts.append(_plural(c.restart_count, "restart"))
        if c.last_exit_code is not None or c.last_terminated_reason:
            exit_code = "" if c.last_exit_code is None else f" {c.last_exit_code}"
            reason = f" {c.last_terminated_reason}" if c.last_terminated_reason else ""
            parts.append(f"last exit{exit_code}{reason}")
    return f"{pod.name}: {', '.join(parts)}" if parts else pod.name


# ------------------------------------------------------------------------------ step 1: process
@dataclasses.dataclass(frozen=True)
class _Crash:
    tree_continues: bool  # some proxy process runs: steps 2-5 are judged
    severity: Severity | None = None  # of the ProcessCrash finding


def _logs(snapshot: Snapshot, pods: Iterable[PodSignal], cause: LogCause) -> list[LogMatch]:
    names = {p.name for p in pods}
    matches = [m for m in snapshot.logs if m.cause == cause and m.pod in names]
    return sorted(matches, key=lambda m: (m.pod, not m.previous, m.line))


def _log_text(match: LogMatch) -> str:
    where = f"{match.pod} (previous container)" if match.previous else match.pod
    return f'{where}: "{_clip(match.line)}"'


def _log_evidence(label: str, matches: Sequence[LogMatch]) -> list[str]:
    return [f"{label}: {_log_text(m)}" for m in matches[:_LISTED]]


def _finished(pod: PodSignal) -> str:
    c = pod.container
    reason = c.last_terminated_reason if c is not None and c.last_terminated_reason else pod.phase
    return f"{pod.name}: {reason}"


def _config_change_evidence(snapshot: Snapshot, pods: Sequence[PodSignal]) -> list[str]:
    """Why a crash looks caused by the config: a change within :data:`CONFIG_CHANGE_WINDOW` before
    ``observed_at``, crashing pods on a revision that is not the last known good, or a config that
    does not validate."""
    config = snapshot.config
    if config is None:
        return []
    lines: list[str] = []
    if config.changed_at is not None:
        age = _aware(snapshot.observed_at) - _aware(config.changed_at)
        # A change stamped slightly in the future (clock skew) counts as recent.
        if age <= CONFIG_CHANGE_WINDOW:
            revision = f" (revision {config.revision})" if config.revision else ""
            lines.append(f"crash follows a config change {format_duration(max(age, dt.timedelta(0)))} ago{revision}")
    if config.last_known_good is not None:
        revisions = sorted(
            {p.config_revision for p in pods if p.config_revision and p.config_revision != config.last_known_good}
        )
        if revisions:
            lines.append(
                f"crashing pods run config revision {', '.join(revisions)}, "
                f"not the last known good {config.last_known_good}"
            )
    if not config.present:
        lines.append("config not found (the ConfigMap or its key is missing)")
    elif not config.valid:
        lines.append(f"config revision {config.revision or '(unknown)'} does not validate")
    return lines


def _check_processes(snapshot: Snapshot, pods: _Pods, out: _Findings) -> _Crash:
    """Step 1, "Is the proxy process running?"."""
    workload = snapshot.workload
    if not workload.exists:
        out.add(
            Finding(
                Category.PROCESS_CRASH,
                Severity.SEV1,
                "Proxy down: the Deployment the Zentinel points at does not exist",
                evidence=("workload missing: no Deployment runs the proxy",),
            )
        )
        return _Crash(tree_continues=False, severity=Severity.SEV1)
    if workload.desired <= 0 and not pods.live:
        return _Crash(tree_continues=False)  # scaled to zero on purpose
    if not pods.live:
        evidence = [f"0 of {workload.desired} desired pods exist"]
        if pods.finished:
            evidence.append(
                f"{_plural(len(pods.finished), 'pod')} finished ({_listing([_finished(p) for p in pods.finished])})"
            )
        out.add(
            Finding(
                Category.PROCESS_CRASH,
                Severity.SEV1,
                f"Proxy down: no pods exist (0 of {workload.desired} desired)",
                evidence=tuple(evidence),
                subjects=tuple(p.name for p in pods.finished),
            )
        )
        return _Crash(tree_continues=False, severity=Severity.SEV1)

    not_up = (*pods.down, *pods.starting)
    if pods.up:
        if not pods.down:
            return _Crash(tree_continues=True)
        severity = _share_severity(len(pods.down), pods.total)
        states = ", ".join(sorted({pods.state(p) for p in pods.down}))
        summary = f"{len(pods.down)} of {pods.total} Zentinel pods down ({states})"
        affected: Sequence[PodSignal] = pods.down
    else:
        severity = Severity.SEV1
        summary = f"Proxy down: no Zentinel process running (0 of {pods.total} pods)"
        affected = sorted(not_up, key=lambda p: p.name)

    evidence = pods.lines(affected)
    if len(pods.live) < workload.desired:
        evidence.append(f"{len(pods.live)} of {workload.desired} desired pods exist")
    config_logs = _logs(snapshot, affected, LogCause.CONFIG_ERROR)
    evidence += _log_evidence("config error", config_logs)
    evidence += _log_evidence("port conflict (address in use)", _logs(snapshot, affected, LogCause.ADDRESS_IN_USE))
    evidence += _log_evidence("certificate error", _logs(snapshot, affected, LogCause.CERTIFICATE_ERROR))
    evidence += _log_evidence("out of memory", _logs(snapshot, affected, LogCause.OUT_OF_MEMORY))
    change = _config_change_evidence(snapshot, affected)
    evidence += change
    config_caused = bool(config_logs or change)
    if config_logs:
        summary += ": config error"
    elif change:
        summary += ": after a config change"
    out.add(
        Finding(
            Category.PROCESS_CRASH,
            severity,
            summary,
            evidence=tuple(evidence),
            subjects=tuple(p.name for p in affected),
            config_caused=config_caused,
        )
    )

    oom = [p for p in affected if snapshot.oom_killed(p)]
    if oom:
        limit = workload.memory_limit_bytes
        at_limit = f"the {_bytes(limit)} memory limit" if limit else "an unknown memory limit"
        out.add(
            Finding(
                Category.MEMORY_EXHAUSTION,
                _share_severity(len(oom), pods.total),
                f"{len(oom)} of {pods.total} Zentinel pods OOMKilled at {at_limit}",
                evidence=(
                    f"{len(oom)} of {pods.total} pods OOMKilled at {at_limit} "
                    f"({_listing([_pod_detail(p) for p in oom])})",
                ),
                subjects=tuple(p.name for p in oom),
            )
        )

    if config_logs:
        # The crash is the config's doing: the ConfigError finding carries the outage's weight, and is
        # at least SEV2 even while other pods still serve, since every pod that restarts now dies.
        config_severity = severity if severity.worse_than(Severity.SEV2) else Severity.SEV2
        lines = [f"{len(affected)} of {pods.total} pods crash on start with a config error"]
        lines += _log_evidence("config error", config_logs)
        if snapshot.config is not None and snapshot.config.last_known_good:
            lines.append(f"last known good config revision: {snapshot.config.last_known_good}")
        out.add(
            Finding(
                Category.CONFIG_ERROR,
                config_severity,
                f"Config error: {len(affected)} of {pods.total} Zentinel pods fail to load their configuration",
                evidence=tuple(lines),
                subjects=tuple(sorted({m.pod for m in config_logs})),
                config_caused=True,
            )
        )
    return _Crash(tree_continues=bool(pods.up), severity=severity)


# ------------------------------------------------------------------------------ step 2: health
def _check_health(snapshot: Snapshot, pods: _Pods, out: _Findings) -> bool:
    """Step 2, "Is the health endpoint responding?". Zentinel's ``/health`` only proves the process
    is up (which step 1 already knows), so the signals are the pods' readiness and whether the admin
    endpoint answers at all. Returns whether the admin endpoint is unreachable on every running pod."""
    if not pods.ready:
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                Severity.SEV1,
                f"No Zentinel pod Ready: 0 of {pods.total} pods serve traffic",
                evidence=(
                    f"{len(pods.up)} of {pods.total} pods running but not Ready (readiness failing: "
                    f"{_listing([p.name for p in pods.up])}); the Service has no endpoints",
                ),
                subjects=tuple(p.name for p in pods.up),
            )
        )
    elif pods.not_ready:
        n = len(pods.not_ready)
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                _share_severity(n, pods.total),
                f"{n} of {pods.total} Zentinel pods running but not Ready",
                evidence=(
                    f"{n} of {pods.total} pods running but not Ready (readiness failing: "
                    f"{_listing([p.name for p in pods.not_ready])})",
                ),
                subjects=tuple(p.name for p in pods.not_ready),
            )
        )

    metrics, upstreams = snapshot.metrics, snapshot.upstreams
    admin_down = (
        metrics is not None
        and not metrics.available
        and metrics.pods_scraped == 0
        and metrics.pods_failed > 0
        and metrics.pods_failed >= len(pods.up)
        and (upstreams is None or not upstreams.available)
    )
    if admin_down:
        assert metrics is not None
        # SEV2, not SEV1: the kubelet still finds these pods Ready, and a NetworkPolicy or a wrong
        # admin port explains an unreachable admin endpoint as well as a hung proxy does. Pods that
        # are not Ready are already judged above on their own.
        lines = [
            f"admin endpoint unreachable on every running pod ({metrics.pods_failed} of "
            f"{metrics.pods_failed + metrics.pods_scraped} metrics scrapes failed"
            + (f": {_clip(metrics.error)})" if metrics.error else ")")
        ]
        if upstreams is not None and upstreams.error:
            lines.append(f"/admin/upstreams unreachable: {_clip(upstreams.error)}")
        out.add(
            Finding(
                Category.HEALTH_CHECK_FAILURE,
                Severity.SEV2,
                "Zentinel admin endpoint unreachable on every running pod",
                evidence=tuple(lines),
                subjects=tuple(p.name for p in pods.up),
            )
        )
    return admin_down


# ------------------------------------------------------------------------------ step 3: upstreams
def _target_text(target: TargetSignal) -> str:
    text = target.address
    if target.failure_rate is not None and math.isfinite(target.failure_rate):
        text += f" failure rate {_pct(target.failure_rate)}"
    if target.last_error:
        text += f": {_clip(target.last_error)}"
    return text


@dataclasses.dataclass(frozen=True)
class _Upstream:
    upstream: str
    total: int
    bad: tuple[TargetSignal, ...]
    severity: Severity | None

    @property
    def headline(self) -> str:
        return f"{self.upstream}: {len(self.bad)} of {self.total} targets unhealthy"

    @property
    def line(self) -> str:
        return f"upstream {self.headline} ({_listing([_target_text(t) for t in self.bad])})"


def _check_upstreams(snapshot: Snapshot, thresholds: Thresholds, out: _Findings) -> None:
    """Step 3, "Are all upstreams healthy?", from ``/admin/upstreams``. ``unknown`` targets (no
    health check yet) count as neither healthy nor unhealthy, but stay in the denominator."""
    upstreams = snapshot.upstreams
    if upstreams is None or not upstreams.available:
        return
    ids = upstreams.upstream_ids()
    sick: list[_Upstream] = []
    for upstream in ids:
        targets = upstreams.targets_of(upstream)
        bad = tuple(sorted((t for t in targets if t.status == TargetStatus.UNHEALTHY), key=lambda t: t.address))
        if bad:
            share = len(bad) / len(targets)
            severity = ladder_severity(share, thresholds.unhealthy_upstream_share, higher_is_worse=True, inclusive=True)
            sick.append(_Upstream(upstream, len(targets), bad, severity))
    everything_down = bool(ids) and len(ids) == sum(1 for u in sick if len(u.bad) == u.total)
    judged = sorted(
        (u for u in sick if u.severity is not None or everything_down),
        key=lambda u: (u.severity.rank if u.severity else 9, -len(u.bad) / u.total, u.upstream),
    )
    if not judged:
        return
    worst = judged[0]
    if everything_down:
        severity = Severity.SEV1
        summary = f"All upstreams unreachable: every target of {_plural(len(ids), 'upstream')} unhealthy"
    else:
        assert worst.severity is not None
        severity = worst.severity
        summary = f"Upstream {worst.headline}"
        if len(judged) > 1:
            summary = f"{len(judged)} upstreams with unhealthy targets, worst {worst.headline}"
    out.add(
        Finding(
            Category.UPSTREAM_FAILURE,
            severity,
            summary,
            evidence=tuple(u.line for u in judged),
            subjects=tuple(f"{t.upstream}/{t.address}" for u in judged for t in u.bad),
        )
    )


def _check_circuit_breakers(snapshot: Snapshot, out: _Findings) -> None:
    """Open circuit breakers explain 503s: evidence for Upstream Failure, or for High Error Rate."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available or not metrics.circuit_breakers_open:
        return
    if metrics.circuit_breakers_open <= 0:
        return
    line = (
        f"{_plural(metrics.circuit_breakers_open, 'circuit breaker')} open "
        "(Zentinel answers 503 on the routes behind them)"
    )
    for category in (Category.UPSTREAM_FAILURE, Category.HIGH_ERROR_RATE):
        finding = out.get(category)
        if finding is not None:
            out.replace(dataclasses.replace(finding, evidence=_unique((*finding.evidence, line))))
            return


# ------------------------------------------------------------------------------ steps 4 and 5
def _enough_requests(metrics: MetricsSignal, thresholds: Thresholds) -> bool:
    requests = metrics.requests
    return requests is not None and math.isfinite(requests) and requests > 0 and requests >= thresholds.min_requests


def _threshold_text(ladder: Ladder, severity: Severity, fmt: Callable[[float], str]) -> str:
    """`` (above the SEV2 threshold of 10%)``: the rung that was crossed, as the policy sets it."""
    value: float | None = getattr(ladder, severity.value.lower())
    return "" if value is None else f" (above the {severity.value} threshold of {fmt(value)})"


def _check_errors_and_latency(snapshot: Snapshot, thresholds: Thresholds, out: _Findings) -> None:
    """Step 4, "Is error rate elevated?", then step 5, its "otherwise": Performance Degradation."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available:
        return
    judged = _enough_requests(metrics, thresholds)
    evidence: list[str] = []
    candidates: list[tuple[Severity, str]] = []

    errors = metrics.errors
    # More errors than requests is bad data (a counter reset between two scrapes), not an outage.
    if judged and errors is not None and math.isfinite(errors) and 0 <= errors <= (metrics.requests or 0):
        assert metrics.requests is not None
        rate = errors / metrics.requests
        proxy = sorted(
            (code.removeprefix("proxy_error_"), count)
            for code, count in metrics.proxy_errors.items()
            if math.isfinite(count) and count > 0
        )
        breakdown = "".join(f"; {_count(count)} proxy_error_{code}" for code, count in proxy)
        over = _over(metrics)
        evidence.append(
            f"5xx rate {_pct(rate)}{over} ({_count(metrics.errors)} of {_count(metrics.requests)} requests{breakdown})"
        )
        evidence += [
            f"proxy_error_{code}: {_PROXY_ERROR_NOTES[code]}" for code, _ in proxy if code in _PROXY_ERROR_NOTES
        ]
        severity = ladder_severity(rate, thresholds.error_rate, higher_is_worse=True)
        if severity is not None:
            candidates.append(
                (severity, f"5xx rate {_pct(rate)}{_threshold_text(thresholds.error_rate, severity, _pct)}")
            )

    failing = sorted(
        (
            r
            for r in metrics.routes
            if math.isfinite(r.requests)
            and r.requests > 0
            and r.requests >= thresholds.min_requests
            and r.error_rate > thresholds.failing_route_error_rate
        ),
        key=lambda r: (-r.error_rate, r.route),
    )
    if failing:
        routes = _listing(
            [f"{r.route} {_pct(r.error_rate)} ({_count(r.errors)} of {_count(r.requests)})" for r in failing]
        )
        evidence.append(
            f"{_plural(len(failing), 'route')} failing (5xx above {_pct(thresholds.failing_route_error_rate)}): "
            f"{routes}"
        )
        severity = ladder_severity(len(failing), thresholds.failing_routes, higher_is_worse=True, inclusive=True)
        if severity is not None:
            candidates.append((severity, f"{_plural(len(failing), 'route')} failing"))

    if candidates and not failing:
        # The runbook's first command: "Identify error distribution by route".
        top = [r for r in metrics.routes if math.isfinite(r.errors) and r.errors > 0][:3]
        if top:
            evidence.append(
                "errors by route: "
                + _listing(
                    [f"{r.route} {_pct(r.error_rate)} ({_count(r.errors)} of {_count(r.requests)})" for r in top]
                )
            )

    latency = _latency(metrics, thresholds)
    if candidates:
        candidates.sort(key=lambda c: c[0].rank)
        severity, summary = candidates[0]
        if latency is not None:
            # Elevated latency is a listed symptom of High Error Rate: one incident, at the worse level.
            evidence.append(latency[1])
            if latency[0].worse_than(severity):
                severity = latency[0]
        out.add(
            Finding(
                Category.HIGH_ERROR_RATE,
                severity,
                f"High error rate: {summary}",
                evidence=tuple(evidence),
                subjects=tuple(r.route for r in failing),
            )
        )
    elif latency is not None:
        out.add(
            Finding(
                Category.PERFORMANCE_DEGRADATION,
                latency[0],
                f"Elevated latency: {latency[2]}",
                evidence=(latency[1],),
            )
        )


def _latency(metrics: MetricsSignal, thresholds: Thresholds) -> tuple[Severity, str, str] | None:
    """(severity, evidence, summary) for p99 latency. A p99 over a handful of requests is noise, so
    latency is not judged when the interval is known to hold fewer than ``min_requests`` requests."""
    p99 = metrics.latency_p99_seconds
    if p99 is None or not math.isfinite(p99):
        return None
    if metrics.requests is not None and not _enough_requests(metrics, thresholds):
        return None
    severity = ladder_severity(p99, thresholds.latency_p99_seconds, higher_is_worse=True)
    if severity is None:
        return None
    over = _over(metrics)
    basis = f" ({_count(metrics.requests)} requests)" if metrics.requests is not None else ""
    threshold = _threshold_text(thresholds.latency_p99_seconds, severity, _seconds)
    return (
        severity,
        f"p99 latency {_seconds(p99)}{over}{basis}",
        f"p99 {_seconds(p99)}{threshold}",
    )


# ------------------------------------------------------------------------------ observability
def _check_observability(snapshot: Snapshot, admin_down: bool, out: _Findings) -> None:
    """Bad data becomes a SEV4 finding, never a crash: metrics or ``/admin/upstreams`` that could not
    be read while the proxy runs. When neither answers on any pod, step 2 has already said so."""
    if admin_down:
        return
    lines: list[str] = []
    unseen: list[str] = []
    metrics, upstreams = snapshot.metrics, snapshot.upstreams
    if metrics is not None and not metrics.available:
        unseen.append("error rates, latency or memory")
        scraped = metrics.pods_failed + metrics.pods_scraped
        failed = f" ({metrics.pods_failed} of {scraped} pods failed)" if metrics.pods_failed else ""
        reason = f": {_clip(metrics.error)}" if metrics.error else ""
        lines.append(f"metrics unavailable{reason}{failed}")
    if upstreams is not None and not upstreams.available:
        unseen.append("upstream health")
        reason = f": {_clip(upstreams.error)}" if upstreams.error else ""
        lines.append(f"/admin/upstreams unavailable{reason}")
    if lines:
        out.add(
            Finding(
                Category.METRICS_UNAVAILABLE,
                Severity.SEV4,
                "Metrics unavailable: triage cannot see " + " or ".join(unseen),
                evidence=tuple(lines),
            )
        )


# ------------------------------------------------------------------------------ memory
def _check_memory_usage(snapshot: Snapshot, thresholds: Thresholds, out: _Findings) -> None:
    metrics = snapshot.metrics
    limit = snapshot.workload.memory_limit_bytes
    if metrics is None or not metrics.available or metrics.memory_bytes is None or not limit or limit <= 0:
        return
    if not math.isfinite(metrics.memory_bytes):
        return
    share = metrics.memory_bytes / limit
    severity = ladder_severity(share, thresholds.memory_share_of_limit, higher_is_worse=True)
    if severity is None:
        return
    lines = [f"memory {_bytes(metrics.memory_bytes)} of {_bytes(limit)} limit ({_pct(share)}) on the largest pod"]
    if metrics.open_connections is not None and math.isfinite(metrics.open_connections):
        lines.append(f"{_count(metrics.open_connections)} open connections")
    threshold = _threshold_text(thresholds.memory_share_of_limit, severity, _pct)
    out.add(
        Finding(
            Category.MEMORY_EXHAUSTION,
            severity,
            f"Memory at {_pct(share)} of the {_bytes(limit)} limit{threshold}",
            evidence=tuple(lines),
        )
    )


# ------------------------------------------------------------------------------ config
def _check_config(snapshot: Snapshot, pods: _Pods, crash: _Crash, out: _Findings) -> None:
    """A config that does not validate (or is missing), and reloads Zentinel rejected.

    Zentinel validates a changed config before using it and keeps serving the old one when the new one
    is bad, so an invalid config with every pod running is SEV3: nothing is broken yet, but any pod
    that restarts now reads the bad file and exits. With pods crash-looping it is the cause of an
    outage: at least SEV2, and as severe as the crash when that is worse (a whole fleet down on a bad
    config is SEV1, and the rollback is the fix).
    """
    config = snapshot.config
    lines: list[str] = []
    if config is not None and not config.present:
        lines.append("config not found: the ConfigMap or its key is missing")
    elif config is not None and not config.valid:
        errors = _listing([_clip(e) for e in config.errors], sep="; ") if config.errors else "no details"
        lines.append(f"config revision {config.revision or '(unknown)'} does not validate: {errors}")
    if lines:
        assert config is not None
        if pods.down and crash.severity is not None:
            severity = crash.severity if crash.severity.worse_than(Severity.SEV2) else Severity.SEV2
            lines.append(f"{len(pods.down)} of {pods.total} pods crash-looping on it")
        else:
            severity = Severity.SEV3
            if pods.up:
                running = sorted({p.config_revision for p in pods.up if p.config_revision})
                on = f" (revision {', '.join(running)})" if running else ""
                lines.append(
                    f"{len(pods.up)} of {pods.total} pods keep serving the previous config{on}; "
                    "a pod that restarts now would fail to start"
                )
        if config.last_known_good:
            lines.append(f"last known good config revision: {config.last_known_good}")
        summary = (
            "Config missing: the Zentinel's ConfigMap or key does not exist"
            if not config.present
            else f"Config error: revision {config.revision or '(unknown)'} does not validate"
        )
        out.add(Finding(Category.CONFIG_ERROR, severity, summary, evidence=tuple(lines), config_caused=True))

    rejected = _logs(snapshot, pods.up, LogCause.CONFIG_REJECTED)
    if rejected:
        out.add(
            Finding(
                Category.CONFIG_ERROR,
                Severity.SEV3,
                "Config reload rejected: Zentinel keeps serving the previous config",
                evidence=tuple(_log_evidence("config reload REJECTED, the old config keeps serving", rejected)),
                subjects=tuple(sorted({m.pod for m in rejected})),
                config_caused=True,
            )
        )


# ------------------------------------------------------------------------------ certificates
def _days_left(cert: CertificateSignal, now: dt.datetime) -> float | None:
    if cert.days_left is not None and math.isfinite(cert.days_left):
        return cert.days_left
    if cert.not_after is not None:  # days_left unknown or not a number: count from not_after
        return (_aware(cert.not_after) - _aware(now)).total_seconds() / 86400
    return None


def _expiry_text(days: float, cert: CertificateSignal) -> str:
    when = f" (not after {_aware(cert.not_after).strftime('%Y-%m-%d %H:%M UTC')})" if cert.not_after else ""
    span = format_duration(dt.timedelta(days=abs(days)))
    if days < 0:
        return f"expired {span} ago{when}"
    if days == 0:
        return f"expired{when}"
    return f"expires in {span}{when}"


def _check_certificates(snapshot: Snapshot, thresholds: Thresholds, out: _Findings) -> None:
    """CertificateInvalid (SEV2; SEV1 when the certificate has also expired) and CertificateExpiring
    (days left on ``certificate_days_left``, lower is worse; 0 days or fewer is expired)."""
    for cert in sorted(snapshot.certificates, key=lambda c: (c.name, c.secret)):
        label = f"certificate {cert.name} (Secret {cert.secret})"
        days = _days_left(cert, snapshot.observed_at)
        problems: list[str] = []
        if not cert.present:
            problems.append("Secret missing")
        if cert.error:
            problems.append(_clip(cert.error))
        if cert.key_matches is False:
            problems.append("private key does not match the certificate")
        if cert.chain_valid is False:
            problems.append("chain does not verify" + (f": {_clip(cert.chain_error)}" if cert.chain_error else ""))
        # During a rollout the old pods serve the old certificate until they are replaced: that is
        # how a rotation under RollingRestart lands, not a fault (judged once the rollout is done).
        if cert.served_matches is False and not snapshot.workload.rolling_out:
            problems.append("the listener serves a different certificate (not reloaded?)")
        if problems:
            evidence = [f"{label}: {'; '.join(problems)}"]
            expired = days is not None and days <= 0
            if days is not None and expired:
                evidence.append(f"{label}: {_expiry_text(days, cert)}")
            out.add(
                Finding(
                    Category.CERTIFICATE_INVALID,
                    Severity.SEV1 if expired else Severity.SEV2,
                    f"Certificate {cert.name} invalid: {problems[0]}" + (" (and expired)" if expired else ""),
                    evidence=tuple(evidence),
                    subjects=(cert.name,),
                )
            )
        if days is None:
            continue
        severity = ladder_severity(days, thresholds.certificate_days_left, higher_is_worse=False)
        if severity is None:
            continue
        text = _expiry_text(days, cert)
        out.add(
            Finding(
                Category.CERTIFICATE_EXPIRING,
                severity,
                f"Certificate {cert.name} {text.split(' (', 1)[0]}",
                evidence=(f"{label}: {text}",),
                subjects=(cert.name,),
            )
        )


# ------------------------------------------------------------------------------ traffic
def _check_traffic(snapshot: Snapshot, thresholds: Thresholds, out: _Findings) -> None:
    """Request rate over its slow-moving baseline. Not judged on an interval with fewer than
    ``min_requests`` requests (a tiny baseline makes any trickle look like a spike)."""
    metrics = snapshot.metrics
    if metrics is None or not metrics.available:
        return
    rps, baseline = metrics.requests_per_second, metrics.baseline_requests_per_second
    if rps is None or baseline is None or not math.isfinite(rps) or not math.isfinite(baseline) or baseline <= 0:
        return
    if metrics.requests is not None and not _enough_requests(metrics, thresholds):
        return
    factor = rps / baseline
    severity = ladder_severity(factor, thresholds.traffic_spike_factor, higher_is_worse=True)
    if severity is None:
        return
    threshold = _threshold_text(thresholds.traffic_spike_factor, severity, _factor)
    out.add(
        Finding(
            Category.TRAFFIC_SPIKE,
            severity,
            f"Traffic spike: {_factor(factor)} the usual request rate{threshold}",
            evidence=(f"{_rate(rps)} req/s against a baseline of {_rate(baseline)} req/s ({_factor(factor)})",),
        )
    )


# ------------------------------------------------------------------------------ formatting
def _aware(when: dt.datetime) -> dt.datetime:
    """Naive timestamps are taken as UTC, so that comparing them never raises."""
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _listing(items: Sequence[str], *, sep: str = "; ") -> str:
    shown = sep.join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown}{sep}and {len(items) - _LISTED} more"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LOG_CHARS else text[: _LOG_CHARS - 1] + "…"


def _count(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{round(value):,}"


def _pct(share: float) -> str:
    """12.4%, 80%, 1.01%, 0.05%: three significant digits."""
    if not math.isfinite(share):
        return "?%"
    value = share * 100
    if value == 0:
        return "0%"
    if abs(value) < 0.01:
        return "<0.01%"
    return f"{value:.3g}%" if abs(value) < 1000 else f"{value:,.0f}%"


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}".rstrip("0").rstrip(".") + "s"


def _over(metrics: MetricsSignal) -> str:
    """`` over 60s`` (the scrape interval the rates cover), or nothing when it is not known."""
    seconds = metrics.interval_seconds
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return ""
    whole = round(seconds)
    return f" over {whole}s" if whole < 120 else f" over {format_duration(dt.timedelta(seconds=whole))}"


def _factor(value: float) -> str:
    return f"{value:.3g}x" if value < 1000 else f"{value:,.0f}x"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def _bytes(value: float) -> str:
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    return f"{value:.0f}B"
