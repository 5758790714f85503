"""Step 1 of the tree, "Is the proxy process running?": Process Crash, and the Memory Exhaustion
and Config Error a crash reveals."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from ...models.common import Category, Severity
from ..durations import format_duration
from ..snapshot import Finding, LogCause, PodSignal, Snapshot
from . import fmt
from .findings import Findings
from .pods import Pods, log_evidence, logs, pod_detail, share_severity

#: A crash within this long after the config changed is taken as caused by the change.
CONFIG_CHANGE_WINDOW = dt.timedelta(minutes=15)


@dataclasses.dataclass(frozen=True)
class Crash:
    tree_continues: bool  # some proxy process runs: steps 2-5 are judged
    severity: Severity | None = None  # of the ProcessCrash finding


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
        age = fmt.aware(snapshot.observed_at) - fmt.aware(config.changed_at)
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


def check_processes(snapshot: Snapshot, pods: Pods, out: Findings) -> Crash:
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
        return Crash(tree_continues=False, severity=Severity.SEV1)
    if workload.desired <= 0 and not pods.live:
        return Crash(tree_continues=False)  # scaled to zero on purpose
    if not pods.live:
        evidence = [f"0 of {workload.desired} desired pods exist"]
        if pods.finished:
            finished = fmt.listing([_finished(p) for p in pods.finished])
            evidence.append(f"{fmt.plural(len(pods.finished), 'pod')} finished ({finished})")
        out.add(
            Finding(
                Category.PROCESS_CRASH,
                Severity.SEV1,
                f"Proxy down: no pods exist (0 of {workload.desired} desired)",
                evidence=tuple(evidence),
                subjects=tuple(p.name for p in pods.finished),
            )
        )
        return Crash(tree_continues=False, severity=Severity.SEV1)

    not_up = (*pods.down, *pods.starting)
    if pods.up:
        if not pods.down:
            return Crash(tree_continues=True)
        severity = share_severity(len(pods.down), pods.total)
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
    config_logs = logs(snapshot, affected, LogCause.CONFIG_ERROR)
    evidence += log_evidence("config error", config_logs)
    evidence += log_evidence("port conflict (address in use)", logs(snapshot, affected, LogCause.ADDRESS_IN_USE))
    evidence += log_evidence("certificate error", logs(snapshot, affected, LogCause.CERTIFICATE_ERROR))
    evidence += log_evidence("out of memory", logs(snapshot, affected, LogCause.OUT_OF_MEMORY))
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
        at_limit = f"the {fmt.size(limit)} memory limit" if limit else "an unknown memory limit"
        out.add(
            Finding(
                Category.MEMORY_EXHAUSTION,
                share_severity(len(oom), pods.total),
                f"{len(oom)} of {pods.total} Zentinel pods OOMKilled at {at_limit}",
                evidence=(
                    f"{len(oom)} of {pods.total} pods OOMKilled at {at_limit} "
                    f"({fmt.listing([pod_detail(p) for p in oom])})",
                ),
                subjects=tuple(p.name for p in oom),
            )
        )

    if config_logs:
        # The crash is the config's doing: the ConfigError finding carries the outage's weight, and is
        # at least SEV2 even while other pods still serve, since every pod that restarts now dies.
        config_severity = severity if severity.worse_than(Severity.SEV2) else Severity.SEV2
        lines = [f"{len(affected)} of {pods.total} pods crash on start with a config error"]
        lines += log_evidence("config error", config_logs)
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
    return Crash(tree_continues=bool(pods.up), severity=severity)
