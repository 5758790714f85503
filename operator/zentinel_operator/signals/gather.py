"""Gather one Zentinel's observation: the I/O half of "observe".

:func:`gather` returns an :class:`~zentinel_operator.core.observation.Observation`: the typed snapshot
triage reads, and the Deployment, the pods, the config text, the logs and the admin pages it was made from,
for the rest of the pass (config history, remediation, evidence, status) to use without reading again.
:func:`complete_for_evidence` adds what an evidence bundle needs beyond that, reading only what is missing.

Kubernetes reads run in worker threads (the official client is synchronous); HTTP scrapes run in
asyncio with a concurrency bound, on the pass's shared client session. What one pass must remember
for the next (counter values for rates, restart counts, the request-rate baseline) lives in
:class:`PassMemory`; losing it on a restart costs one pass of rates, never an incident (unknown is
not healthy, see core.zstatus).

Two kinds of pass read differently. A full pass (the timer's, every scan interval) reads everything. An
event pass (started by a change to the pods, the Deployment, the ConfigMap or a TLS Secret) reads the API
objects and logs afresh but reuses what the last full pass read from the pods' own endpoints
(:class:`Endpoints`: metrics and their rates, upstreams, target probes, served certificates, live configs):
rates stay computed over a scan interval, never over the second since the last pass, and an event pass
changes the status only where an object really changed. Restart growth is the exception: it is counted from
the last pass that read the pods, whatever its kind, so a restart is reported once, by the pass that sees it
first (counted from scan to scan instead, every event pass until the next scan would report it again, and
bring back an incident a person deleted after the pod recovered)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .. import evidence_io, k8s
from ..core import evidence as ev
from ..core.certs import fingerprint_sha256, inspect_tls_secret, read_tls_secret
from ..core.liveconfig import LiveConfig, parse_live_config
from ..core.observation import LogRead, Observation
from ..core.snapshot import (
    CertificateSignal,
    ConfigSignal,
    LogMatch,
    MetricsSignal,
    PodSignal,
    Snapshot,
    UpstreamsSignal,
    WorkloadSignal,
)
from ..models.zentinel import MetricsSource, Zentinel
from ..names import ANN_WRITTEN_BY_OPERATOR
from . import logs as log_signals
from . import metrics as metric_signals
from . import pods as pod_signals
from . import upstreams as upstream_signals
from .prometheus import PrometheusSource
from .scrape import FetchResult, fetch_many

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
    want_live_config: bool = False  # a config change awaits verification: read each pod's /admin/config
    endpoints: Endpoints | None = None  # what the last full pass read from the pods' endpoints
    # Watch events concerning this Zentinel so far (``changed``): a read made at an earlier count is out of date.
    changes: int = 0
    reads: ApiReads | None = None  # what the last full pass read from the API server, while it is current
    # The Incidents stage's quiet list: (changes when it was listed, when, the list), see handlers.zentinel
    incidents: tuple[int, dt.datetime, Any] | None = None

    def changed(self) -> None:
        """A watch event concerns this Zentinel: what its passes read from the API server is out of date."""
        self.changes += 1


@dataclasses.dataclass(frozen=True)
class ApiReads:
    """What a quiet full pass read from the API server (the Deployment, the pods, the config, the certificates),
    reused by the next timer passes instead of reading again (:func:`reusable`).

    The watches that start event passes report every change to these objects (``PassMemory.changed``); until
    one comes, the objects are as read. That is an informer's contract, kept by kopf's watches, without a
    second copy of every object: only what the pass read, parsed (of a Secret, the inspected certificate, never
    its key). A resync period bounds the reuse as an informer's does."""

    kube: dict[str, Any]
    changes: int  # PassMemory.changes when the read began
    generation: int | None  # the Zentinel's, whose spec names what is read
    read_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """What a full pass read from the pods' own endpoints, for the event passes until the next one."""

    metrics: MetricsSignal | None = None
    upstreams: UpstreamsSignal | None = None
    served: tuple[tuple[str, str | None, bool | None], ...] = ()  # (certificate, fingerprint, served_matches)
    live_configs: tuple[LiveConfig, ...] = ()
    failures: tuple[str, ...] = ()  # what could not be read, reported again by each event pass
    read_at: dt.datetime | None = None  # the full pass that read them

    def served_certificates(self, certs: tuple[CertificateSignal, ...]) -> tuple[CertificateSignal, ...]:
        """The certificates with the last handshake's answer, where the Secret still holds what was checked."""
        known = {(name, fp): matches for name, fp, matches in self.served}
        return tuple(dataclasses.replace(c, served_matches=known.get((c.name, c.fingerprint))) for c in certs)


