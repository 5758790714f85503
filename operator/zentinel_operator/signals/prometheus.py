"""Zentinel's metrics read from a Prometheus server that already scrapes them (``metricsSource: Prometheus``).

For clusters where Prometheus scrapes every Zentinel pod, the operator need not scrape them too: it
asks Prometheus' HTTP API (``/api/v1/query``) for the same series. One *batch* of instant queries
(:func:`build_queries`) per interval answers for every Zentinel at once, so the cost is a few
queries per interval however many Zentinels and pods there are, not one request per pod.

The batch is keyed by its evaluation time: ``now`` rounded down to ``refresh_seconds``. Every
Zentinel's pass in the same interval gets the same batch; callers that arrive while it is being
fetched await the same request. A failed batch is kept for its interval too, so a dead Prometheus
costs one batch per interval, not one per Zentinel.

The mapping is pure (:func:`parse_query_response` -> :func:`index_results` -> :func:`metrics_signal`)
and builds the same :class:`~..core.snapshot.MetricsSignal` as the scrape path, through
:func:`.metrics.aggregate`, with the same conventions (see :mod:`.metrics`):

- an error is a ``zentinel_requests_total`` answer with ``status=~"5.."`` (PromQL anchors it, as
  the scrape path's ``^5\\d\\d$``) plus Zentinel's own ``proxy_error_502|503|504`` answers, the
  latter under the pseudo-route :data:`.metrics.PROXY_ROUTE`; ``proxy_error_500`` is left out
  (0.6.45 counts every builtin-handler answer there);
- counts are ``increase(...[window])`` (Prometheus handles counter resets), so ``interval_seconds``
  is the window and ``requests_per_second`` is ``requests / window``;
- p99 latency is :func:`.metrics.histogram_quantile` over the buckets summed over pods and routes;
- gauges that read flat zero are unknown, as on the scrape path.

Prometheus identifies a pod by two target labels, ``namespace`` and ``pod`` by default (what
``kubernetes_sd_configs`` relabelling conventionally produces); both names are settings. A pod
counts as read when Prometheus holds its ``zentinel_up`` or ``zentinel_build_info`` at the
evaluation time: those go stale as soon as a scrape of the pod fails, while ``increase`` over the
window would still answer for a dead pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode

import aiohttp

from ..core.snapshot import MetricsSignal
from . import metrics as metric_signals
from .scrape import FetchResult, fetch_many

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Query names, in the order a batch sends them.
REQUESTS = "requests"
ERRORS = "errors"
PROXY_ERRORS = "proxy_errors"
LATENCY = "latency"
ZENTINEL_UP = "zentinel_up"
VERSION = "version"
MEMORY = "memory"
CONNECTIONS = "connections"
BREAKERS = "breakers"
TARGET_UP = "target_up"

PodKey = tuple[str, str]
"""``(namespace, pod)``."""


class PrometheusError(Exception):
    """Prometheus did not answer a query usefully. ``reason`` is short and meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


def promql_duration(seconds: float) -> str:
    """``60`` -> ``60s``, ``2.5`` -> ``2500ms``: a PromQL range duration."""
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"a window must be a positive number of seconds, got {seconds!r}")
    millis = round(seconds * 1000)
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{max(1, millis)}ms"


