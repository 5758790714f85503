"""Gather one Zentinel's snapshot: the I/O half of "observe".

Kubernetes reads run in worker threads (the official client is synchronous); HTTP scrapes run in
asyncio with a concurrency bound. What one pass must remember for the next (counter values for
rates, restart counts, the request-rate baseline) lives in :class:`PassMemory`; losing it on a
restart costs one pass of rates, never an incident (unknown is not healthy, see core.zstatus).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .. import k8s
from ..core.certs import fingerprint_sha256, inspect_tls_secret, read_tls_secret
from ..core.liveconfig import LiveConfig, parse_live_config
from ..core.snapshot import (
    CertificateSignal,
    ConfigSignal,
    LogMatch,
    MetricsSignal,
    PodSignal,
    Snapshot,
    TargetSignal,
    UpstreamsSignal,
    WorkloadSignal,
)
from ..models.zentinel import MetricsSource, Zentinel
from . import logs as log_signals
from . import metrics as metric_signals
from . import pods as pod_signals
from . import upstreams as upstream_signals
from .prometheus import PrometheusSource
from .scrape import fetch_many

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass
class PassMemory:
    """Per-Zentinel state carried from one pass to the next (in memory only)."""

    restarts: dict[str, int] = dataclasses.field(default_factory=dict)
    pod_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # pod name -> PodMetrics
    scraped_at: dt.datetime | None = None
    baseline_rps: float | None = None
    config_revision: str | None = None
    config_changed_at: dt.datetime | None = None
    config_text: str | None = None  # the current content, to keep a copy of each revision
    config_written_by_operator: bool = False
    deployment: dict[str, Any] | None = None  # as read in the last pass
    want_live_config: bool = False  # a config change awaits verification: read each pod's /admin/config


@dataclasses.dataclass
class GatherSettings:
    scrape_timeout: float = 3.0
    scrape_concurrency: int = 32
    scrape_max_bytes: int = 8_000_000
    log_tail_lines: int = 200
    config_log_window: float = 300.0  # seconds after a config change during which every pod's log is read


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


def _logs(namespace: str, pods: tuple[PodSignal, ...], tail: int, *, config_changed: bool) -> tuple[LogMatch, ...]:
    """Logs of troubled pods (crashing, restarting or not Ready), and of every pod for a while after the
    config changed (a reload Zentinel rejects leaves the pods Ready and serving the old config: only the
    log says so). Cheap when all is well."""
    matches: list[LogMatch] = []
    for pod in pods:
        c = pod.container
        if c is None or (pod.ready and pod.restart_growth == 0 and not c.crash_looping and not config_changed):
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


def _config_changed_lately(memory: PassMemory, now: dt.datetime, settings: GatherSettings) -> bool:
    changed = memory.config_changed_at
    return changed is not None and (now - changed).total_seconds() <= settings.config_log_window


def _config(zen: Zentinel, memory: PassMemory, now: dt.datetime) -> ConfigSignal:
    from ..core.zconfig import check_config, config_revision

    cm = k8s.get_configmap(zen.metadata.namespace, zen.spec.config.config_map_name)
    text = ((cm or {}).get("data") or {}).get(zen.spec.config.key)
    if text is None:
        return ConfigSignal(
            present=False,
            errors=(f"ConfigMap {zen.spec.config.config_map_name} or its key {zen.spec.config.key} is missing",),
        )
    revision = config_revision(text)
    memory.config_text = text
    written = ((cm or {}).get("metadata") or {}).get("annotations", {}) or {}
    memory.config_written_by_operator = written.get("zentinel.io/written-by-operator") == revision
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
        changed_at=memory.config_changed_at or _first_seen(zen, revision, now),
        last_known_good=zen.status.last_known_good_revision,
        health_checks=check.health_checks,
    )


def _first_seen(zen: Zentinel, revision: str, now: dt.datetime) -> dt.datetime | None:
    """When this revision replaced an earlier one (None for the first config the operator ever saw:
    that is where watching began, not a change). A revision missing from a history that has others
    is new since the last recorded pass (an operator restarted in between has no memory of it): a
    change seen now."""
    revisions = zen.status.revisions
    for index, rev in enumerate(revisions):
        if rev.revision == revision:
            return rev.first_seen if index > 0 else None
    return now if revisions else None


def _ca_pem(zen: Zentinel, secret_name: str | None) -> bytes | None:
    """``ca.crt`` (or, for a CA Secret, its ``tls.crt``) of the Secret the chain must verify against."""
    if not secret_name:
        return None
    secret = k8s.get_secret(zen.metadata.namespace, secret_name)
    data = (secret or {}).get("data") or {}
    contents = read_tls_secret({k: v for k, v in data.items() if k in ("ca.crt", "tls.crt")})
    return contents.ca_pem or contents.cert_pem


def _certificates(zen: Zentinel, now: dt.datetime) -> tuple[CertificateSignal, ...]:
    signals = []
    for ref in zen.spec.tls:
        secret = k8s.get_secret(zen.metadata.namespace, ref.secret_name)
        if secret is None:
            signals.append(
                CertificateSignal(
                    name=ref.name,
                    secret=ref.secret_name,
                    present=False,
                    error=f"Secret {ref.secret_name} does not exist",
                )
            )
            continue
        data = dict(secret.get("data") or {})
        ca_secret = ref.ca_secret_name or ref.issuer.ca_secret_name
        if ca_secret and "ca.crt" not in data:
            ca = _ca_pem(zen, ca_secret)
            if ca is not None:
                data["ca.crt"] = base64.b64encode(ca).decode()
        signal = inspect_tls_secret(name=ref.name, secret=ref.secret_name, data=data, now=now)
        leaf = read_tls_secret({k: v for k, v in data.items() if k == "tls.crt"}).cert_pem
        if leaf and signal.error is None:
            signal = dataclasses.replace(signal, fingerprint=fingerprint_sha256(leaf))
        signals.append(signal)
        del data, secret  # key material goes no further than this function
    return tuple(signals)


def _part(failures: list[str], what: str, read: Callable[[], T], unknown: T) -> T:
    """One part of the snapshot; a part that cannot be read is unknown (never healthy), and said so."""
    try:
        return read()
    except Exception as e:
        failures.append(f"{what}: {k8s.describe_error(e)}")
        log.warning("gather %s", failures[-1])
        return unknown


def _kube_part(
    zen: Zentinel, memory: PassMemory, now: dt.datetime, settings: GatherSettings, failures: list[str]
) -> dict[str, Any]:
    """The workload and its pods (without them there is no snapshot: this raises), then the optional parts."""
    ns = zen.metadata.namespace
    no_certificates: tuple[CertificateSignal, ...] = ()
    deployment = k8s.get_deployment(ns, zen.spec.workload.name)
    memory.deployment = deployment
    workload, pods, raw = _pods(zen, deployment, memory)
    return {
        "deployment": deployment,
        "workload": workload,
        "pods": pods,
        "raw_pods": raw,
        # The config first: whether it changed lately decides whose logs are read.
        "config": _part(failures, "config", lambda: _config(zen, memory, now), None),
        "logs": _logs(ns, pods, settings.log_tail_lines, config_changed=_config_changed_lately(memory, now, settings)),
        "certificates": _part(failures, "certificates", lambda: _certificates(zen, now), no_certificates),
    }


async def _served(
    zen: Zentinel, pods: tuple[PodSignal, ...], certs: tuple[CertificateSignal, ...], probe_timeout: float
) -> tuple[CertificateSignal, ...]:
    """For certificates with a TLS port: does every running pod serve the certificate in the Secret?"""
    from .tls_probe import served_certificate

    result = []
    for cert in certs:
        ref = next((t for t in zen.spec.tls if t.name == cert.name), None)
        if ref is None or ref.port is None or cert.fingerprint is None:
            result.append(cert)
            continue
        targets = [p.ip for p in pods if p.ip and p.process_running]
        probes = await asyncio.gather(
            *(served_certificate(ip, ref.port, server_name=ref.server_name, timeout=probe_timeout) for ip in targets)
        )
        answered = [p for p in probes if p.ok]
        matches = all(p.fingerprint == cert.fingerprint for p in answered) if answered else None
        result.append(dataclasses.replace(cert, served_matches=matches))
    return tuple(result)


def read_pages(
    metrics_urls: dict[str, str],
    upstream_urls: dict[str, str],
    results: dict[str, Any],
    memory: PassMemory,
    interval: float | None,
    now: dt.datetime,
) -> tuple[MetricsSignal, UpstreamsSignal]:
    current: list[metric_signals.PodMetrics] = []
    rates: list[metric_signals.PodRates] = []
    failures: list[str] = []
    seen: dict[str, Any] = {}
    for pod, url in metrics_urls.items():
        res = results[url]
        if not res.ok or res.body is None:
            failures.append(f"{pod}: {res.error}")
            continue
        try:
            page = metric_signals.parse_exposition(res.body)
        except metric_signals.MetricsError as e:
            failures.append(f"{pod}: {e.reason}")
            continue
        current.append(page)
        seen[pod] = page
        prev = memory.pod_metrics.get(pod)
        if interval and interval > 0:
            r = metric_signals.compute_rates(prev, page, interval)
            if r is not None:
                rates.append(r)
    metrics = metric_signals.aggregate(rates, current, failures, memory.baseline_rps)
    if metrics.requests_per_second is not None:
        memory.baseline_rps = metric_signals.next_baseline(memory.baseline_rps, metrics.requests_per_second)
    memory.pod_metrics = seen
    memory.scraped_at = now if current else memory.scraped_at

    per_pod: list[list[TargetSignal]] = []
    u_failures: list[str] = []
    for pod, url in upstream_urls.items():
        res = results[url]
        if not res.ok or res.body is None:
            u_failures.append(f"{pod}: {res.error}")
            continue
        try:
            per_pod.append(upstream_signals.parse_upstreams(res.body))
        except upstream_signals.UpstreamsError as e:
            u_failures.append(f"{pod}: {e.reason}")
    return metrics, upstream_signals.merge_upstreams(per_pod, u_failures)


def _scrape_targets(zen: Zentinel, pods: tuple[PodSignal, ...]) -> list[PodSignal]:
    return [p for p in pods if p.ip and p.process_running]


async def _admin(
    zen: Zentinel,
    pods: tuple[PodSignal, ...],
    memory: PassMemory,
    now: dt.datetime,
    settings: GatherSettings,
    session: Any,
    prometheus: PrometheusSource | None = None,
) -> tuple[MetricsSignal | None, UpstreamsSignal | None]:
    """Scrape ``/metrics`` and ``/admin/upstreams`` of every running pod, within the concurrency bound.

    With ``metricsSource: Prometheus`` (and a Prometheus configured), metrics come from one batch of
    queries per interval shared by every Zentinel; ``/admin/upstreams`` is still read from the pods.
    """
    targets = _scrape_targets(zen, pods)
    if not targets:
        return None, None
    a = zen.spec.admin
    from_prometheus = prometheus is not None and zen.spec.metrics_source == MetricsSource.PROMETHEUS
    metrics_urls = (
        {}
        if from_prometheus
        else {p.name: f"{a.scheme}://{p.ip}:{a.effective_metrics_port}{a.metrics_path}" for p in targets}
    )
    upstream_urls = {p.name: f"{a.scheme}://{p.ip}:{a.port}{a.upstreams_path}" for p in targets}
    results = await fetch_many(
        [*metrics_urls.values(), *upstream_urls.values()],
        concurrency=settings.scrape_concurrency,
        timeout=settings.scrape_timeout,
        max_bytes=settings.scrape_max_bytes,
        session=session,
    )
    interval = (now - memory.scraped_at).total_seconds() if memory.scraped_at else None
    # Parsing costs milliseconds per page: keep it off the event loop.
    metrics, upstreams = await asyncio.to_thread(
        read_pages, metrics_urls, upstream_urls, results, memory, interval, now
    )
    if from_prometheus:
        assert prometheus is not None
        metrics = await prometheus.metrics_for(
            zen.metadata.namespace, [p.name for p in targets], now, baseline_rps=memory.baseline_rps
        )
        memory.baseline_rps = metric_signals.next_baseline(memory.baseline_rps, metrics.requests_per_second)
    return metrics, upstreams


async def _probe_targets(
    upstreams: UpstreamsSignal | None, config: ConfigSignal | None, settings: GatherSettings, session: Any
) -> UpstreamsSignal | None:
    """Targets no pod could judge, asked directly on their upstream's health-check path."""
    if upstreams is None or config is None:
        return upstreams
    plan = upstream_signals.probe_plan(upstreams, config.health_checks)
    if not plan:
        return upstreams
    results = await fetch_many(
        list(plan.values()),
        concurrency=settings.scrape_concurrency,
        timeout=settings.scrape_timeout,
        max_bytes=64_000,
        session=session,
    )
    answers = {key: (results[url].status, results[url].error) for key, url in plan.items()}
    return upstream_signals.apply_probes(upstreams, config.health_checks, answers)