@dataclasses.dataclass
class GatherSettings:
    scrape_timeout: float = 3.0
    scrape_concurrency: int = 32
    scrape_max_bytes: int = 8_000_000
    log_tail_lines: int = 200
    config_log_window: float = 300.0  # seconds after a config change during which every pod's log is read
    reads_resync: float = 0.0  # seconds a quiet full pass's API reads are reused (0: never; needs the watches)


def _pods(
    zen: Zentinel, deployment: dict[str, Any] | None, memory: PassMemory
) -> tuple[WorkloadSignal, tuple[PodSignal, ...], list[dict[str, Any]]]:
    """The workload and its pods; restart growth counts from the last pass that read them, of either kind, so
    each restart is reported by one pass: the one that sees it first."""
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


def _logs(
    namespace: str, pods: tuple[PodSignal, ...], tail: int, *, config_changed: bool, keep_lines: int = 0
) -> tuple[tuple[LogMatch, ...], tuple[LogRead, ...]]:
    """Logs of troubled pods (crashing, restarting or not Ready), and of every pod for a while after the
    config changed (a reload Zentinel rejects leaves the pods Ready and serving the old config: only the
    log says so). Cheap when all is well. Each log is read once, with ``keep_lines`` lines when more than
    ``tail`` (what the evidence keeps), and matched on its last ``tail`` lines."""
    matches: list[LogMatch] = []
    reads: list[LogRead] = []
    lines = max(tail, keep_lines)
    for pod in pods:
        c = pod.container
        if c is None or not (pod.troubled or config_changed):
            continue
        for previous in (False, True):
            if previous and c.restart_count == 0:
                continue
            read = _read_log(namespace, pod.name, c.name, previous=previous, lines=lines)
            reads.append(read)
            if read.error is not None:  # a log we cannot read is a missing clue, not a failed pass
                log.debug("logs of %s unavailable: %s", pod.name, read.error)
                continue
            matches += log_signals.match_lines(pod.name, c.name, read.last(tail).text, previous=previous)
    return log_signals.newest_per_cause(matches), tuple(reads)


def _read_log(namespace: str, pod: str, container: str, *, previous: bool, lines: int) -> LogRead:
    try:
        text = k8s.pod_log(namespace, pod, container, previous=previous, tail_lines=lines)
    except Exception as e:
        return LogRead(pod, container, previous, lines, error=evidence_io.api_error(e))
    return LogRead(pod, container, previous, lines, text=text)


def _config_changed_lately(memory: PassMemory, now: dt.datetime, settings: GatherSettings) -> bool:
    changed = memory.config_changed_at
    return changed is not None and (now - changed).total_seconds() <= settings.config_log_window


@dataclasses.dataclass(frozen=True)
class _Config:
    signal: ConfigSignal
    text: str | None = None
    written_by_operator: bool = False


