"""How long the pure half of one pass takes: ``core.triage.triage`` + ``core.zstatus.build_status``.

Builds realistic snapshots (3-10 pods, 5-20 routes, 2-6 upstreams of 2-8 targets, 1-3
certificates, a config; about one Zentinel in six in some kind of trouble: a crash-looping pod,
5xx, unhealthy targets, an expiring certificate, slow answers, a log line), then times one pass
over 1, 100 and 1,000 of them (``--sizes``): triage of each snapshot, then its status from the
previous pass's status, its findings and its open incidents. Prints best and median of
``--rounds``. A benchmark, not a test: nothing is asserted. No I/O is timed.

    .venv/bin/python benchmarks/triage_pass.py
    .venv/bin/python benchmarks/triage_pass.py --sizes 1,100,1000,5000 --rounds 9
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import statistics
import time
from collections.abc import Sequence

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
from zentinel_operator.core.triage import triage
from zentinel_operator.core.zstatus import build_status
from zentinel_operator.models.incident import ZentinelIncident
from zentinel_operator.models.policy import Thresholds, ZentinelIncidentPolicySpec
from zentinel_operator.models.zentinel import ZentinelStatus

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
MI = 1024 * 1024
TROUBLES = ("crash", "errors", "upstreams", "certificate", "latency", "log", "restarts")


@dataclasses.dataclass
class Zen:
    snapshot: Snapshot
    status: ZentinelStatus
    incidents: list[ZentinelIncident]
    trouble: str | None


def _pods(rng: random.Random, name: str, n: int, trouble: str | None) -> tuple[PodSignal, ...]:
    pods = []
    for i in range(n):
        crashing = trouble == "crash" and i == 0
        restarts = rng.randint(0, 2) + (6 if crashing else 0) + (3 if trouble == "restarts" and i < 2 else 0)
        container = ContainerSignal(
            name="zentinel",
            ready=not crashing,
            running=not crashing,
            restart_count=restarts,
            waiting_reason="CrashLoopBackOff" if crashing else None,
            last_terminated_reason="Error" if restarts else None,
            last_exit_code=1 if restarts else None,
        )
        pods.append(
            PodSignal(
                name=f"{name}-7d9f{rng.randrange(16**4):04x}-{i:02d}",
                ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{i + 1}",
                phase="Running",
                ready=not crashing,
                container=container,
                restart_growth=2 if crashing or (trouble == "restarts" and i < 2) else 0,
                config_revision="c0ffee12",
            )
        )
    return tuple(pods)


def _metrics(rng: random.Random, n_pods: int, trouble: str | None) -> MetricsSignal:
    interval = 15.0
    routes = []
    for r in range(rng.randint(5, 20)):
        requests = float(rng.randint(200, 20_000))
        share = rng.uniform(0.0, 0.004)
        if trouble == "errors" and r < 2:
            share = rng.uniform(0.05, 0.6)
        routes.append(RouteSignal(route=f"route-{r}", requests=requests, errors=round(requests * share)))
    proxy = {"502": float(rng.randint(0, 3))} if rng.random() < 0.3 else {}
    if proxy:
        routes.append(RouteSignal(route="(proxy)", requests=proxy["502"], errors=proxy["502"]))
    requests = sum(r.requests for r in routes)
    rps = requests / interval
    return MetricsSignal(
        available=True,
        pods_scraped=n_pods,
        interval_seconds=interval,
        requests=requests,
        errors=sum(r.errors for r in routes),
        routes=tuple(sorted(routes, key=lambda r: (-r.errors, -r.requests, r.route))),
        latency_p99_seconds=rng.uniform(1.5, 4.0) if trouble == "latency" else rng.uniform(0.01, 0.3),
        open_connections=float(rng.randint(10, 4000)),
        memory_bytes=float(rng.randint(60, 300) * MI),
        circuit_breakers_open=None,
        requests_per_second=rps,
        baseline_requests_per_second=rps * rng.uniform(0.8, 1.2),
        proxy_errors=proxy,
        version="0.6.45",
    )


def _upstreams(rng: random.Random, trouble: str | None) -> UpstreamsSignal:
    targets = []
    for u in range(rng.randint(2, 6)):
        for t in range(rng.randint(2, 8)):
            bad = trouble == "upstreams" and u == 0 and t % 2 == 0
            targets.append(
                TargetSignal(
                    upstream=f"upstream-{u}",
                    address=f"10.1.{u}.{t + 10}:8000",
                    status=TargetStatus.UNHEALTHY if bad else TargetStatus.HEALTHY,
                    failure_rate=rng.uniform(0.5, 1.0) if bad else rng.uniform(0.0, 0.01),
                    last_error="connection refused" if bad else None,
                )
            )
    return UpstreamsSignal(available=True, targets=tuple(targets))


def _certificates(rng: random.Random, name: str, trouble: str | None) -> tuple[CertificateSignal, ...]:
    certs = []
    for c in range(rng.randint(1, 3)):
        days = rng.uniform(2, 3) if trouble == "certificate" and c == 0 else rng.uniform(31, 89)
        certs.append(
            CertificateSignal(
                name=f"cert-{c}",
                secret=f"{name}-tls-{c}",
                present=True,
                not_after=NOW + dt.timedelta(days=days),
                days_left=days,
                key_matches=True,
                chain_valid=True,
                sans=(f"{name}.example.com", f"www.{name}.example.com"),
                served_matches=True,
                fingerprint=f"{rng.getrandbits(256):064x}",
            )
        )
    return tuple(certs)


def snapshot(rng: random.Random, i: int, trouble: str | None) -> Snapshot:
    name = f"edge-{i}"
    n = rng.randint(3, 10)
    pods = _pods(rng, name, n, trouble)
    logs: tuple[LogMatch, ...] = ()
    if trouble in ("log", "crash"):
        logs = (
            LogMatch(
                pod=pods[0].name,
                container="zentinel",
                previous=trouble == "crash",
                cause=LogCause.CONFIG_REJECTED if trouble == "log" else LogCause.ADDRESS_IN_USE,
                line="Configuration validation failed - new configuration REJECTED"
                if trouble == "log"
                else "Address already in use (os error 98)",
            ),
        )
    return Snapshot(
        namespace=f"team-{i % 37}",
        zentinel=name,
        observed_at=NOW,
        workload=WorkloadSignal(
            exists=True,
            desired=n,
            updated=n,
            available=sum(p.ready for p in pods),
            memory_limit_bytes=512 * MI,
            generation=3,
            observed_generation=3,
        ),
        pods=pods,
        metrics=_metrics(rng, n, trouble),
        upstreams=_upstreams(rng, trouble),
        certificates=_certificates(rng, name, trouble),
        config=ConfigSignal(
            present=True,
            revision="c0ffee12",
            valid=True,
            changed_at=NOW - dt.timedelta(days=2),
            last_known_good="c0ffee12",
        ),
        logs=logs,
    )


def _incidents(snap: Snapshot, findings: Sequence[Finding]) -> list[ZentinelIncident]:
    return [
        ZentinelIncident.model_validate(
            {
                "metadata": {"name": f"inc-20261127-{k + 1:03d}", "namespace": snap.namespace},
                "spec": {
                    "zentinelRef": {"name": snap.zentinel},
                    "category": f.category.value,
                    "fingerprint": f"{snap.zentinel}/{f.category.value}",
                },
                "status": {"state": "Detected", "severity": f.severity.value, "summary": f.summary},
            }
        )
        for k, f in enumerate(findings)
    ]


def fleet(size: int, thresholds: Thresholds, seed: int) -> list[Zen]:
    """``size`` Zentinels as they stand after a first pass (statuses and open incidents in place)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fixtures, not secrets
    zens = []
    for i in range(size):
        trouble = TROUBLES[rng.randrange(len(TROUBLES))] if rng.random() < 1 / 6 else None
        snap = snapshot(rng, i, trouble)
        findings = triage(snap, thresholds)
        incidents = _incidents(snap, findings)
        status = build_status(ZentinelStatus(), snap, findings, incidents, now=NOW, generation=3)
        zens.append(Zen(snapshot=snap, status=status, incidents=incidents, trouble=trouble))
    return zens


def one_pass(zens: Sequence[Zen], thresholds: Thresholds, now: dt.datetime) -> int:
    found = 0
    for z in zens:
        findings = triage(z.snapshot, thresholds)
        build_status(z.status, z.snapshot, findings, z.incidents, now=now, generation=3)
        found += len(findings)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,1000", help="comma-separated numbers of Zentinels")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    thresholds = ZentinelIncidentPolicySpec().thresholds
    print(f"{'zentinels':>9} {'troubled':>8} {'findings':>8} {'best':>10} {'median':>10} {'per zentinel':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        zens = fleet(size, thresholds, args.seed)
        troubled = sum(1 for z in zens if z.trouble)
        times = []
        found = 0
        for r in range(args.rounds):
            now = NOW + dt.timedelta(seconds=15 * (r + 1))
            started = time.perf_counter()
            found = one_pass(zens, thresholds, now)
            times.append(time.perf_counter() - started)
        best, median = min(times), statistics.median(times)
        print(
            f"{size:>9} {troubled:>8} {found:>8} {best * 1000:>8.2f}ms {median * 1000:>8.2f}ms "
            f"{median / size * 1e6:>10.0f}us"
        )


if __name__ == "__main__":
    main()