def build_queries(
    window_seconds: float, *, pod_label: str = "pod", namespace_label: str = "namespace"
) -> dict[str, str]:
    """The instant queries of one batch, by name. Each answers for every Zentinel pod Prometheus knows."""
    for label in (pod_label, namespace_label):
        if not _LABEL_NAME.match(label):
            raise ValueError(f"{label!r} is not a Prometheus label name")
    w = promql_duration(window_seconds)
    by = f"{namespace_label}, {pod_label}"
    return {
        # Per route, not per status: two series a route however many status codes it answers.
        REQUESTS: f"sum by ({by}, route) (increase({metric_signals.REQUESTS_TOTAL}[{w}]))",
        ERRORS: f'sum by ({by}, route) (increase({metric_signals.REQUESTS_TOTAL}{{status=~"5.."}}[{w}]))',
        # 500 is left out: 0.6.45 counts every builtin-handler answer as proxy_error_500 (see .metrics).
        PROXY_ERRORS: (
            f'sum by ({by}, reason) (increase({metric_signals.BLOCKED_TOTAL}{{reason=~"proxy_error_50[234]"}}[{w}]))'
        ),
        LATENCY: f"sum by ({by}, le) (increase({metric_signals.DURATION_BUCKET}[{w}]))",
        ZENTINEL_UP: f"max by ({by}) ({metric_signals.UP})",
        VERSION: f"max by ({by}, version) ({metric_signals.BUILD_INFO})",
        MEMORY: f"max by ({by}) ({metric_signals.MEMORY_BYTES})",
        CONNECTIONS: f"sum by ({by}) ({metric_signals.OPEN_CONNECTIONS})",
        BREAKERS: f"max by ({by}, component, route) ({metric_signals.CIRCUIT_BREAKER_STATE})",
        # Prometheus' own target health: tells "its scrapes fail" from "Prometheus does not scrape it".
        TARGET_UP: f"max by ({by}) (up)",
    }


# --------------------------------------------------------------------------------------------
# Pure mapping: query answers -> per-pod series -> MetricsSignal
# --------------------------------------------------------------------------------------------


class Sample(NamedTuple):
    labels: Mapping[str, str]
    value: float


def parse_query_response(body: str) -> list[Sample]:
    """Read one ``/api/v1/query`` answer (an instant vector). Raises :class:`PrometheusError`.

    NaN samples are dropped (``increase`` of nothing, a histogram with no observations).
    """
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PrometheusError(f"not a Prometheus API answer (not JSON): {_snippet(body)}") from exc
    if not isinstance(doc, dict) or "status" not in doc:
        raise PrometheusError(f"not a Prometheus API answer (no status): {_snippet(body)}")
    if doc["status"] != "success":
        kind = doc.get("errorType") or "error"
        raise PrometheusError(f"query refused ({kind}): {_snippet(str(doc.get('error') or ''))}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("not a Prometheus API answer (no data)")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type != "vector" or not isinstance(result, list):
        raise PrometheusError(f"expected an instant vector, got {result_type!r}")
    samples: list[Sample] = []
    append, isnan = samples.append, math.isnan
    item: Any = None
    try:
        for item in result:  # tens of thousands in a large fleet: keep this loop lean
            labels = item["metric"]
            value = float(item["value"][1])
            if type(labels) is not dict:
                raise TypeError("labels are not an object")
            if not isnan(value):
                append(Sample(labels, value))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"malformed sample in the answer: {_snippet(json.dumps(item))}") from exc
    return samples


@dataclasses.dataclass
class PodSeries:
    """What Prometheus holds for one pod at the evaluation time (counts are increases over the window)."""

    requests: dict[str, float] = dataclasses.field(default_factory=dict)  # route -> n, every status
    errors: dict[str, float] = dataclasses.field(default_factory=dict)  # route -> n, status 5xx
    blocked: dict[str, float] = dataclasses.field(default_factory=dict)  # reason -> n
    buckets: dict[float, float] = dataclasses.field(default_factory=dict)  # le -> n, over all routes
    zentinel_up: float | None = None
    version: str | None = None
    memory_bytes: float | None = None
    open_connections: float | None = None
    circuit_breakers: dict[tuple[tuple[str, str], ...], float] | None = None
    target_up: float | None = None  # Prometheus' ``up`` for the pod's target(s)

    @property
    def present(self) -> bool:
        """Prometheus has a live Zentinel page of this pod (these gauges go stale when a scrape fails)."""
        return self.zentinel_up is not None or self.version is not None


