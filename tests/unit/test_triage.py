"""The runbook's triage tree over one snapshot (zentinel_operator.core.triage).

Thresholds come from a policy object parsed the way the API server hands it over (camelCase), so a
test that passes with CUSTOM proves the number came from the policy, not from a constant.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import pytest

from zentinel_operator.core.snapshot import (
    CertificateSignal,
    ConfigSignal,
    ContainerSignal,
    Finding,
    LogCause,
    LogMatch,
    MetricsSignal,
    PodSignal,
    RouteSignal,
    Snapshot,
    TargetSignal,
    TargetStatus,
    UpstreamsSignal,
    WorkloadSignal,
)
from zentinel_operator.core.triage import ladder_severity, overall_health, triage
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.policy import Ladder, Thresholds, ZentinelIncidentPolicySpec

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
MI = 1024 * 1024

SEV1, SEV2, SEV3, SEV4 = Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4
C = Category


# ------------------------------------------------------------------------------ builders
def policy_thresholds(**thresholds: Any) -> Thresholds:
    """Thresholds as a ZentinelIncidentPolicy spec carries them (camelCase keys)."""
    return ZentinelIncidentPolicySpec.model_validate({"thresholds": thresholds}).thresholds


DEFAULT = policy_thresholds()  # an empty policy: the runbook's numbers
CUSTOM = policy_thresholds(
    errorRate={"sev2": 0.30, "sev3": 0.05},
    minRequests=100,
    failingRouteErrorRate=0.2,
    failingRoutes={"sev2": 3, "sev3": 1},
    latencyP99Seconds={"sev3": 0.25},
    memoryShareOfLimit={"sev2": 0.7},
    unhealthyUpstreamShare={"sev2": 0.6, "sev3": 0.4},
    certificateDaysLeft={"sev2": 14},
    trafficSpikeFactor={"sev3": 2},
    restartsForCrashLoop=5,
)


def pod(
    name: str,
    *,
    ready: bool = True,
    running: bool = True,
    phase: str = "Running",
    restarts: int = 0,
    waiting: str | None = None,
    reason: str | None = None,
    exit_code: int | None = None,
    growth: int = 0,
    revision: str | None = None,
    deleting: bool = False,
) -> PodSignal:
    return PodSignal(
        name=name,
        ip="10.0.0.1",
        phase=phase,
        ready=ready,
        deleting=deleting,
        container=ContainerSignal(
            name="zentinel",
            ready=ready,
            running=running,
            restart_count=restarts,
            waiting_reason=waiting,
            last_terminated_reason=reason,
            last_exit_code=exit_code,
        ),
        restart_growth=growth,
        config_revision=revision,
    )


def crashlooping(
    name: str, *, restarts: int = 5, reason: str | None = "Error", exit_code: int | None = 1, **kw: Any
) -> PodSignal:
    return pod(
        name,
        ready=False,
        running=False,
        restarts=restarts,
        waiting="CrashLoopBackOff",
        reason=reason,
        exit_code=exit_code,
        **kw,
    )


def oom(name: str, **kw: Any) -> PodSignal:
    return crashlooping(name, reason="OOMKilled", exit_code=137, **kw)


def healthy(n: int = 3) -> tuple[PodSignal, ...]:
    return tuple(pod(f"edge-{chr(ord('a') + i)}") for i in range(n))


def metrics(**kw: Any) -> MetricsSignal:
    values: dict[str, Any] = {
        "available": True,
        "pods_scraped": 3,
        "interval_seconds": 60.0,
        "requests": 10_000.0,
        "errors": 0.0,
        "latency_p99_seconds": 0.1,
    }
    values.update(kw)
    return MetricsSignal(**values)


def target(upstream: str, address: str, status: str = "healthy", **kw: Any) -> TargetSignal:
    return TargetSignal(upstream=upstream, address=address, status=TargetStatus(status), **kw)


def upstreams(*targets: TargetSignal) -> UpstreamsSignal:
    return UpstreamsSignal(available=True, targets=targets)


def upstream(name: str, unhealthy: int, total: int) -> tuple[TargetSignal, ...]:
    """``total`` targets of ``name``, the first ``unhealthy`` of them unhealthy."""
    return tuple(
        target(name, f"10.0.9.{i}:80", "unhealthy" if i < unhealthy else "healthy", failure_rate=1.0)
        for i in range(total)
    )


def cert(days: float | None = None, **kw: Any) -> CertificateSignal:
    values: dict[str, Any] = {"name": "edge-tls", "secret": "edge-tls", "present": True, "days_left": days}
    values.update(kw)
    return CertificateSignal(**values)


def route(name: str, requests: float, errors: float) -> RouteSignal:
    return RouteSignal(route=name, requests=requests, errors=errors)


def log(pod_name: str, cause: LogCause, line: str, *, previous: bool = True) -> LogMatch:
    return LogMatch(pod=pod_name, container="zentinel", previous=previous, cause=cause, line=line)


def snap(
    *,
    pods: tuple[PodSignal, ...] | list[PodSignal] | None = None,
    desired: int | None = None,
    exists: bool = True,
    rolling_out: bool = False,
    memory_limit: int | None = None,
    **kw: Any,
) -> Snapshot:
    pod_list = healthy() if pods is None else tuple(pods)
    return Snapshot(
        namespace="edge",
        zentinel="edge",
        observed_at=T0,
        workload=WorkloadSignal(
            exists=exists,
            desired=len(pod_list) if desired is None else desired,
            rolling_out=rolling_out,
            memory_limit_bytes=memory_limit,
        ),
        pods=pod_list,
        **kw,
    )


def by_category(findings: list[Finding]) -> dict[Category, Finding]:
    result = {f.category: f for f in findings}
    assert len(result) == len(findings), "at most one finding per category"
    return result


def severity_of(findings: list[Finding], category: Category) -> Severity | None:
    found = by_category(findings).get(category)
    return found.severity if found else None


def one(findings: list[Finding], category: Category) -> Finding:
    assert [f.category for f in findings] == [category], findings
    return findings[0]


# ------------------------------------------------------------------------------ ladder_severity
@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.01, None), (0.0101, SEV3), (0.10, SEV3), (0.1001, SEV2), (0.95, SEV2), (0.9501, SEV1), (1.0, SEV1)],
)
def test_ladder_higher_is_worse_is_crossed_strictly_above(value: float, expected: Severity | None) -> None:
    assert ladder_severity(value, DEFAULT.error_rate, higher_is_worse=True) == expected


@pytest.mark.parametrize(
    ("days", "expected"),
    [(31, None), (30.01, None), (30, SEV4), (7.01, SEV4), (7, SEV3), (3.01, SEV3), (3, SEV2), (0.01, SEV2), (0, SEV1)],
)
def test_ladder_lower_is_worse_is_crossed_at_or_below(days: float, expected: Severity | None) -> None:
    assert ladder_severity(days, DEFAULT.certificate_days_left, higher_is_worse=False) == expected
    assert ladder_severity(-5, DEFAULT.certificate_days_left, higher_is_worse=False) == SEV1


def test_ladder_inclusive_counts_the_rung_itself() -> None:
    ladder = Ladder(sev2=2, sev3=1)
    assert ladder_severity(2, ladder, higher_is_worse=True) == SEV3
    assert ladder_severity(2, ladder, higher_is_worse=True, inclusive=True) == SEV2
    assert ladder_severity(0.99, ladder, higher_is_worse=True, inclusive=True) is None


def test_ladder_skips_unset_rungs_and_nan() -> None:
    ladder = Ladder(sev3=1.0)
    assert ladder_severity(100, ladder, higher_is_worse=True) == SEV3
    assert ladder_severity(math.nan, ladder, higher_is_worse=True) is None
    assert ladder_severity(math.nan, DEFAULT.certificate_days_left, higher_is_worse=False) is None
    assert ladder_severity(5, Ladder(), higher_is_worse=True) is None


def test_ladder_returns_the_worst_rung_crossed_even_when_rungs_are_out_of_order() -> None:
    ladder = Ladder(sev1=10, sev2=50)  # a policy that got the order wrong
    assert ladder_severity(60, ladder, higher_is_worse=True) == SEV1
    assert ladder_severity(20, ladder, higher_is_worse=True) == SEV1
    assert ladder_severity(5, ladder, higher_is_worse=True) is None


# ------------------------------------------------------------------------------ overall_health
def test_overall_health() -> None:
    f = Finding
    assert overall_health([]) == "Healthy"
    assert overall_health([f(C.PERFORMANCE_DEGRADATION, SEV3, "slow")]) == "Degraded"
    assert overall_health([f(C.UPSTREAM_FAILURE, SEV3, "x"), f(C.PROCESS_CRASH, SEV1, "down")]) == "Down"
    assert overall_health([f(C.METRICS_UNAVAILABLE, SEV4, "blind")]) == "Unknown"
    assert overall_health([f(C.METRICS_UNAVAILABLE, SEV4, "blind"), f(C.TRAFFIC_SPIKE, SEV3, "x")]) == "Degraded"
    assert overall_health(iter([f(C.CERTIFICATE_EXPIRING, SEV1, "expired")])) == "Down"


# ------------------------------------------------------------------------------ the runbook's severity table
HEALTHY_UPSTREAMS = upstreams(*upstream("api", 0, 3), *upstream("auth", 0, 2))

SEVERITY_TABLE = [
    pytest.param(
        snap(pods=[crashlooping("edge-a"), crashlooping("edge-b"), crashlooping("edge-c")]),
        C.PROCESS_CRASH,
        SEV1,
        id="SEV1 proxy down",
    ),
    pytest.param(
        snap(metrics=metrics(), upstreams=upstreams(*upstream("api", 3, 3), *upstream("auth", 2, 2))),
        C.UPSTREAM_FAILURE,
        SEV1,
        id="SEV1 all upstreams unreachable",
    ),
    pytest.param(snap(metrics=metrics(errors=1_100.0)), C.HIGH_ERROR_RATE, SEV2, id="SEV2 more than 10% errors"),
    pytest.param(
        snap(metrics=metrics(errors=120.0, routes=(route("api", 100, 60), route("web", 100, 60)))),
        C.HIGH_ERROR_RATE,
        SEV2,
        id="SEV2 multiple routes failing",
    ),
    pytest.param(
        snap(metrics=metrics(latency_p99_seconds=2.0)), C.PERFORMANCE_DEGRADATION, SEV3, id="SEV3 elevated latency"
    ),
    pytest.param(
        snap(metrics=metrics(), upstreams=upstreams(*upstream("api", 1, 3), *upstream("auth", 0, 2))),
        C.UPSTREAM_FAILURE,
        SEV3,
        id="SEV3 single upstream unhealthy",
    ),
    pytest.param(snap(metrics=metrics(errors=200.0)), C.HIGH_ERROR_RATE, SEV3, id="SEV3 more than 1% errors"),
    pytest.param(
        snap(metrics=metrics(latency_p99_seconds=0.7)), C.PERFORMANCE_DEGRADATION, SEV4, id="SEV4 minor latency"
    ),
    pytest.param(snap(certificates=(cert(20),)), C.CERTIFICATE_EXPIRING, SEV4, id="SEV4 certificate in 20 days"),
    pytest.param(
        snap(metrics=MetricsSignal(available=False, error="parse error")),
        C.METRICS_UNAVAILABLE,
        SEV4,
        id="SEV4 metrics unavailable",
    ),
]


@pytest.mark.parametrize(("snapshot", "category", "severity"), SEVERITY_TABLE)
def test_runbook_severity_table(snapshot: Snapshot, category: Category, severity: Severity) -> None:
    findings = triage(snapshot, DEFAULT)
    assert one(findings, category).severity == severity


def test_healthy_zentinel_has_no_findings() -> None:
    s = snap(
        metrics=metrics(memory_bytes=100.0 * MI, requests_per_second=160.0, baseline_requests_per_second=150.0),
        upstreams=HEALTHY_UPSTREAMS,
        certificates=(cert(60, key_matches=True, chain_valid=True, served_matches=True),),
        config=ConfigSignal(present=True, revision="r1", last_known_good="r1"),
        memory_limit=512 * MI,
    )
    findings = triage(s, DEFAULT)
    assert findings == []
    assert overall_health(findings) == "Healthy"


# ------------------------------------------------------------------------------ step 1: process
def test_workload_missing_is_a_complete_outage_and_stops_the_tree() -> None:
    s = snap(exists=False, pods=[], desired=0, metrics=MetricsSignal(available=False, error="no pods"))
    f = one(triage(s, DEFAULT), C.PROCESS_CRASH)
    assert f.severity == SEV1
    assert "workload missing" in " ".join(f.evidence)


def test_no_pods_while_replicas_are_desired_is_a_complete_outage() -> None:
    evicted = pod("edge-old", phase="Failed", running=False, ready=False, reason="Evicted")
    f = one(triage(snap(pods=[evicted], desired=3), DEFAULT), C.PROCESS_CRASH)
    assert f.severity == SEV1
    assert f.summary == "Proxy down: no pods exist (0 of 3 desired)"
    assert f.evidence == ("0 of 3 desired pods exist", "1 pod finished (edge-old: Evicted)")


def test_scaled_to_zero_is_not_an_incident() -> None:
    assert triage(snap(pods=[], desired=0), DEFAULT) == []


def test_no_process_running_is_sev1_and_later_steps_are_not_judged() -> None:
    s = snap(
        pods=[crashlooping("edge-a"), crashlooping("edge-b"), pod("edge-c", phase="Pending", running=False)],
        metrics=MetricsSignal(available=False, error="connection refused", pods_failed=3),
        upstreams=UpstreamsSignal(available=False, error="connection refused"),
    )
    f = one(triage(s, DEFAULT), C.PROCESS_CRASH)
    assert f.severity == SEV1
    assert f.summary == "Proxy down: no Zentinel process running (0 of 3 pods)"
    assert f.evidence[:2] == (
        "2 of 3 pods CrashLoopBackOff (edge-a: 5 restarts, last exit 1 Error; edge-b: 5 restarts, last exit 1 Error)",
        "1 of 3 pods Pending (edge-c)",
    )
    assert overall_health([f]) == "Down"


@pytest.mark.parametrize(
    ("crashing", "total", "expected"),
    [(1, 3, SEV3), (1, 4, SEV3), (2, 4, SEV2), (2, 3, SEV2), (3, 4, SEV2), (4, 4, SEV1)],
)
def test_crash_loop_severity_follows_the_share_of_pods_down(crashing: int, total: int, expected: Severity) -> None:
    pods = [crashlooping(f"edge-{i}") for i in range(crashing)] + [pod(f"ok-{i}") for i in range(total - crashing)]
    assert severity_of(triage(snap(pods=pods), DEFAULT), C.PROCESS_CRASH) == expected


def test_crash_evidence_reads_like_the_runbook() -> None:
    pods = [oom("edge-abc", restarts=5), crashlooping("edge-abd", restarts=4), pod("edge-xyz")]
    findings = by_category(triage(snap(pods=pods, memory_limit=256 * MI), DEFAULT))
    crash = findings[C.PROCESS_CRASH]
    assert crash.severity == SEV2
    assert crash.summary == "2 of 3 Zentinel pods down (CrashLoopBackOff)"
    assert crash.evidence[0] == (
        "2 of 3 pods CrashLoopBackOff (edge-abc: 5 restarts, last exit 137 OOMKilled; "
        "edge-abd: 4 restarts, last exit 1 Error)"
    )
    assert crash.subjects == ("edge-abc", "edge-abd")
    assert not crash.config_caused


def test_missing_replicas_are_named_in_the_evidence() -> None:
    f = by_category(triage(snap(pods=[crashlooping("edge-a"), pod("edge-b")], desired=3), DEFAULT))[C.PROCESS_CRASH]
    assert f.severity == SEV3  # 1 of 3: the missing one is not counted as crashed
    assert "2 of 3 desired pods exist" in f.evidence


def test_restart_count_threshold_comes_from_the_policy() -> None:
    def restarting(restarts: int) -> Snapshot:
        # Running and Ready right now, but still restarting (growth), with no crash reason recorded.
        busy = pod("edge-a", restarts=restarts, growth=1, reason="Completed", exit_code=0)
        return snap(pods=[busy, pod("edge-b"), pod("edge-c")])

    assert severity_of(triage(restarting(3), DEFAULT), C.PROCESS_CRASH) == SEV3
    assert severity_of(triage(restarting(2), DEFAULT), C.PROCESS_CRASH) is None
    assert severity_of(triage(restarting(4), CUSTOM), C.PROCESS_CRASH) is None
    f = by_category(triage(restarting(5), CUSTOM))[C.PROCESS_CRASH]
    assert f.severity == SEV3
    assert f.evidence[0] == "1 of 3 pods restarting (edge-a: 5 restarts, last exit 0 Completed)"


def test_a_fresh_crash_counts_before_the_restart_threshold() -> None:
    crashed = pod("edge-a", restarts=1, growth=1, reason="Error", exit_code=2)
    assert severity_of(triage(snap(pods=[crashed, *healthy(2)]), DEFAULT), C.PROCESS_CRASH) == SEV3


def test_old_restarts_on_a_steady_pod_are_history_not_a_crash_loop() -> None:
    steady = pod("edge-a", restarts=12, growth=0, reason="OOMKilled", exit_code=137)
    assert triage(snap(pods=[steady, *healthy(2)], memory_limit=256 * MI), DEFAULT) == []


def test_oom_killed_pods_are_memory_exhaustion_naming_the_limit() -> None:
    pods = [oom("edge-a"), oom("edge-b"), pod("edge-c")]
    f = by_category(triage(snap(pods=pods, memory_limit=256 * MI), DEFAULT))[C.MEMORY_EXHAUSTION]
    assert f.severity == SEV2
    assert f.summary == "2 of 3 Zentinel pods OOMKilled at the 256Mi memory limit"
    assert f.evidence == (
        "2 of 3 pods OOMKilled at the 256Mi memory limit (edge-a: 5 restarts, last exit 137 OOMKilled; "
        "edge-b: 5 restarts, last exit 137 OOMKilled)",
    )
    assert f.subjects == ("edge-a", "edge-b")


def test_oom_severity_follows_the_oom_share_not_the_whole_crash() -> None:
    pods = [oom("edge-a"), crashlooping("edge-b"), crashlooping("edge-c")]
    findings = by_category(triage(snap(pods=pods), DEFAULT))
    assert findings[C.PROCESS_CRASH].severity == SEV1
    assert findings[C.MEMORY_EXHAUSTION].severity == SEV3
    assert "an unknown memory limit" in findings[C.MEMORY_EXHAUSTION].summary


def test_exit_137_alone_is_oom_but_exit_137_with_another_reason_is_not() -> None:
    bare = crashlooping("edge-a", reason=None, exit_code=137)
    liveness_kill = crashlooping("edge-a", reason="Error", exit_code=137)
    assert C.MEMORY_EXHAUSTION in by_category(triage(snap(pods=[bare, *healthy(2)]), DEFAULT))
    assert C.MEMORY_EXHAUSTION not in by_category(triage(snap(pods=[liveness_kill, *healthy(2)]), DEFAULT))


def test_out_of_memory_log_line_marks_the_pod_oom() -> None:
    s = snap(
        pods=[crashlooping("edge-a"), *healthy(2)],
        logs=(log("edge-a", LogCause.OUT_OF_MEMORY, "memory allocation of 1048576 bytes failed"),),
    )
    findings = by_category(triage(s, DEFAULT))
    assert findings[C.MEMORY_EXHAUSTION].severity == SEV3
    assert 'out of memory: edge-a (previous container): "memory allocation of 1048576 bytes failed"' in (
        findings[C.PROCESS_CRASH].evidence
    )


def test_config_error_in_the_logs_is_a_config_caused_crash() -> None:
    line = "Failed to load configuration file /etc/zentinel/config.kdl: unknown block 'limitz'"
    s = snap(
        pods=[crashlooping("edge-a"), *healthy(2)],
        logs=(log("edge-a", LogCause.CONFIG_ERROR, line),),
        config=ConfigSignal(present=True, revision="r2", last_known_good="r1"),
    )
    findings = by_category(triage(s, DEFAULT))
    crash, config = findings[C.PROCESS_CRASH], findings[C.CONFIG_ERROR]
    assert crash.severity == SEV3 and crash.config_caused
    assert crash.summary == "1 of 3 Zentinel pods down (CrashLoopBackOff): config error"
    assert f'config error: edge-a (previous container): "{line}"' in crash.evidence
    assert config.config_caused
    assert config.severity == SEV2  # at least SEV2: every pod that restarts now dies
    assert "last known good config revision: r1" in config.evidence
    assert config.subjects == ("edge-a",)


def test_config_error_on_every_pod_is_sev1_for_both_findings() -> None:
    pods = [crashlooping(f"edge-{i}") for i in "abc"]
    logs = tuple(log(p.name, LogCause.CONFIG_ERROR, "Failed to load configuration file") for p in pods)
    findings = by_category(triage(snap(pods=pods, logs=logs), DEFAULT))
    assert findings[C.PROCESS_CRASH].severity == SEV1
    assert findings[C.CONFIG_ERROR].severity == SEV1


def test_log_lines_of_pods_that_run_fine_do_not_explain_a_crash() -> None:
    s = snap(
        pods=[crashlooping("edge-a"), pod("edge-b"), pod("edge-c")],
        logs=(log("edge-b", LogCause.CONFIG_ERROR, "Failed to load configuration file"),),
    )
    findings = by_category(triage(s, DEFAULT))
    assert not findings[C.PROCESS_CRASH].config_caused
    assert C.CONFIG_ERROR not in findings


def test_port_conflict_and_certificate_errors_enrich_the_crash_evidence() -> None:
    s = snap(
        pods=[crashlooping("edge-a"), crashlooping("edge-b"), pod("edge-c")],
        logs=(
            log("edge-a", LogCause.ADDRESS_IN_USE, "bind 0.0.0.0:8080: Address already in use (os error 98)"),
            log("edge-b", LogCause.CERTIFICATE_ERROR, "failed to load certificate /certs/tls.crt"),
        ),
    )
    crash = by_category(triage(s, DEFAULT))[C.PROCESS_CRASH]
    assert (
        'port conflict (address in use): edge-a (previous container): "bind 0.0.0.0:8080: '
        'Address already in use (os error 98)"'
    ) in crash.evidence
    assert 'certificate error: edge-b (previous container): "failed to load certificate /certs/tls.crt"' in (
        crash.evidence
    )
    assert not crash.config_caused


@pytest.mark.parametrize(
    ("minutes_ago", "caused"), [(1, True), (14, True), (15, True), (15.02, False), (60, False), (-1, True)]
)
def test_a_crash_within_15_minutes_of_a_config_change_is_config_caused(minutes_ago: float, caused: bool) -> None:
    changed_at = T0 - dt.timedelta(minutes=minutes_ago)
    s = snap(
        pods=[crashlooping("edge-a"), *healthy(2)],
        config=ConfigSignal(present=True, revision="r2", changed_at=changed_at),
    )
    crash = by_category(triage(s, DEFAULT))[C.PROCESS_CRASH]
    assert crash.config_caused is caused
    if caused and minutes_ago == 14:
        assert "crash follows a config change 14m ago (revision r2)" in crash.evidence
        assert crash.summary.endswith(": after a config change")


def test_crashing_pods_on_a_revision_other_than_last_known_good_is_config_caused() -> None:
    config = ConfigSignal(present=True, revision="r2", last_known_good="r1")
    new = snap(pods=[crashlooping("edge-a", revision="r2"), *healthy(2)], config=config)
    old = snap(pods=[crashlooping("edge-a", revision="r1"), *healthy(2)], config=config)
    crash = by_category(triage(new, DEFAULT))[C.PROCESS_CRASH]
    assert crash.config_caused
    assert "crashing pods run config revision r2, not the last known good r1" in crash.evidence
    assert not by_category(triage(old, DEFAULT))[C.PROCESS_CRASH].config_caused


def test_image_pull_failure_is_a_pod_down_but_a_pod_being_created_is_not() -> None:
    pulling = pod("edge-a", phase="Pending", running=False, ready=False, waiting="ImagePullBackOff")
    creating = pod("edge-a", phase="Pending", running=False, ready=False, waiting="ContainerCreating")
    f = by_category(triage(snap(pods=[pulling, *healthy(2)]), DEFAULT))[C.PROCESS_CRASH]
    assert f.severity == SEV3 and f.evidence[0] == "1 of 3 pods ImagePullBackOff (edge-a)"
    assert triage(snap(pods=[creating, *healthy(2)]), DEFAULT) == []


def test_terminating_pods_are_not_counted() -> None:
    going = pod("edge-old", running=False, ready=False, deleting=True)
    assert triage(snap(pods=[going, *healthy(3)], desired=3), DEFAULT) == []


# ------------------------------------------------------------------------------ step 2: health
@pytest.mark.parametrize(("not_ready", "total", "expected"), [(1, 3, SEV3), (2, 4, SEV2), (2, 3, SEV2), (3, 3, SEV1)])
def test_running_but_not_ready_is_a_health_check_failure(not_ready: int, total: int, expected: Severity) -> None:
    pods = [pod(f"edge-{i}", ready=i >= not_ready) for i in range(total)]
    f = one(triage(snap(pods=pods), DEFAULT), C.HEALTH_CHECK_FAILURE)
    assert f.severity == expected
    if expected != SEV1:
        names = ", ".join(f"edge-{i}" for i in range(not_ready)).replace(", ", "; ")
        assert f.evidence == (f"{not_ready} of {total} pods running but not Ready (readiness failing: {names})",)


def test_no_ready_pod_means_the_service_has_no_endpoints() -> None:
    f = one(triage(snap(pods=[pod("edge-a", ready=False)]), DEFAULT), C.HEALTH_CHECK_FAILURE)
    assert f.severity == SEV1
    assert "the Service has no endpoints" in f.evidence[0]


def test_a_pod_starting_during_a_rollout_is_not_a_failure() -> None:
    new = pod("edge-new", ready=False)
    assert triage(snap(pods=[*healthy(3), new], rolling_out=True), DEFAULT) == []
    assert severity_of(triage(snap(pods=[*healthy(3), new]), DEFAULT), C.HEALTH_CHECK_FAILURE) == SEV3
    restarted = pod("edge-new", ready=False, restarts=1)
    findings = triage(snap(pods=[*healthy(3), restarted], rolling_out=True), DEFAULT)
    assert severity_of(findings, C.HEALTH_CHECK_FAILURE) == SEV3


def test_admin_endpoint_unreachable_everywhere_is_a_health_check_failure() -> None:
    s = snap(
        metrics=MetricsSignal(available=False, error="connection refused", pods_failed=3),
        upstreams=UpstreamsSignal(available=False, error="connection refused"),
    )
    f = one(triage(s, DEFAULT), C.HEALTH_CHECK_FAILURE)
    assert f.severity == SEV2
    assert f.evidence == (
        "admin endpoint unreachable on every running pod (3 of 3 metrics scrapes failed: connection refused)",
        "/admin/upstreams unreachable: connection refused",
    )


def test_metrics_unavailable_while_the_admin_endpoint_answers_is_sev4() -> None:
    s = snap(
        metrics=MetricsSignal(available=False, error="unexpected text in exposition", pods_failed=1, pods_scraped=2),
        upstreams=HEALTHY_UPSTREAMS,
    )
    findings = triage(s, DEFAULT)
    f = one(findings, C.METRICS_UNAVAILABLE)
    assert f.severity == SEV4
    assert f.evidence == ("metrics unavailable: unexpected text in exposition (1 of 3 pods failed)",)
    assert overall_health(findings) == "Unknown"


def test_upstreams_unavailable_is_sev4() -> None:
    s = snap(metrics=metrics(), upstreams=UpstreamsSignal(available=False, error="404 Not Found"))
    f = one(triage(s, DEFAULT), C.METRICS_UNAVAILABLE)
    assert f.evidence == ("/admin/upstreams unavailable: 404 Not Found",)
    assert f.summary == "Metrics unavailable: triage cannot see upstream health"


# ------------------------------------------------------------------------------ step 3: upstreams
def test_upstream_evidence_reads_like_the_runbook() -> None:
    s = snap(
        upstreams=upstreams(
            target("api", "10.0.1.10:8000"),
            target("api", "10.0.1.11:8000", "unhealthy", failure_rate=0.8, last_error="connection refused"),
            target("api", "10.0.1.12:8000", "unhealthy"),
            *upstream("auth", 0, 2),
        )
    )
    f = one(triage(s, DEFAULT), C.UPSTREAM_FAILURE)
    assert f.severity == SEV2  # 2 of 3: at least half
    assert f.summary == "Upstream api: 2 of 3 targets unhealthy"
    assert f.evidence == (
        "upstream api: 2 of 3 targets unhealthy (10.0.1.11:8000 failure rate 80%: connection refused; 10.0.1.12:8000)",
    )
    assert f.subjects == ("api/10.0.1.11:8000", "api/10.0.1.12:8000")


@pytest.mark.parametrize(
    ("unhealthy", "total", "expected"), [(0, 3, None), (1, 3, SEV3), (1, 2, SEV2), (2, 3, SEV2), (3, 3, SEV1)]
)
def test_default_upstream_ladder(unhealthy: int, total: int, expected: Severity | None) -> None:
    s = snap(upstreams=upstreams(*upstream("api", unhealthy, total), *upstream("auth", 0, 2)))
    assert severity_of(triage(s, DEFAULT), C.UPSTREAM_FAILURE) == expected


@pytest.mark.parametrize(
    ("unhealthy", "total", "expected"), [(1, 3, None), (2, 5, SEV3), (3, 5, SEV2), (2, 3, SEV2), (5, 5, SEV2)]
)
def test_upstream_ladder_comes_from_the_policy(unhealthy: int, total: int, expected: Severity | None) -> None:
    s = snap(upstreams=upstreams(*upstream("api", unhealthy, total), *upstream("auth", 0, 2)))
    assert severity_of(triage(s, CUSTOM), C.UPSTREAM_FAILURE) == expected


def test_every_upstream_down_is_sev1_whatever_the_ladder() -> None:
    s = snap(upstreams=upstreams(*upstream("api", 3, 3), *upstream("auth", 1, 1)))
    for thresholds in (DEFAULT, CUSTOM, policy_thresholds(unhealthyUpstreamShare={"sev4": 2})):
        f = one(triage(s, thresholds), C.UPSTREAM_FAILURE)
        assert f.severity == SEV1
        assert f.summary == "All upstreams unreachable: every target of 2 upstreams unhealthy"
        assert len(f.evidence) == 2 and len(f.subjects) == 4


def test_the_worst_upstream_sets_the_severity() -> None:
    s = snap(upstreams=upstreams(*upstream("api", 1, 4), *upstream("auth", 2, 2), *upstream("web", 0, 2)))
    f = one(triage(s, DEFAULT), C.UPSTREAM_FAILURE)
    assert f.severity == SEV1
    assert f.summary == "2 upstreams with unhealthy targets, worst auth: 2 of 2 targets unhealthy"
    assert [e.split(":")[0] for e in f.evidence] == ["upstream auth", "upstream api"]


def test_unknown_targets_do_not_count_as_unhealthy() -> None:
    s = snap(upstreams=upstreams(target("api", "a:1", "unknown"), target("api", "b:1", "unknown")))
    assert triage(s, DEFAULT) == []
    mixed = snap(upstreams=upstreams(target("api", "a:1", "unknown"), target("api", "b:1", "unhealthy")))
    f = one(triage(mixed, DEFAULT), C.UPSTREAM_FAILURE)
    assert f.severity == SEV2  # 1 of 2 (the unknown target stays in the denominator)


def test_open_circuit_breakers_add_evidence() -> None:
    line = "2 circuit breakers open (Zentinel answers 503 on the routes behind them)"
    up = snap(metrics=metrics(circuit_breakers_open=2), upstreams=upstreams(*upstream("api", 1, 3)))
    assert line in one(triage(up, DEFAULT), C.UPSTREAM_FAILURE).evidence
    errors = snap(metrics=metrics(circuit_breakers_open=2, errors=500.0), upstreams=HEALTHY_UPSTREAMS)
    assert line in one(triage(errors, DEFAULT), C.HIGH_ERROR_RATE).evidence
    nothing_else = snap(metrics=metrics(circuit_breakers_open=2), upstreams=HEALTHY_UPSTREAMS)
    assert triage(nothing_else, DEFAULT) == []


# ------------------------------------------------------------------------------ step 4: error rate
def test_error_rate_evidence_reads_like_the_runbook() -> None:
    s = snap(metrics=metrics(errors=1_240.0, proxy_errors={"503": 300.0, "504": 20.0, "502": 0.0}))
    f = one(triage(s, DEFAULT), C.HIGH_ERROR_RATE)
    assert f.severity == SEV2
    assert f.summary == "High error rate: 5xx rate 12.4% (above the SEV2 threshold of 10%)"
    assert f.evidence == (
        "5xx rate 12.4% over 60s (1,240 of 10,000 requests; 300 proxy_error_503; 20 proxy_error_504)",
        "proxy_error_503: all targets unhealthy or a circuit breaker open: follow the Upstream Failure procedure",
        "proxy_error_504: upstream not responding in time (timeouts)",
    )


@pytest.mark.parametrize(
    ("errors", "expected"),
    [(100, None), (101, SEV3), (1_000, SEV3), (1_001, SEV2), (9_500, SEV2), (9_501, SEV1)],
)
def test_default_error_rate_ladder(errors: float, expected: Severity | None) -> None:
    assert severity_of(triage(snap(metrics=metrics(errors=errors)), DEFAULT), C.HIGH_ERROR_RATE) == expected


@pytest.mark.parametrize(
    ("errors", "expected"),
    [(200, None), (500, None), (501, SEV3), (3_000, SEV3), (3_001, SEV2), (10_000, SEV2)],
)
def test_error_rate_ladder_comes_from_the_policy(errors: float, expected: Severity | None) -> None:
    assert severity_of(triage(snap(metrics=metrics(errors=errors)), CUSTOM), C.HIGH_ERROR_RATE) == expected


@pytest.mark.parametrize(
    ("thresholds", "requests", "judged"),
    [(DEFAULT, 19, False), (DEFAULT, 20, True), (CUSTOM, 99, False), (CUSTOM, 100, True)],
)
def test_error_rates_need_min_requests(thresholds: Thresholds, requests: float, judged: bool) -> None:
    s = snap(metrics=metrics(requests=requests, errors=requests, latency_p99_seconds=9.0))
    findings = by_category(triage(s, thresholds))
    assert (C.HIGH_ERROR_RATE in findings) is judged
    # A p99 over fewer requests than min_requests is noise too.
    assert (C.PERFORMANCE_DEGRADATION in findings) is False


def test_zero_requests_judge_nothing_even_with_min_requests_zero() -> None:
    s = snap(metrics=metrics(requests=0.0, errors=0.0))
    assert triage(s, policy_thresholds(minRequests=0)) == []


@pytest.mark.parametrize(("route_errors", "failing"), [(50, False), (51, True)])
def test_a_route_fails_strictly_above_the_failing_route_rate(route_errors: float, failing: bool) -> None:
    s = snap(metrics=metrics(errors=route_errors, routes=(route("api", 100, route_errors),)))
    findings = triage(s, DEFAULT)
    assert severity_of(findings, C.HIGH_ERROR_RATE) == (SEV3 if failing else None)


def test_failing_routes_evidence_and_subjects() -> None:
    routes = (route("api", 1_000, 800), route("web", 200, 120), route("static", 5_000, 10), route("tiny", 10, 10))
    s = snap(metrics=metrics(errors=940.0, routes=routes))
    f = one(triage(s, DEFAULT), C.HIGH_ERROR_RATE)
    assert f.severity == SEV2  # two routes failing; 9.4% overall alone is SEV3
    assert f.summary == "High error rate: 2 routes failing"
    assert "2 routes failing (5xx above 50%): api 80% (800 of 1,000); web 60% (120 of 200)" in f.evidence
    assert f.subjects == ("api", "web")  # "tiny" has fewer than min_requests requests


@pytest.mark.parametrize(("failing", "expected"), [(1, SEV3), (2, SEV3), (3, SEV2)])
def test_failing_routes_ladder_comes_from_the_policy(failing: int, expected: Severity) -> None:
    routes = (*(route(f"r{i}", 100, 25) for i in range(failing)), route("edge", 100, 20))
    s = snap(metrics=metrics(errors=25.0 * failing, routes=routes))
    f = one(triage(s, CUSTOM), C.HIGH_ERROR_RATE)
    assert f.severity == expected
    assert "edge" not in f.subjects  # 20% is not above CUSTOM's 20%


def test_error_rate_and_failing_routes_take_the_worse_of_the_two() -> None:
    routes = (route("api", 100, 60), route("web", 100, 60))
    s = snap(metrics=metrics(errors=200.0, routes=routes))  # 2%: SEV3; two failing routes: SEV2
    assert one(triage(s, DEFAULT), C.HIGH_ERROR_RATE).severity == SEV2


def test_more_errors_than_requests_is_bad_data_not_an_outage() -> None:
    assert triage(snap(metrics=metrics(requests=100.0, errors=250.0)), DEFAULT) == []


# ------------------------------------------------------------------------------ step 5: performance
@pytest.mark.parametrize(
    ("p99", "expected"), [(0.5, None), (0.51, SEV4), (1.0, SEV4), (1.01, SEV3), (5.0, SEV3), (5.01, SEV2)]
)
def test_default_latency_ladder(p99: float, expected: Severity | None) -> None:
    findings = triage(snap(metrics=metrics(latency_p99_seconds=p99)), DEFAULT)
    assert severity_of(findings, C.PERFORMANCE_DEGRADATION) == expected


@pytest.mark.parametrize(("p99", "expected"), [(0.25, None), (0.26, SEV3), (30.0, SEV3)])
def test_latency_ladder_comes_from_the_policy(p99: float, expected: Severity | None) -> None:
    findings = triage(snap(metrics=metrics(latency_p99_seconds=p99)), CUSTOM)
    assert severity_of(findings, C.PERFORMANCE_DEGRADATION) == expected


def test_latency_evidence() -> None:
    f = one(triage(snap(metrics=metrics(latency_p99_seconds=1.8)), DEFAULT), C.PERFORMANCE_DEGRADATION)
    assert f.summary == "Elevated latency: p99 1.8s (above the SEV3 threshold of 1s)"
    assert f.evidence == ("p99 latency 1.8s over 60s (10,000 requests)",)


def test_elevated_latency_with_high_errors_is_one_high_error_rate_finding() -> None:
    s = snap(metrics=metrics(errors=200.0, latency_p99_seconds=6.0))  # 2% errors: SEV3; p99 6s: SEV2
    f = one(triage(s, DEFAULT), C.HIGH_ERROR_RATE)
    assert f.severity == SEV2
    assert "p99 latency 6s over 60s (10,000 requests)" in f.evidence


# ------------------------------------------------------------------------------ independent: memory
@pytest.mark.parametrize(
    ("thresholds", "used_mi", "expected"),
    [
        (DEFAULT, 850, None),
        (DEFAULT, 851, SEV3),
        (DEFAULT, 950, SEV3),
        (DEFAULT, 951, SEV2),
        (CUSTOM, 700, None),
        (CUSTOM, 701, SEV2),
    ],
)
def test_memory_share_of_limit(thresholds: Thresholds, used_mi: int, expected: Severity | None) -> None:
    s = snap(metrics=metrics(memory_bytes=float(used_mi * MI)), memory_limit=1000 * MI)
    assert severity_of(triage(s, thresholds), C.MEMORY_EXHAUSTION) == expected


def test_memory_evidence_names_usage_limit_and_connections() -> None:
    s = snap(metrics=metrics(memory_bytes=240.0 * MI, open_connections=4_210.0), memory_limit=256 * MI)
    f = one(triage(s, DEFAULT), C.MEMORY_EXHAUSTION)
    assert f.severity == SEV3
    assert f.summary == "Memory at 93.8% of the 256Mi limit (above the SEV3 threshold of 85%)"
    assert f.evidence == ("memory 240Mi of 256Mi limit (93.8%) on the largest pod", "4,210 open connections")


def test_memory_without_a_known_limit_is_not_judged() -> None:
    assert triage(snap(metrics=metrics(memory_bytes=10.0 * 1024 * MI)), DEFAULT) == []


def test_oom_and_high_usage_merge_into_one_memory_finding() -> None:
    s = snap(
        pods=[oom("edge-a"), *healthy(2)],
        metrics=metrics(memory_bytes=250.0 * MI, open_connections=900.0),
        memory_limit=256 * MI,
    )
    f = by_category(triage(s, DEFAULT))[C.MEMORY_EXHAUSTION]
    assert f.severity == SEV2  # usage 97.7% (SEV2) is worse than 1 of 3 OOMKilled (SEV3)
    assert f.evidence[0].startswith("1 of 3 pods OOMKilled at the 256Mi memory limit")
    assert "900 open connections" in f.evidence


# ------------------------------------------------------------------------------ independent: certificates
@pytest.mark.parametrize(
    ("thresholds", "days", "expected"),
    [
        (DEFAULT, 30.01, None),
        (DEFAULT, 30, SEV4),
        (DEFAULT, 7, SEV3),
        (DEFAULT, 3, SEV2),
        (DEFAULT, 0, SEV1),
        (DEFAULT, -2, SEV1),
        (CUSTOM, 14.01, None),
        (CUSTOM, 14, SEV2),
        (CUSTOM, -1, SEV2),
    ],
)
def test_certificate_days_left(thresholds: Thresholds, days: float, expected: Severity | None) -> None:
    assert severity_of(triage(snap(certificates=(cert(days),)), thresholds), C.CERTIFICATE_EXPIRING) == expected


def test_certificate_expiry_evidence() -> None:
    soon = cert(2.5, not_after=T0 + dt.timedelta(days=2.5))
    f = one(triage(snap(certificates=(soon,)), DEFAULT), C.CERTIFICATE_EXPIRING)
    assert f.summary == "Certificate edge-tls expires in 2d12h"
    assert f.evidence == ("certificate edge-tls (Secret edge-tls): expires in 2d12h (not after 2026-11-29 15:00 UTC)",)
    assert f.subjects == ("edge-tls",)
    gone = cert(None, not_after=T0 - dt.timedelta(days=3))  # days_left unknown: computed from not_after
    f = one(triage(snap(certificates=(gone,)), DEFAULT), C.CERTIFICATE_EXPIRING)
    assert f.severity == SEV1
    assert f.summary == "Certificate edge-tls expired 3d ago"
    assert overall_health([f]) == "Down"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"key_matches": False}, "private key does not match the certificate"),
        ({"chain_valid": False, "chain_error": "unable to get local issuer"}, "chain does not verify: unable to get"),
        ({"served_matches": False}, "the listener serves a different certificate"),
        ({"error": "PEM: no certificate found"}, "PEM: no certificate found"),
        ({"present": False}, "Secret missing"),
    ],
)
def test_invalid_certificate_is_sev2(fields: dict[str, Any], problem: str) -> None:
    f = one(triage(snap(certificates=(cert(60, **fields),)), DEFAULT), C.CERTIFICATE_INVALID)
    assert f.severity == SEV2
    assert problem in f.evidence[0]
    assert f.evidence[0].startswith("certificate edge-tls (Secret edge-tls): ")


def test_a_served_mismatch_while_the_deployment_rolls_out_is_not_a_fault() -> None:
    # The old pods serve the old certificate until the rollout replaces them (a rotation landing):
    # a finding then opened a second incident whose remedy rotated the certificate again.
    mismatch = (cert(60, served_matches=False),)
    assert triage(snap(certificates=mismatch, rolling_out=True), DEFAULT) == []
    assert one(triage(snap(certificates=mismatch), DEFAULT), C.CERTIFICATE_INVALID).severity == SEV2
    broken = (cert(60, served_matches=False, key_matches=False),)  # other problems still count mid-rollout
    f = one(triage(snap(certificates=broken, rolling_out=True), DEFAULT), C.CERTIFICATE_INVALID)
    assert "private key does not match" in f.evidence[0] and "serves a different" not in f.evidence[0]


def test_invalid_and_expired_certificate_is_sev1() -> None:
    findings = by_category(triage(snap(certificates=(cert(-1, key_matches=False),)), DEFAULT))
    assert findings[C.CERTIFICATE_INVALID].severity == SEV1
    assert findings[C.CERTIFICATE_EXPIRING].severity == SEV1


def test_several_certificates_make_one_finding_at_the_worst_severity() -> None:
    certs = (cert(20, name="b-tls", secret="b"), cert(2, name="a-tls", secret="a"))
    f = one(triage(snap(certificates=certs), DEFAULT), C.CERTIFICATE_EXPIRING)
    assert f.severity == SEV2
    assert f.subjects == ("a-tls", "b-tls")
    assert len(f.evidence) == 2


# ------------------------------------------------------------------------------ independent: config
def test_invalid_config_while_pods_serve_the_old_one_is_sev3() -> None:
    config = ConfigSignal(
        present=True, valid=False, revision="r2", errors=("line 3: unknown block 'limitz'",), last_known_good="r1"
    )
    f = one(triage(snap(pods=[pod(f"edge-{i}", revision="r1") for i in "abc"], config=config), DEFAULT), C.CONFIG_ERROR)
    assert f.severity == SEV3
    assert f.config_caused
    assert f.summary == "Config error: revision r2 does not validate"
    assert f.evidence == (
        "config revision r2 does not validate: line 3: unknown block 'limitz'",
        "3 of 3 pods keep serving the previous config (revision r1); a pod that restarts now would fail to start",
        "last known good config revision: r1",
    )


def test_invalid_config_with_crashing_pods_is_at_least_sev2() -> None:
    config = ConfigSignal(present=True, valid=False, revision="r2", last_known_good="r1")
    s = snap(pods=[crashlooping("edge-a", revision="r2"), *healthy(3)], config=config)
    findings = by_category(triage(s, DEFAULT))
    assert findings[C.PROCESS_CRASH].severity == SEV3
    assert findings[C.PROCESS_CRASH].config_caused
    assert findings[C.CONFIG_ERROR].severity == SEV2
    assert "1 of 4 pods crash-looping on it" in findings[C.CONFIG_ERROR].evidence


def test_missing_config_is_a_config_error() -> None:
    f = one(triage(snap(config=ConfigSignal(present=False)), DEFAULT), C.CONFIG_ERROR)
    assert f.severity == SEV3
    assert f.evidence[0] == "config not found: the ConfigMap or its key is missing"


def test_rejected_reload_is_sev3() -> None:
    line = "Configuration validation failed - new configuration REJECTED"
    s = snap(logs=(log("edge-b", LogCause.CONFIG_REJECTED, line, previous=False),))
    f = one(triage(s, DEFAULT), C.CONFIG_ERROR)
    assert f.severity == SEV3
    assert f.evidence == (f'config reload REJECTED, the old config keeps serving: edge-b: "{line}"',)


# ------------------------------------------------------------------------------ independent: traffic
@pytest.mark.parametrize(
    ("thresholds", "factor", "expected"),
    [
        (DEFAULT, 3.0, None),
        (DEFAULT, 3.1, SEV3),
        (DEFAULT, 10.0, SEV3),
        (DEFAULT, 10.5, SEV2),
        (CUSTOM, 2.0, None),
        (CUSTOM, 2.1, SEV3),
        (CUSTOM, 50.0, SEV3),
    ],
)
def test_traffic_spike(thresholds: Thresholds, factor: float, expected: Severity | None) -> None:
    s = snap(metrics=metrics(requests_per_second=100.0 * factor, baseline_requests_per_second=100.0))
    assert severity_of(triage(s, thresholds), C.TRAFFIC_SPIKE) == expected


def test_traffic_spike_evidence_and_unknown_baseline() -> None:
    s = snap(metrics=metrics(requests_per_second=1_200.0, baseline_requests_per_second=100.0))
    f = one(triage(s, DEFAULT), C.TRAFFIC_SPIKE)
    assert f.summary == "Traffic spike: 12x the usual request rate (above the SEV2 threshold of 10x)"
    assert f.evidence == ("1,200 req/s against a baseline of 100 req/s (12x)",)
    for baseline in (None, 0.0):
        s = snap(metrics=metrics(requests_per_second=1_200.0, baseline_requests_per_second=baseline))
        assert triage(s, DEFAULT) == []


# ------------------------------------------------------------------------------ unknown and bad data
def test_unknown_data_produces_no_finding() -> None:
    s = snap(
        metrics=MetricsSignal(available=True),  # first pass: nothing to compute rates from
        upstreams=UpstreamsSignal(available=True),
        certificates=(CertificateSignal(name="edge-tls", secret="edge-tls", present=True),),
        config=ConfigSignal(present=True),
        memory_limit=256 * MI,
    )
    assert triage(s, DEFAULT) == []
    assert triage(snap(metrics=None, upstreams=None, config=None), DEFAULT) == []


def test_bad_numbers_never_raise() -> None:
    nan = math.nan
    s = snap(
        pods=[*healthy(2), pod("edge-z", restarts=1, growth=1, reason="Error", exit_code=1)],
        metrics=metrics(
            requests=nan,
            errors=nan,
            interval_seconds=nan,
            latency_p99_seconds=nan,
            memory_bytes=nan,
            open_connections=nan,
            requests_per_second=nan,
            baseline_requests_per_second=nan,
            routes=(route("api", nan, nan),),
            proxy_errors={"503": nan},
        ),
        upstreams=upstreams(target("api", "a:1", "unhealthy", failure_rate=nan)),
        certificates=(cert(nan, not_after=dt.datetime(2026, 11, 20)),),  # naive timestamp
        config=ConfigSignal(present=True, changed_at=dt.datetime(2026, 11, 27, 2, 55)),  # naive
        memory_limit=256 * MI,
    )
    findings = by_category(triage(s, DEFAULT))
    assert set(findings) == {C.PROCESS_CRASH, C.UPSTREAM_FAILURE, C.CERTIFICATE_EXPIRING}
    assert findings[C.UPSTREAM_FAILURE].evidence == ("upstream api: 1 of 1 targets unhealthy (a:1)",)
    assert findings[C.PROCESS_CRASH].config_caused  # naive changed_at read as UTC: 5 minutes before


# ------------------------------------------------------------------------------ evidence stays short
def test_long_lists_and_log_lines_are_cut_and_long_intervals_read_in_minutes() -> None:
    pods = [crashlooping(f"edge-{i}", restarts=3) for i in range(5)] + [pod("ok-a"), pod("ok-b"), pod("ok-c")]
    long_line = "Failed to load configuration file: " + "x" * 500
    s = snap(
        pods=pods,
        logs=(log("edge-0", LogCause.CONFIG_ERROR, long_line),),
        metrics=metrics(interval_seconds=300.0, errors=300.0),
    )
    findings = by_category(triage(s, DEFAULT))
    crash = findings[C.PROCESS_CRASH]
    assert crash.severity == SEV2  # 5 of 8
    assert crash.evidence[0].endswith("; edge-2: 3 restarts, last exit 1 Error; and 2 more)")
    assert len(crash.subjects) == 5
    quoted = next(e for e in crash.evidence if e.startswith("config error: "))
    assert len(quoted) < 260 and quoted.endswith('…"')
    assert findings[C.HIGH_ERROR_RATE].evidence[0] == "5xx rate 3% over 5m (300 of 10,000 requests)"


# ------------------------------------------------------------------------------ order and determinism
def _busy_snapshot(pods: list[PodSignal]) -> Snapshot:
    return snap(
        pods=pods,
        metrics=metrics(
            errors=1_500.0,
            latency_p99_seconds=2.0,
            memory_bytes=900.0 * MI,
            requests_per_second=1_100.0,
            baseline_requests_per_second=100.0,
            routes=(route("api", 1_000, 900), route("web", 1_000, 600)),
        ),
        upstreams=upstreams(*upstream("api", 1, 3), *upstream("auth", 0, 2)),
        certificates=(cert(20),),
        config=ConfigSignal(present=True, valid=False, revision="r2"),
        memory_limit=1000 * MI,
        logs=(log("edge-a", LogCause.CONFIG_ERROR, "Failed to load configuration file"),),
    )


def test_findings_are_sorted_worst_first_in_the_trees_order() -> None:
    pods = [crashlooping("edge-a"), pod("edge-b"), pod("edge-c"), pod("edge-d", ready=False)]
    findings = triage(_busy_snapshot(pods), DEFAULT)
    assert [(f.severity, f.category) for f in findings] == [
        (SEV2, C.HIGH_ERROR_RATE),
        (SEV2, C.CONFIG_ERROR),
        (SEV2, C.TRAFFIC_SPIKE),
        (SEV3, C.PROCESS_CRASH),
        (SEV3, C.HEALTH_CHECK_FAILURE),
        (SEV3, C.UPSTREAM_FAILURE),
        (SEV3, C.MEMORY_EXHAUSTION),
        (SEV4, C.CERTIFICATE_EXPIRING),
    ]


def test_triage_is_deterministic_and_ignores_input_order() -> None:
    pods = [crashlooping("edge-a"), pod("edge-b"), pod("edge-c"), pod("edge-d", ready=False)]
    first = triage(_busy_snapshot(pods), DEFAULT)
    assert triage(_busy_snapshot(pods), DEFAULT) == first
    assert triage(_busy_snapshot(list(reversed(pods))), DEFAULT) == first
    shuffled = _busy_snapshot(pods)
    assert shuffled.upstreams is not None
    reordered = dataclasses.replace(
        shuffled, upstreams=dataclasses.replace(shuffled.upstreams, targets=tuple(reversed(shuffled.upstreams.targets)))
    )
    assert triage(reordered, DEFAULT) == first