def _config(zen: Zentinel, memory: PassMemory, now: dt.datetime) -> _Config:
    from ..core.zconfig import check_config, config_revision

    cm = k8s.get_configmap(zen.metadata.namespace, zen.spec.config.config_map_name)
    text = ((cm or {}).get("data") or {}).get(zen.spec.config.key)
    if text is None:
        return _Config(
            ConfigSignal(
                present=False,
                errors=(f"ConfigMap {zen.spec.config.config_map_name} or its key {zen.spec.config.key} is missing",),
            )
        )
    revision = config_revision(text)
    written = ((cm or {}).get("metadata") or {}).get("annotations", {}) or {}
    if memory.config_revision != revision:
        if memory.config_revision is not None:
            memory.config_changed_at = now
        memory.config_revision = revision
    check = check_config(text)
    signal = ConfigSignal(
        present=True,
        revision=revision,
        valid=check.valid,
        errors=tuple(check.errors),
        changed_at=memory.config_changed_at or _first_seen(zen, revision, now),
        last_known_good=zen.status.last_known_good_revision,
        health_checks=check.health_checks,
    )
    return _Config(signal, text, written.get(ANN_WRITTEN_BY_OPERATOR) == revision)


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
    zen: Zentinel,
    memory: PassMemory,
    now: dt.datetime,
    settings: GatherSettings,
    failures: list[str],
    log_lines: int = 0,
    full: bool = True,
) -> dict[str, Any]:
    """The workload and its pods (without them there is no snapshot: this raises), then the optional parts.

    A full pass reuses the last full pass's reads while they are current and quiet (:func:`reusable`)."""
    ns = zen.metadata.namespace
    if full and (kept := reusable(memory, zen, now, settings)) is not None:
        return _reused(kept, zen, memory, now)
    changes = memory.changes  # before any read: a change from now on makes what is read out of date
    before = len(failures)
    no_certificates: tuple[CertificateSignal, ...] = ()
    deployment = k8s.get_deployment(ns, zen.spec.workload.name)
    workload, pods, raw = _pods(zen, deployment, memory)
    # The config first: whether it changed lately decides whose logs are read.
    config = _part(failures, "config", lambda: _config(zen, memory, now), None)
    changed = _config_changed_lately(memory, now, settings)
    matches, reads = _logs(ns, pods, settings.log_tail_lines, config_changed=changed, keep_lines=log_lines)
    part = {
        "deployment": deployment,
        "workload": workload,
        "pods": pods,
        "raw_pods": raw,
        "config": config,
        "logs": matches,
        "log_reads": reads,
        "certificates": _part(failures, "certificates", lambda: _certificates(zen, now), no_certificates),
    }
    if full:
        quiet = len(failures) == before and _quiet(part, changed)
        memory.reads = ApiReads(part, changes, zen.metadata.generation, now) if quiet else None
    return part


def _quiet(part: dict[str, Any], config_changed: bool) -> bool:
    """Whether a read may be reused: all read, no log read (no troubled pod, no config change lately), the
    Deployment there and not rolling out. Anything else is read again by every pass, as without reuse."""
    workload: WorkloadSignal = part["workload"]
    pods: tuple[PodSignal, ...] = part["pods"]
    return (
        part["deployment"] is not None
        and part["config"] is not None
        and not part["log_reads"]
        and not config_changed
        and not workload.rolling_out
        and not any(p.troubled for p in pods)
    )


def reusable(memory: PassMemory, zen: Zentinel, now: dt.datetime, settings: GatherSettings) -> ApiReads | None:
    """The last full pass's reads, if a pass may use them instead of reading: reuse is on, no watch event has
    concerned this Zentinel since the read began, its spec is the one read for, and the resync period has not
    run out."""
    reads = memory.reads
    if settings.reads_resync <= 0 or reads is None:
        return None
    if reads.changes != memory.changes or reads.generation != zen.metadata.generation:
        return None
    if (now - reads.read_at).total_seconds() >= settings.reads_resync:
        return None
    return reads