def index_results(
    results: Mapping[str, Sequence[Sample]], *, pod_label: str = "pod", namespace_label: str = "namespace"
) -> dict[PodKey, PodSeries]:
    """Sort one batch's answers by ``(namespace, pod)``. Samples without both labels are ignored."""
    index: dict[PodKey, PodSeries] = {}

    def by_pod(name: str) -> list[tuple[PodSeries, Mapping[str, str], float]]:
        out = []
        for labels, value in results.get(name, ()):
            ns, pod = labels.get(namespace_label), labels.get(pod_label)
            if ns and pod:
                series = index.get((ns, pod))
                if series is None:
                    series = index[(ns, pod)] = PodSeries()
                out.append((series, labels, value))
        return out

    for s, labels, value in by_pod(REQUESTS):
        route = labels.get("route", "")
        s.requests[route] = s.requests.get(route, 0.0) + value
    for s, labels, value in by_pod(ERRORS):
        route = labels.get("route", "")
        s.errors[route] = s.errors.get(route, 0.0) + value
    for s, labels, value in by_pod(PROXY_ERRORS):
        reason = labels.get("reason", "")
        s.blocked[reason] = s.blocked.get(reason, 0.0) + value
    for s, labels, value in by_pod(LATENCY):
        try:
            le = float(labels["le"])
        except (KeyError, ValueError):
            continue
        if not math.isnan(le):
            s.buckets[le] = s.buckets.get(le, 0.0) + value
    for s, _, value in by_pod(ZENTINEL_UP):
        s.zentinel_up = value
    for s, labels, _ in by_pod(VERSION):
        s.version = labels.get("version") or s.version
    for s, _, value in by_pod(MEMORY):
        s.memory_bytes = max(s.memory_bytes or 0.0, value)
    for s, _, value in by_pod(CONNECTIONS):
        s.open_connections = (s.open_connections or 0.0) + value
    for s, labels, value in by_pod(BREAKERS):
        breaker = tuple(sorted((k, v) for k, v in labels.items() if k not in (namespace_label, pod_label)))
        if s.circuit_breakers is None:
            s.circuit_breakers = {}
        s.circuit_breakers[breaker] = value
    for s, _, value in by_pod(TARGET_UP):
        s.target_up = value
    return index


def pod_rates(series: PodSeries, window_seconds: float) -> metric_signals.PodRates:
    """One pod's increases over the window as the :class:`.metrics.PodRates` the scrape path computes."""
    route_requests = dict(series.requests)
    for route, errors in series.errors.items():  # increase() extrapolates each series on its own
        route_requests[route] = max(route_requests.get(route, 0.0), errors)
    route_errors = {route: series.errors.get(route, 0.0) for route in route_requests}
    proxy_errors = metric_signals.PodMetrics(blocked=series.blocked).proxy_errors()
    if proxy_errors:
        total = sum(proxy_errors.values())
        route_requests[metric_signals.PROXY_ROUTE] = route_requests.get(metric_signals.PROXY_ROUTE, 0.0) + total
        route_errors[metric_signals.PROXY_ROUTE] = route_errors.get(metric_signals.PROXY_ROUTE, 0.0) + total
    return metric_signals.PodRates(
        interval_seconds=window_seconds,
        route_requests=route_requests,
        route_errors=route_errors,
        proxy_errors=proxy_errors,
        latency={"": dict(series.buckets)} if series.buckets else {},
    )


def _pod_gauges(series: PodSeries) -> metric_signals.PodMetrics:
    return metric_signals.PodMetrics(
        open_connections=series.open_connections,
        memory_bytes=series.memory_bytes,
        circuit_breakers=series.circuit_breakers,
        version=series.version,
        up=series.zentinel_up,
    )


def _missing(pod: str, series: PodSeries | None) -> str:
    if series is not None and series.target_up == 0:
        return f"{pod}: Prometheus' scrapes of it fail (up == 0)"
    return f"{pod}: no Zentinel series in Prometheus (not scraped, or without the namespace/pod labels)"