async def _live_configs(
    zen: Zentinel, pods: tuple[PodSignal, ...], settings: GatherSettings, session: Any
) -> tuple[LiveConfig, ...]:
    """Each running pod's ``/admin/config``: what the process really runs (for verifying a config change)."""
    a = zen.spec.admin
    urls = {p.name: f"{a.scheme}://{p.ip}:{a.port}{a.config_path}" for p in _scrape_targets(zen, pods)}
    results = await fetch_many(
        list(urls.values()),
        concurrency=settings.scrape_concurrency,
        timeout=settings.scrape_timeout,
        max_bytes=settings.scrape_max_bytes,
        session=session,
    )
    out = []
    for pod, url in urls.items():
        res = results[url]
        if not res.ok or res.body is None:
            out.append(LiveConfig(pod=pod, error=f"{a.config_path} unreadable: {res.error}"))
        else:
            out.append(parse_live_config(pod, res.body))
    return tuple(out)


async def gather(
    zen: Zentinel,
    memory: PassMemory,
    *,
    now: dt.datetime,
    settings: GatherSettings,
    session: Any = None,
    prometheus: PrometheusSource | None = None,
    failures: list[str] | None = None,
) -> Snapshot:
    """Observe one Zentinel. Parts that fail are left unknown and described in ``failures``."""
    failures = [] if failures is None else failures
    kube = await asyncio.to_thread(_kube_part, zen, memory, now, settings, failures)
    try:
        certificates = await _served(zen, kube["pods"], kube["certificates"], settings.scrape_timeout)
    except Exception as e:
        failures.append(f"served certificates: {k8s.describe_error(e)}")
        log.warning("gather %s", failures[-1])
        certificates = kube["certificates"]
    try:
        metrics, upstreams = await _admin(zen, kube["pods"], memory, now, settings, session, prometheus)
    except Exception as e:
        failures.append(f"admin endpoints: {k8s.describe_error(e)}")
        log.warning("gather %s", failures[-1])
        metrics, upstreams = None, None
    try:
        upstreams = await _probe_targets(upstreams, kube["config"], settings, session)
    except Exception as e:
        failures.append(f"target probes: {k8s.describe_error(e)}")
        log.warning("gather %s", failures[-1])
    live: tuple[LiveConfig, ...] = ()
    if memory.want_live_config:
        try:
            live = await _live_configs(zen, kube["pods"], settings, session)
        except Exception as e:
            failures.append(f"live configs: {k8s.describe_error(e)}")
            log.warning("gather %s", failures[-1])
    return Snapshot(
        namespace=zen.metadata.namespace,
        zentinel=zen.metadata.name,
        observed_at=now,
        workload=kube["workload"],
        pods=kube["pods"],
        config=kube["config"],
        logs=kube["logs"],
        certificates=certificates,
        metrics=metrics,
        upstreams=upstreams,
        live_configs=live,
    )