def _reused(reads: ApiReads, zen: Zentinel, memory: PassMemory, now: dt.datetime) -> dict[str, Any]:
    """A reused read as this pass would have made it: the config judged against the Zentinel's status now, the
    certificates' days left counted to now."""
    part = dict(reads.kube)
    config: _Config = part["config"]
    signal = config.signal
    if signal.present and signal.revision is not None:
        signal = dataclasses.replace(
            signal,
            changed_at=memory.config_changed_at or _first_seen(zen, signal.revision, now),
            last_known_good=zen.status.last_known_good_revision,
        )
    part["config"] = dataclasses.replace(config, signal=signal)
    part["certificates"] = tuple(c.at(now) for c in part["certificates"])
    return part


async def _served(
    zen: Zentinel,
    workload: WorkloadSignal,
    pods: tuple[PodSignal, ...],
    certs: tuple[CertificateSignal, ...],
    probe_timeout: float,
) -> tuple[CertificateSignal, ...]:
    """For certificates with a TLS port: does every running pod serve the certificate in the Secret? Pods made
    from an older template than a rotation's are left out: they are being replaced, and serve the old one."""
    from .tls_probe import served_certificate

    result = []
    for cert in certs:
        ref = next((t for t in zen.spec.tls if t.name == cert.name), None)
        if ref is None or ref.port is None or cert.fingerprint is None:
            result.append(cert)
            continue
        targets = [p.ip for p in pods if p.ip and p.process_running and p.loads_current_certificates(workload)]
        probes = await asyncio.gather(
            *(served_certificate(ip, ref.port, server_name=ref.server_name, timeout=probe_timeout) for ip in targets)
        )
        answered = [p for p in probes if p.ok]
        matches = all(p.fingerprint == cert.fingerprint for p in answered) if answered else None
        result.append(dataclasses.replace(cert, served_matches=matches))
    return tuple(result)


def _parsed_pages(
    urls: dict[str, str],
    results: dict[str, Any],
    parse: Callable[[str], T],
    error: type[metric_signals.MetricsError] | type[upstream_signals.UpstreamsError],
) -> tuple[dict[str, T], list[str]]:
    """Each pod's page, parsed; a page not read, or that does not parse, is a failure line ("pod: why")."""
    pages: dict[str, T] = {}
    failures: list[str] = []
    for pod, url in urls.items():
        res = results[url]
        if not res.ok or res.body is None:
            failures.append(f"{pod}: {res.error}")
            continue
        try:
            pages[pod] = parse(res.body)
        except error as e:
            failures.append(f"{pod}: {e.reason}")
    return pages, failures