def metrics_signal(
    index: Mapping[PodKey, PodSeries],
    namespace: str,
    pods: Sequence[str],
    window_seconds: float,
    baseline_rps: float | None = None,
) -> MetricsSignal:
    """One Zentinel's :class:`MetricsSignal` from an indexed batch: its ``pods`` in ``namespace``."""
    per_pod: list[metric_signals.PodRates] = []
    current: list[metric_signals.PodMetrics] = []
    failures: list[str] = []
    for pod in dict.fromkeys(pods):
        series = index.get((namespace, pod))
        if series is None or not series.present:
            failures.append(_missing(pod, series))
            continue
        current.append(_pod_gauges(series))
        per_pod.append(pod_rates(series, window_seconds))
    if not current:
        return unavailable(
            "Prometheus has no live Zentinel series for "
            + (_listing(failures) if failures else f"any pod in {namespace} (no pods to look up)"),
            pods_failed=len(failures),
            baseline_rps=baseline_rps,
        )
    return metric_signals.aggregate(per_pod, current, failures, baseline_rps)


def unavailable(error: str, *, pods_failed: int = 0, baseline_rps: float | None = None) -> MetricsSignal:
    return MetricsSignal(
        available=False, error=error, pods_scraped=0, pods_failed=pods_failed, baseline_requests_per_second=baseline_rps
    )


def _listing(lines: list[str]) -> str:
    text = "; ".join(lines[:3])
    return text + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large answer turns into many small dicts and lists.

    Those allocations trigger collection after collection over a growing heap: with a thousand
    Zentinels' answers (~50 MB, ~400k series), collecting takes three times as long as the parse
    itself (``benchmarks/prometheus_batch.py``). Nothing made here is cyclic; reference counting
    still frees everything. Process-wide, for the second or so a large batch takes.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def read_batch(
    answers: Mapping[str, FetchResult], *, pod_label: str = "pod", namespace_label: str = "namespace"
) -> dict[PodKey, PodSeries]:
    """Parse and index every answer of a batch; the first failed query raises :class:`PrometheusError`."""
    with _cyclic_gc_paused():
        return _read_batch(answers, pod_label=pod_label, namespace_label=namespace_label)


def _read_batch(answers: Mapping[str, FetchResult], *, pod_label: str, namespace_label: str) -> dict[PodKey, PodSeries]:
    results: dict[str, list[Sample]] = {}
    for name, answer in answers.items():
        if answer.body is not None and answer.status is not None and answer.status >= 400:
            # Prometheus explains a refused query in a JSON body (400 bad_data, 422 execution, 503 ...).
            try:
                parse_query_response(answer.body)
            except PrometheusError as exc:
                raise PrometheusError(f"query {name!r}: HTTP {answer.status}, {exc.reason}") from exc
        if not answer.ok or answer.body is None:
            raise PrometheusError(f"query {name!r}: {answer.error}")
        try:
            results[name] = parse_query_response(answer.body)
        except PrometheusError as exc:
            raise PrometheusError(f"query {name!r}: {exc.reason}") from exc
    return index_results(results, pod_label=pod_label, namespace_label=namespace_label)


# --------------------------------------------------------------------------------------------
# The source: one batch per interval, shared by every Zentinel
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Batch:
    evaluated_at: float  # unix seconds, the ``time`` of every query
    index: Mapping[PodKey, PodSeries] | None
    error: str | None = None


