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

One module per procedure: ``crash`` (step 1), ``health`` (step 2), ``upstreams`` (step 3), ``errors``
(steps 4 and 5), then ``memory``, ``config``, ``certificates``, ``traffic`` and ``observability``.
What they share: ``pods`` (the pods sorted into up, down, starting...), ``findings`` (ladders, the
tree's order, one finding per category) and ``fmt`` (how numbers and lists are worded).
"""

from __future__ import annotations

from ...models.policy import Thresholds
from ..snapshot import Finding, Snapshot
from .certificates import check_certificates
from .config import check_config
from .crash import CONFIG_CHANGE_WINDOW, check_processes
from .errors import check_errors_and_latency
from .findings import Findings, Health, ladder_severity, overall_health
from .health import check_health
from .memory import check_memory_usage
from .observability import check_observability
from .pods import classify_pods
from .traffic import check_traffic
from .upstreams import check_circuit_breakers, check_upstreams

__all__ = [
    "CONFIG_CHANGE_WINDOW",
    "Health",
    "ladder_severity",
    "overall_health",
    "triage",
]


def triage(snapshot: Snapshot, thresholds: Thresholds) -> list[Finding]:
    """Walk the runbook's decision tree over ``snapshot``.

    At most one finding per category, worst severity first (ties in the tree's order).
    """
    out = Findings()
    pods = classify_pods(snapshot, thresholds)
    crash = check_processes(snapshot, pods, out)
    if crash.tree_continues:
        admin_down = check_health(snapshot, pods, out)
        check_upstreams(snapshot, thresholds, out)
        check_errors_and_latency(snapshot, thresholds, out)
        check_circuit_breakers(snapshot, out)
        check_observability(snapshot, admin_down, out)
    check_memory_usage(snapshot, thresholds, out)
    check_config(snapshot, pods, crash, out)
    check_certificates(snapshot, thresholds, out)
    check_traffic(snapshot, thresholds, out)
    return out.result()