def read_pages(
    metrics_urls: dict[str, str],
    upstream_urls: dict[str, str],
    results: dict[str, Any],
    memory: PassMemory,
    interval: float | None,
    now: dt.datetime,
) -> tuple[MetricsSignal, UpstreamsSignal]:
    seen, failures = _parsed_pages(metrics_urls, results, metric_signals.parse_exposition, metric_signals.MetricsError)
    current = list(seen.values())
    rates: list[metric_signals.PodRates] = []
    if interval and interval > 0:
        for pod, page in seen.items():
            r = metric_signals.compute_rates(memory.pod_metrics.get(pod), page, interval)
            if r is not None:
                rates.append(r)
    metrics = metric_signals.aggregate(rates, current, failures, memory.baseline_rps)
    if metrics.requests_per_second is not None:
        memory.baseline_rps = metric_signals.next_baseline(memory.baseline_rps, metrics.requests_per_second)
    memory.pod_metrics = dict(seen)
    memory.scraped_at = now if current else memory.scraped_at

    per_pod, u_failures = _parsed_pages(
        upstream_urls, results, upstream_signals.parse_upstreams, upstream_signals.UpstreamsError
    )
    return metrics, upstream_signals.merge_upstreams(list(per_pod.values()), u_failures)


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
    pages: dict[str, str | None] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> tuple[MetricsSignal | None, UpstreamsSignal | None]:
    """Scrape ``/metrics`` and ``/admin/upstreams`` of every running pod, within the concurrency bound.

    With ``metricsSource: Prometheus`` (and a Prometheus configured), metrics come from one batch of
    queries per interval shared by every Zentinel; ``/admin/upstreams`` is still read from the pods.
    Every page read is kept in ``pages`` (URL -> 2xx body, else None). Rates are over the time between this
    scrape and the last, by ``clock`` (default: ``now``): a pass that started late or read the API slowly
    does not stretch or shrink the interval.
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
    scraped = clock() if clock is not None else now
    results = await fetch_many(
        [*metrics_urls.values(), *upstream_urls.values()],
        concurrency=settings.scrape_concurrency,
        timeout=settings.scrape_timeout,
        max_bytes=settings.scrape_max_bytes,
        session=session,
    )
    _keep_pages(pages, results)
    interval = (scraped - memory.scraped_at).total_seconds() if memory.scraped_at else None
    # Parsing costs milliseconds per page: keep it off the event loop.
    metrics, upstreams = await asyncio.to_thread(
        read_pages, metrics_urls, upstream_urls, results, memory, interval, scraped
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


def _keep_pages(pages: dict[str, str | None] | None, results: dict[str, FetchResult]) -> None:
    if pages is not None:
        pages.update({url: res.body if res.ok else None for url, res in results.items()})


async def _live_configs(
    zen: Zentinel,
    pods: tuple[PodSignal, ...],
    settings: GatherSettings,
    session: Any,
    pages: dict[str, str | None] | None = None,
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
    _keep_pages(pages, results)
    out = []
    for pod, url in urls.items():
        res = results[url]
        if not res.ok or res.body is None:
            out.append(LiveConfig(pod=pod, error=f"{a.config_path} unreadable: {res.error}"))
        else:
            out.append(parse_live_config(pod, res.body))
    return tuple(out)


async def _endpoints(
    zen: Zentinel,
    workload: WorkloadSignal,
    pods: tuple[PodSignal, ...],
    certs: tuple[CertificateSignal, ...],
    config: ConfigSignal | None,
    memory: PassMemory,
    now: dt.datetime,
    settings: GatherSettings,
    session: Any,
    prometheus: PrometheusSource | None,
    pages: dict[str, str | None],
    clock: Callable[[], dt.datetime] | None,
) -> Endpoints:
    """Everything a full pass reads from the pods' own endpoints (and Prometheus); each part that fails is unknown."""
    failures: list[str] = []

    def failed(what: str, e: Exception) -> None:
        failures.append(f"{what}: {k8s.describe_error(e)}")
        log.warning("gather %s", failures[-1])

    try:
        certs = await _served(zen, workload, pods, certs, settings.scrape_timeout)
    except Exception as e:
        failed("served certificates", e)
    metrics: MetricsSignal | None = None
    upstreams: UpstreamsSignal | None = None
    try:
        metrics, upstreams = await _admin(zen, pods, memory, now, settings, session, prometheus, pages, clock)
    except Exception as e:
        failed("admin endpoints", e)
    try:
        upstreams = await _probe_targets(upstreams, config, settings, session)
    except Exception as e:
        failed("target probes", e)
    live: tuple[LiveConfig, ...] = ()
    if memory.want_live_config:
        try:
            live = await _live_configs(zen, pods, settings, session, pages)
        except Exception as e:
            failed("live configs", e)
    return Endpoints(
        metrics=metrics,
        upstreams=upstreams,
        served=tuple((c.name, c.fingerprint, c.served_matches) for c in certs),
        live_configs=live,
        failures=tuple(failures),
        read_at=now,
    )


