"""``zentinelctl triage``: the runbook's Quick Diagnostic Commands and Initial Triage Decision Tree, run
by hand against one Zentinel.

Two ways in: a Zentinel in the cluster (the operator's own gather, twice, ``--interval`` apart so
that rates exist, then triage with the governing policy's thresholds), or a Zentinel reachable by URL
outside Kubernetes (a systemd host: ``/metrics`` and ``/admin/upstreams`` scraped twice, ``/health``
and ``/ready`` probed, a snapshot holding only those signals, triage with default thresholds or a
policy file). The report and the decision path are pure functions of the snapshot and findings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.durations import format_duration
from ..core.selection import Governing
from ..core.snapshot import (
    ContainerSignal,
    Finding,
    MetricsSignal,
    PodSignal,
    Snapshot,
    TargetStatus,
    UpstreamsSignal,
    WorkloadSignal,
)
from ..core.triage import overall_health, triage
from ..models.common import Category
from ..models.policy import ZentinelIncidentPolicySpec
from ..names import KIND_POLICY
from ..signals.metrics import PodMetrics
from .exits import EXIT_OK, EXIT_TRIAGE, EXIT_USAGE, CliError
from .render import one_line, plain, stamp, table

Q_PROCESS = "Is the proxy process running?"
Q_HEALTH = "Is the health endpoint responding?"
Q_UPSTREAMS = "Are all upstreams healthy?"
Q_ERRORS = "Is error rate elevated?"
Q_LATENCY = "Otherwise: is latency elevated?"

# The runbook's procedure for each kind of trouble.
PROCEDURES: dict[Category, str] = {
    Category.PROCESS_CRASH: "Process Crash",
    Category.HEALTH_CHECK_FAILURE: "Health Check Failure",
    Category.UPSTREAM_FAILURE: "Upstream Failure",
    Category.HIGH_ERROR_RATE: "High Error Rate",
    Category.PERFORMANCE_DEGRADATION: "Performance Degradation",
    Category.MEMORY_EXHAUSTION: "Memory Exhaustion",
    Category.CERTIFICATE_EXPIRING: "TLS/Certificate Issues",
    Category.CERTIFICATE_INVALID: "TLS/Certificate Issues",
    Category.CONFIG_ERROR: "Process Crash: Rollback (restore the last known good config)",
    Category.TRAFFIC_SPIKE: "DDoS/Attack Response",
    Category.METRICS_UNAVAILABLE: "Quick Diagnostic Commands (the operator cannot see these signals)",
}
_TREE = (
    Category.PROCESS_CRASH,
    Category.HEALTH_CHECK_FAILURE,
    Category.UPSTREAM_FAILURE,
    Category.HIGH_ERROR_RATE,
    Category.PERFORMANCE_DEGRADATION,
)
_SERVER_ERROR = re.compile(r"^5\d\d$")
_FINISHED = ("Succeeded", "Failed")


@dataclasses.dataclass(frozen=True)
class HttpCheck:
    """One endpoint as the runbook's ``curl -sf`` sees it."""

    path: str
    url: str
    status: int | None  # None: no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def verdict(self) -> bool | None:
        """True: answers 2xx; None: the route is not configured (404), so it says nothing; False: fails."""
        if self.status == 404:
            return None
        return self.ok


@dataclasses.dataclass(frozen=True)
class Step:
    question: str
    answer: str  # YES, NO, PARTLY, UNKNOWN, not judged
    procedure: str | None
    detail: str


@dataclasses.dataclass(frozen=True)
class TriageReport:
    target: str  # "Zentinel edge (namespace ns)" or the URL
    mode: str  # cluster | url
    policy: str  # the policy's name, the file, or "defaults"
    interval_seconds: float
    snapshot: Snapshot
    findings: tuple[Finding, ...]
    checks: tuple[HttpCheck, ...] = ()  # url mode: /health, /ready, /metrics, /admin/upstreams
    five_xx_total: float | None = None  # since the process started, every pod (the runbook's awk sum)
    open_breakers: tuple[str, ...] | None = None  # None: not exported or flat zero (unknown)


# ------------------------------------------------------------------------------ pure parts
def exit_code(findings: Sequence[Finding]) -> int:
    """0 when healthy, else 10 + the worst severity's number (11 for SEV1 ... 14 for SEV4)."""
    if not findings:
        return EXIT_OK
    return EXIT_TRIAGE + min(f.severity.rank for f in findings)