class PrometheusSource:
    """Zentinel metrics from one Prometheus server, for every Zentinel with ``metricsSource: Prometheus``.

    ``window_seconds`` is the range of ``increase`` (at least two of Prometheus' scrape intervals,
    better four). ``refresh_seconds`` is how often a new batch is fetched: the operator's pass
    interval. ``timeout`` bounds each query; ``max_bytes`` each answer. Pass the operator's shared
    ``session`` to reuse its connections; without one, the source makes its own (see :meth:`close`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        window_seconds: float,
        timeout: float,
        pod_label: str = "pod",
        namespace_label: str = "namespace",
        session: aiohttp.ClientSession | None = None,
        refresh_seconds: float = 15.0,
        max_bytes: int = 64_000_000,
        keep_batches: int = 4,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the Prometheus URL must be http(s)://..., got {base_url!r}")
        if timeout <= 0 or refresh_seconds <= 0 or keep_batches < 1:
            raise ValueError("timeout and refresh_seconds must be positive, keep_batches at least 1")
        self.base_url = base_url.rstrip("/")
        self.window_seconds = float(window_seconds)
        self.timeout = float(timeout)
        self.pod_label = pod_label
        self.namespace_label = namespace_label
        self.refresh_seconds = float(refresh_seconds)
        self.max_bytes = max_bytes
        self.queries = build_queries(self.window_seconds, pod_label=pod_label, namespace_label=namespace_label)
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._batches: dict[float, asyncio.Task[Batch]] = {}
        self._keep = keep_batches
        self.batches_fetched = 0  # for tests and the operator's own metrics

    def evaluation_time(self, now: dt.datetime) -> float:
        """``now`` rounded down to ``refresh_seconds``: every pass in one interval asks about the same instant."""
        ts = now.timestamp()
        return math.floor(ts / self.refresh_seconds) * self.refresh_seconds

    def query_url(self, query: str, evaluated_at: float) -> str:
        params = {"query": query, "time": f"{evaluated_at:.3f}", "timeout": f"{self.timeout:g}s"}
        return f"{self.base_url}/api/v1/query?{urlencode(params)}"

    async def metrics_for(
        self, namespace: str, pods: Sequence[str], now: dt.datetime, *, baseline_rps: float | None = None
    ) -> MetricsSignal:
        """The :class:`MetricsSignal` of a Zentinel whose running pods are ``pods``; Prometheus' faults never raise.

        Pass the Zentinel's ``baseline_rps`` (from :class:`.gather.PassMemory`) to fill
        ``baseline_requests_per_second`` and keep :func:`.metrics.next_baseline` of it, as the scrape path does.
        """
        batch = await self.batch(now)
        if batch.index is None:
            # Not the pods' fault: pods_failed stays 0, so triage reports unavailable metrics, not unreachable pods.
            return unavailable(f"Prometheus at {self.base_url}: {batch.error}", baseline_rps=baseline_rps)
        # Selecting a few pods out of the index is cheap; the expensive part ran once, off the loop.
        return metrics_signal(batch.index, namespace, pods, self.window_seconds, baseline_rps)

    async def batch(self, now: dt.datetime) -> Batch:
        """The batch for ``now``'s interval: fetched at most once, shared by concurrent callers."""
        key = self.evaluation_time(now)
        task = self._batches.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key), name=f"prometheus-batch-{key:.0f}")
            self._batches[key] = task
            for old in sorted(self._batches)[: -self._keep]:
                self._batches.pop(old)  # finished long ago, or still awaited by whoever holds it
        # One caller's cancellation must not cancel the batch the others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, evaluated_at: float) -> Batch:
        self.batches_fetched += 1
        urls = {name: self.query_url(query, evaluated_at) for name, query in self.queries.items()}
        try:
            fetched = await fetch_many(
                list(urls.values()),
                concurrency=len(urls),
                timeout=self.timeout,
                max_bytes=self.max_bytes,
                session=self._http(),
            )
            answers = {name: fetched[url] for name, url in urls.items()}
            # Parsing a large answer takes a while: keep it off the event loop.
            index = await asyncio.to_thread(
                read_batch, answers, pod_label=self.pod_label, namespace_label=self.namespace_label
            )
        except PrometheusError as exc:
            return Batch(evaluated_at=evaluated_at, index=None, error=exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken answer must not break the pass: it is a finding
            return Batch(evaluated_at=evaluated_at, index=None, error=f"{type(exc).__name__}: {_snippet(str(exc))}")
        return Batch(evaluated_at=evaluated_at, index=index)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is not None and not self._session.closed:
            return self._session
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=len(self.queries)), trust_env=False
            )
        return self._own_session

    async def close(self) -> None:
        """Close the session the source made for itself (a session passed in is the caller's to close)."""
        for task in self._batches.values():
            task.cancel()
        self._batches.clear()
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None