async def gather(
    zen: Zentinel,
    memory: PassMemory,
    *,
    now: dt.datetime,
    settings: GatherSettings,
    session: Any = None,
    prometheus: PrometheusSource | None = None,
    failures: list[str] | None = None,
    log_lines: int = 0,
    full: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
) -> Observation:
    """Observe one Zentinel. Parts that fail are left unknown and described in ``failures``.

    Each log read keeps ``log_lines`` lines when that is more than ``settings.log_tail_lines`` (the evidence's
    ``logLines``: a bundle then reuses the read); triage matches only the last ``log_tail_lines``.
    Not ``full`` (an event pass): the API objects and logs are read, the pods' endpoints are not; their signals
    are the last full pass's (:class:`Endpoints`; unknown before the first one). ``clock`` times each scrape
    for the rates (default: ``now``).
    """
    failures = [] if failures is None else failures
    kube = await asyncio.to_thread(_kube_part, zen, memory, now, settings, failures, log_lines, full)
    config: _Config | None = kube["config"]
    config_signal = config.signal if config is not None else None
    pages: dict[str, str | None] = {}
    if full:
        memory.endpoints = await _endpoints(
            zen,
            kube["workload"],
            kube["pods"],
            kube["certificates"],
            config_signal,
            memory,
            now,
            settings,
            session,
            prometheus,
            pages,
            clock,
        )
    endpoints = memory.endpoints or Endpoints()
    certificates = endpoints.served_certificates(kube["certificates"])
    failures += endpoints.failures
    metrics, upstreams, live = endpoints.metrics, endpoints.upstreams, endpoints.live_configs
    snapshot = Snapshot(
        namespace=zen.metadata.namespace,
        zentinel=zen.metadata.name,
        observed_at=now,
        workload=kube["workload"],
        pods=kube["pods"],
        config=config_signal,
        logs=kube["logs"],
        certificates=certificates,
        metrics=metrics,
        upstreams=upstreams,
        live_configs=live,
        endpoints_at=endpoints.read_at,
    )
    return Observation(
        snapshot=snapshot,
        deployment=kube["deployment"],
        pods=tuple(kube["raw_pods"]),
        config_text=config.text if config is not None else None,
        config_written_by_operator=config.written_by_operator if config is not None else False,
        logs=kube["log_reads"],
        pages=pages,
    )


async def complete_for_evidence(
    zen: Zentinel,
    observation: Observation,
    *,
    log_lines: int,
    settings: GatherSettings,
    session: Any = None,
) -> Observation:
    """The observation with what an evidence bundle holds beyond it: each kept pod's container logs (current
    and previous), every running pod's admin pages and the namespace's events. What the pass already read
    is used as it is; only the rest is read, once, logs in a worker thread and pages on the shared session."""
    kept, _ = ev.kept_pods(observation.pods)
    ns = zen.metadata.namespace
    missing_logs = [
        w
        for w in ev.wanted_logs(kept)
        if observation.log(w.pod, w.container, previous=w.previous, lines=log_lines) is None
    ]
    missing_pages = [w.url for w in ev.wanted_pages(zen.spec.admin, kept) if w.url not in observation.pages]

    def kube_reads() -> tuple[list[LogRead], tuple[dict[str, Any], ...] | None, str | None]:
        reads = [_read_log(ns, w.pod, w.container, previous=w.previous, lines=log_lines) for w in missing_logs]
        try:
            return reads, tuple(evidence_io.list_events(ns)), None
        except Exception as e:
            return reads, None, evidence_io.api_error(e)

    async def page_reads() -> dict[str, FetchResult]:
        if not missing_pages:
            return {}
        try:
            return await fetch_many(
                missing_pages,
                concurrency=settings.scrape_concurrency,
                timeout=settings.scrape_timeout,
                max_bytes=settings.scrape_max_bytes,
                session=session,
            )
        except Exception as e:  # the bundle notes the pages it lacks
            log.warning("evidence pages of %s/%s not read: %s", ns, zen.metadata.name, evidence_io.api_error(e))
            return {}

    pages = dict(observation.pages)
    fetched, (new_logs, events, events_error) = await asyncio.gather(page_reads(), asyncio.to_thread(kube_reads))
    _keep_pages(pages, fetched)
    return dataclasses.replace(
        observation,
        logs=(*observation.logs, *new_logs),
        pages=pages,
        events=events,
        events_error=events_error,
    )