def counter_totals(pages: Mapping[str, PodMetrics]) -> tuple[float | None, tuple[str, ...] | None]:
    """From the last ``/metrics`` page of each pod: 5xx answers since start (upstream
    5xx plus Zentinel's own proxy_error_502|503|504), and the circuit breakers that read open."""
    if not pages:
        return None, None
    total = 0.0
    breakers: set[str] = set()
    exported = False
    for page in pages.values():
        total += sum(v for (_route, status), v in page.requests.items() if _SERVER_ERROR.match(status))
        total += sum(page.proxy_errors().values())
        if page.circuit_breakers is not None:
            for labels, value in page.circuit_breakers.items():
                exported = exported or value != 0
                if value >= 1:
                    breakers.add(",".join(f"{k}={v}" for k, v in labels) or "(no labels)")
    return total, (tuple(sorted(breakers)) if exported else None)


def _pct(share: float | None) -> str:
    if share is None or not math.isfinite(share):
        return "?"
    return f"{share * 100:.3g}%"


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{round(value):,}"


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _over(metrics: MetricsSignal) -> str:
    s = metrics.interval_seconds
    return f" over {format_duration(dt.timedelta(seconds=round(s)))}" if s else ""


def _live(snapshot: Snapshot) -> list[PodSignal]:
    return [p for p in snapshot.pods if not p.deleting and p.phase not in _FINISHED]


def decision_path(snapshot: Snapshot, findings: Sequence[Finding], health_detail: str | None = None) -> list[Step]:
    """The runbook's tree, question by question, as triage answered it on this snapshot."""
    by = {f.category: f for f in findings}
    steps: list[Step] = []
    live = _live(snapshot)
    total = max(snapshot.workload.desired, len(live))
    crash = by.get(Category.PROCESS_CRASH)
    down = set(crash.subjects) if crash else set()
    running = [p for p in live if p.process_running and p.name not in down]

    def stop(why: str) -> list[Step]:
        return steps + [Step(q, "not judged", None, why) for q in (Q_HEALTH, Q_UPSTREAMS, Q_ERRORS)]

    if not snapshot.workload.exists:
        steps.append(Step(Q_PROCESS, "NO", PROCEDURES[Category.PROCESS_CRASH], "the workload does not exist"))
        return stop("no proxy process runs")
    if total == 0:
        steps.append(Step(Q_PROCESS, "NO", None, "scaled to zero on purpose"))
        return stop("nothing runs")
    if not running:
        detail = crash.summary if crash else f"0 of {total} running"
        steps.append(Step(Q_PROCESS, "NO", PROCEDURES[Category.PROCESS_CRASH], detail))
        return stop("no proxy process runs")
    if crash:
        steps.append(
            Step(Q_PROCESS, "PARTLY", PROCEDURES[Category.PROCESS_CRASH], f"{len(running)} of {total}: {crash.summary}")
        )
    else:
        steps.append(Step(Q_PROCESS, "YES", None, f"{len(running)} of {total} running"))

    health = by.get(Category.HEALTH_CHECK_FAILURE)
    ready = sum(1 for p in running if p.ready)
    if health:
        steps.append(Step(Q_HEALTH, "NO", PROCEDURES[Category.HEALTH_CHECK_FAILURE], health.summary))
    else:
        steps.append(Step(Q_HEALTH, "YES", None, health_detail or f"{ready} of {total} Ready"))

    upstream = by.get(Category.UPSTREAM_FAILURE)
    u = snapshot.upstreams
    if upstream:
        steps.append(Step(Q_UPSTREAMS, "NO", PROCEDURES[Category.UPSTREAM_FAILURE], upstream.summary))
    elif u is None or not u.available:
        steps.append(Step(Q_UPSTREAMS, "UNKNOWN", None, (u.error if u else None) or "/admin/upstreams not read"))
    else:
        healthy = sum(1 for t in u.targets if t.status == TargetStatus.HEALTHY)
        bad = sum(1 for t in u.targets if t.status == TargetStatus.UNHEALTHY)
        detail = f"{healthy} of {len(u.targets)} targets healthy"
        if bad:
            detail += f"; {bad} unhealthy, below the policy's thresholds"
        steps.append(Step(Q_UPSTREAMS, "YES", None, detail))

    errors = by.get(Category.HIGH_ERROR_RATE)
    m = snapshot.metrics
    if errors:
        steps.append(Step(Q_ERRORS, "YES", PROCEDURES[Category.HIGH_ERROR_RATE], errors.summary))
        return steps
    if m is None or not m.available or m.interval_seconds is None:
        why = (m.error if m else None) or "no rates (metrics need two scrapes)"
        steps.append(Step(Q_ERRORS, "UNKNOWN", None, why))
    else:
        steps.append(
            Step(Q_ERRORS, "NO", None, f"5xx rate {_pct(m.error_rate)}{_over(m)} ({_num(m.requests)} requests)")
        )
    perf = by.get(Category.PERFORMANCE_DEGRADATION)
    if perf:
        steps.append(Step(Q_LATENCY, "YES", PROCEDURES[Category.PERFORMANCE_DEGRADATION], perf.summary))
    else:
        p99 = m.latency_p99_seconds if m and m.available else None
        steps.append(Step(Q_LATENCY, "NO" if p99 is not None else "UNKNOWN", None, f"p99 {_seconds(p99)}"))
    return steps


def _section(title: str, how: str, body: str) -> list[str]:
    head = f"{title}  ({how})" if how else title
    return ["", head, *("  " + line for line in body.rstrip("\n").splitlines())]


def _pods_body(report: TriageReport) -> str:
    snap = report.snapshot
    if report.mode == "url":
        answered = [c for c in report.checks if c.status is not None]
        if not answered:
            why = next((c.error for c in report.checks if c.error), None) or "no answer"
            return f"NOT RUNNING: nothing answers ({why})"
        ports = ", ".join(sorted({urlsplit(c.url).netloc for c in answered}))
        version = snap.metrics.version if snap.metrics is not None else None
        return f"RUNNING: the process answers on {ports}" + (f"; zentinel {version}" if version else "")
    if not snap.workload.exists:
        return "the workload does not exist"
    rows = []
    for p in sorted(snap.pods, key=lambda p: p.name):
        c = p.container
        if c is None:
            state = p.phase
        elif c.waiting_reason:
            state = c.waiting_reason
        elif c.running:
            state = "running"
        else:
            state = "not running"
        last = ""
        if c is not None and (c.last_exit_code is not None or c.last_terminated_reason):
            last = f"exit {c.last_exit_code if c.last_exit_code is not None else '?'} {c.last_terminated_reason or ''}"
        rows.append(
            [p.name, p.ip or "-", p.phase, "yes" if p.ready else "no", c.restart_count if c else 0, state, last]
        )
    w = snap.workload
    head = f"{w.available} of {w.desired} available" + (" (rolling out)" if w.rolling_out else "")
    return head + "\n" + table(["pod", "ip", "phase", "ready", "restarts", "state", "last exit"], rows)


def _health_body(report: TriageReport) -> str:
    if report.mode == "url":
        lines = []
        for c in report.checks:
            if c.path not in ("/health", "/ready"):
                continue
            if c.ok:
                verdict = "OK" if c.path == "/health" else "READY"
            elif c.status == 404:
                verdict = "not configured (404: no route with builtin-handler)"
            else:
                verdict = "UNHEALTHY" if c.path == "/health" else "NOT READY"
            code = str(c.status) if c.status is not None else "-"
            why = f"  ({c.error})" if c.status is None and c.error else ""
            lines.append(f"{c.path:<8} {code:<4} {verdict:<10} {c.url}{why}")
        return "\n".join(lines)
    live = _live(report.snapshot)
    ready = sum(1 for p in live if p.ready)
    return f"{ready} of {len(live)} pods Ready (the readiness probe is the health check)"


def _errors_body(report: TriageReport) -> str:
    m = report.snapshot.metrics
    if m is None:
        return "not scraped: no pod runs the proxy"
    if not m.available:
        return f"unavailable: {m.error or 'no answer'}"
    lines = [f"5xx errors: {_num(report.five_xx_total)} (since start; upstream 5xx plus proxy_error_502|503|504)"]
    if m.interval_seconds is None:
        lines.append("no rates: the second scrape did not come through")
        return "\n".join(lines)
    lines.append(f"{_num(m.requests)} requests, {_num(m.errors)} errors ({_pct(m.error_rate)}){_over(m)}")
    if m.proxy_errors:
        lines.append("proxy errors: " + ", ".join(f"{k}: {_num(v)}" for k, v in sorted(m.proxy_errors.items())))
    if m.routes:
        lines.append(
            table(
                ["route", "requests", "5xx", "error rate"],
                [[r.route, _num(r.requests), _num(r.errors), _pct(r.error_rate)] for r in m.routes],
            ).rstrip("\n")
        )
    return "\n".join(lines)


def _upstreams_body(u: UpstreamsSignal | None) -> str:
    if u is None:
        return "not scraped: no pod runs the proxy"
    if not u.available:
        return f"unavailable: {u.error or 'no answer'}"
    if not u.targets:
        return "no upstreams configured"
    rows = [
        [
            t.upstream,
            t.address,
            t.status.value,
            _pct(t.failure_rate) if t.failure_rate is not None else "-",
            one_line(t.last_error, 80),
        ]
        for t in u.targets
    ]
    return table(["upstream", "target", "status", "failure rate", "last error"], rows)


def _breakers_body(report: TriageReport) -> str:
    m = report.snapshot.metrics
    if m is None or not m.available:
        return "unknown: metrics unavailable"
    if report.open_breakers is None:
        return "unknown: zentinel_circuit_breaker_state not exported or never set"
    if not report.open_breakers:
        return "all closed"
    return f"{len(report.open_breakers)} open: " + "; ".join(report.open_breakers)


def _latency_body(m: MetricsSignal | None) -> str:
    if m is None or not m.available:
        return "unknown: metrics unavailable"
    if m.latency_p99_seconds is None:
        return "unknown: no requests observed in the interval" if m.interval_seconds else "unknown: no rates yet"
    return f"p99 {_seconds(m.latency_p99_seconds)}{_over(m)}"


def _other_body(snap: Snapshot) -> str:
    lines = []
    m = snap.metrics
    if m is not None and m.available:
        lines.append(
            f"version {m.version or '?'}; open connections {_num(m.open_connections)}; "
            + (f"memory {_num(m.memory_bytes)} bytes" if m.memory_bytes is not None else "memory unknown")
            + (f" of {_num(snap.workload.memory_limit_bytes)} limit" if snap.workload.memory_limit_bytes else "")
            + (f"; {m.requests_per_second:.3g} req/s" if m.requests_per_second is not None else "")
        )
    cfg = snap.config
    if cfg is not None:
        if not cfg.present:
            lines.append("config: missing")
        else:
            state = "valid" if cfg.valid else "INVALID: " + "; ".join(one_line(e, 100) for e in cfg.errors[:3])
            lines.append(f"config: revision {cfg.revision} {state}; last known good {cfg.last_known_good or '-'}")
    for c in snap.certificates:
        days = f"{c.days_left:.0f} days left" if c.days_left is not None else "expiry unknown"
        lines.append(f"certificate {c.name} (Secret {c.secret}): {c.error or days}")
    for log in snap.logs:
        where = f"{log.pod} (previous)" if log.previous else log.pod
        lines.append(f"log {log.cause.value}: {where}: {one_line(log.line, 120)}")
    return "\n".join(lines) if lines else "-"


def _health_detail(report: TriageReport) -> str | None:
    """By URL, what ``/health`` and ``/ready`` answered (the tree's second question); None in the cluster."""
    if report.mode != "url":
        return None
    said = [c for c in report.checks if c.path in ("/health", "/ready") and c.verdict is not None]
    return ", ".join(f"{c.path} {c.status}" for c in said) or "no /health or /ready route configured"


def render_triage(report: TriageReport) -> str:
    """What the runbook's Quick Diagnostic Commands would show, then the tree's path and the findings."""
    snap = report.snapshot
    code = exit_code(report.findings)
    out = [
        f"Triage of {report.target}; thresholds from {report.policy}; "
        f"2 scrapes {report.interval_seconds:g}s apart, observed {stamp(snap.observed_at)}"
    ]
    out += _section("Proxy process", "systemctl status zentinel", _pods_body(report))
    out += _section("Health / ready", "curl -sf .../health, .../ready", _health_body(report))
    out += _section("5xx errors by route", "curl -s :9090/metrics | grep requests_total", _errors_body(report))
    out += _section("Upstream health", "curl -s :9090/admin/upstreams", _upstreams_body(snap.upstreams))
    out += _section("Circuit breakers", "grep circuit_breaker_state", _breakers_body(report))
    out += _section("Latency p99", "zentinel_request_duration_seconds", _latency_body(snap.metrics))
    out += _section("Also seen", "", _other_body(snap))

    path = decision_path(snap, report.findings, _health_detail(report))
    first = next((s for s in path if s.procedure), None)
    rows = []
    for s in path:
        go = ""
        if s.procedure:
            go = f"-> Go to: {s.procedure} Procedure" if s is first else f"-> also: {s.procedure}"
        rows.append([s.question, s.answer, go, s.detail])
    out += _section("Initial Triage Decision Tree", "", table(["question", "answer", "procedure", "why"], rows))
    others = [f for f in report.findings if f.category not in _TREE]
    if others:
        out += _section(
            "Outside the tree",
            "",
            "\n".join(f"{f.severity.value} {f.category.value} -> {PROCEDURES.get(f.category, '-')}" for f in others),
        )
    if report.findings:
        lines = []
        for f in report.findings:
            lines.append(f"{f.severity.value}  {f.category.value}: {f.summary}")
            lines += [f"      - {e}" for e in f.evidence]
        out += _section("Findings", "", "\n".join(lines))
    else:
        out += _section("Findings", "", "none")
    result = overall_health(report.findings)
    worst = f", worst {min(report.findings, key=lambda f: f.severity.rank).severity.value}" if report.findings else ""
    out += ["", f"Result: {result}{worst} (exit {code})"]
    return "\n".join(out) + "\n"


def report_data(report: TriageReport) -> dict[str, Any]:
    """``triage -o json|yaml``."""
    return {
        "target": report.target,
        "mode": report.mode,
        "policy": report.policy,
        "intervalSeconds": report.interval_seconds,
        "observedAt": report.snapshot.observed_at,
        "health": overall_health(report.findings),
        "exitCode": exit_code(report.findings),
        "path": plain(decision_path(report.snapshot, report.findings, _health_detail(report))),
        "findings": plain(report.findings),
        "checks": [{"path": c.path, "url": c.url, "status": c.status, "error": c.error} for c in report.checks],
        "fiveXxTotal": report.five_xx_total,
        "openCircuitBreakers": report.open_breakers,
        "snapshot": plain(report.snapshot),
    }


# ------------------------------------------------------------------------------ URL mode
@dataclasses.dataclass(frozen=True)
class Endpoints:
    metrics: str
    upstreams: str
    health: str
    ready: str

    @property
    def label(self) -> str:
        return urlsplit(self.metrics).netloc or self.metrics


def _join(base: str, path: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(path) else base + path


def endpoints(url: str, admin_url: str | None = None, health_url: str | None = None) -> Endpoints:
    """``--url`` is the metrics server (``:9090``); ``--admin-url`` the listener with the admin routes
    (default: ``--url``); ``--health-url`` the one with ``/health`` and ``/ready`` (default: the admin one)."""
    for u in (url, admin_url, health_url):
        if u is not None and urlsplit(u).scheme not in ("http", "https"):
            raise CliError(f"{u!r} is not an http(s) URL", EXIT_USAGE)
    admin = admin_url or url
    health = health_url or admin
    return Endpoints(
        metrics=_join(url, "/metrics"),
        upstreams=_join(admin, "/admin/upstreams"),
        health=_join(health, "/health"),
        ready=_join(health, "/ready"),
    )


def url_snapshot(
    ep: Endpoints,
    checks: Sequence[HttpCheck],
    metrics: MetricsSignal,
    upstreams: UpstreamsSignal,
    now: dt.datetime,
) -> Snapshot:
    """A snapshot of a host outside Kubernetes: one "pod" standing for the process, Running when
    anything answers, Ready unless ``/health`` or ``/ready`` is configured and fails."""
    answered = any(c.status is not None for c in checks)
    said = [c.verdict for c in checks if c.path in ("/health", "/ready")]
    ready = answered and False not in said
    host = urlsplit(ep.metrics).hostname
    pod = PodSignal(
        name=ep.label,
        ip=host,
        phase="Running",
        ready=ready,
        container=ContainerSignal(name="zentinel", ready=ready, running=answered, restart_count=0),
    )
    return Snapshot(
        namespace="",
        zentinel=ep.label,
        observed_at=now,
        workload=WorkloadSignal(exists=True, desired=1, updated=1, available=1 if ready else 0),
        pods=(pod,),
        metrics=metrics,
        upstreams=upstreams,
    )


def load_policy_file(path: str) -> tuple[str, ZentinelIncidentPolicySpec]:
    """A ``ZentinelIncidentPolicy`` manifest (or just its spec) from YAML, checked as admission checks it."""
    import yaml

    from ..core.policy_checks import check_policy

    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"cannot read policy file {path}: {one_line(e)}", EXIT_USAGE) from e
    doc = next((d for d in docs if isinstance(d, dict) and d.get("kind") == KIND_POLICY), None)
    if doc is None:
        doc = docs[0] if docs and isinstance(docs[0], dict) else None
    if doc is None:
        raise CliError(f"{path} holds no ZentinelIncidentPolicy", EXIT_USAGE)
    spec = doc.get("spec") if ("kind" in doc or "spec" in doc) else doc
    if not isinstance(spec, dict):
        raise CliError(f"{path}: spec is not a mapping", EXIT_USAGE)
    problems = check_policy(spec)
    if problems:
        raise CliError(f"{path}: " + "; ".join(problems), EXIT_USAGE)
    name = (doc.get("metadata") or {}).get("name")
    return (f"policy {name} ({path})" if name else path), ZentinelIncidentPolicySpec.model_validate(spec)


async def triage_url(
    ep: Endpoints, *, interval: float, request_timeout: float, policy: ZentinelIncidentPolicySpec, policy_label: str
) -> TriageReport:
    from ..signals.gather import PassMemory, read_pages
    from ..signals.scrape import fetch_many

    memory = PassMemory()
    urls = {"/metrics": ep.metrics, "/admin/upstreams": ep.upstreams, "/health": ep.health, "/ready": ep.ready}
    for n in range(2):
        if n:
            await asyncio.sleep(interval)
        now = dt.datetime.now(dt.UTC)
        results = await fetch_many(list(urls.values()), concurrency=4, timeout=request_timeout, max_bytes=8_000_000)
        elapsed = (now - memory.scraped_at).total_seconds() if memory.scraped_at else None
        metrics, upstreams = read_pages({ep.label: ep.metrics}, {ep.label: ep.upstreams}, results, memory, elapsed, now)
    checks = tuple(HttpCheck(path, url, results[url].status, results[url].error) for path, url in urls.items())
    snapshot = url_snapshot(ep, checks, metrics, upstreams, now)
    target = ep.metrics.removesuffix("/metrics")
    return _report(target, "url", policy_label, interval, snapshot, policy, memory.pod_metrics, checks)


def _report(
    target: str,
    mode: str,
    policy_label: str,
    interval: float,
    snapshot: Snapshot,
    policy: ZentinelIncidentPolicySpec,
    pages: Mapping[str, PodMetrics],
    checks: tuple[HttpCheck, ...] = (),
) -> TriageReport:
    five_xx, breakers = counter_totals(pages)
    return TriageReport(
        target=target,
        mode=mode,
        policy=policy_label,
        interval_seconds=interval,
        snapshot=snapshot,
        findings=tuple(triage(snapshot, policy.thresholds)),
        checks=checks,
        five_xx_total=five_xx,
        open_breakers=breakers,
    )


# ------------------------------------------------------------------------------ cluster mode
def governing_label(governing: Governing | None) -> str:
    """How the report names the policy it judged by (``core.selection.choose_governing``'s choice)."""
    if governing is None:
        return "defaults (no policy selects this Zentinel)"
    return f"{'cluster policy' if governing.cluster else 'policy'} {governing.status.name}"


async def triage_cluster(
    zentinel_obj: Mapping[str, Any],
    policies: Sequence[Mapping[str, Any]],
    *,
    interval: float,
    cluster_policies: Sequence[Mapping[str, Any]] = (),
    policy_override: tuple[str, ZentinelIncidentPolicySpec] | None = None,
) -> TriageReport:
    from pydantic import ValidationError

    from ..core.selection import policy_for
    from ..models import Zentinel
    from ..signals.gather import GatherSettings, PassMemory, gather

    try:
        zen = Zentinel.model_validate(dict(zentinel_obj))
    except ValidationError as e:
        raise CliError(f"the Zentinel is not valid: {one_line(e, 300)}") from e
    if policy_override is not None:
        label, policy = policy_override
    else:
        governing, policy = policy_for(zen, policies, cluster_policies)
        label = governing_label(governing)
    memory, settings = PassMemory(), GatherSettings()
    await gather(zen, memory, now=dt.datetime.now(dt.UTC), settings=settings)
    await asyncio.sleep(interval)
    snapshot = (await gather(zen, memory, now=dt.datetime.now(dt.UTC), settings=settings)).snapshot
    target = f"Zentinel {zen.metadata.name} (namespace {zen.metadata.namespace})"
    return _report(target, "cluster", label, interval, snapshot, policy, memory.pod_metrics)
