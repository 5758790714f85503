"""Zentinel's Prometheus page -> per-pod readings -> rates over an interval -> one :class:`MetricsSignal`.

Pure functions, no I/O: :mod:`.scrape` fetches the pages, this module reads them.

What real Zentinel 0.6.45 exports (``zentinel-common`` ``observability.rs`` and ``zentinel-proxy``
``builtin_handlers.rs``), and what this module takes from it:

- ``zentinel_requests_total{method,route,status}`` (counter): answers that came back from an
  upstream. ``status`` is the numeric code, so a server error is a status matching ``^5\\d\\d$``.
- ``zentinel_blocked_requests_total{reason}`` (counter): requests Zentinel answered itself. When an
  upstream fails, Zentinel answers 502/503/504 and counts it here as ``reason="proxy_error_502"``
  (and so on), *not* in ``zentinel_requests_total``. An error rate has to add both. These have no
  route label, so they are attributed to the pseudo-route :data:`PROXY_ROUTE`. (Seen on the real
  binary: a refused connection to the only target answers 503.)

  ``proxy_error_500`` is **not** counted: 0.6.45 ends every builtin-handler answer (``/health``,
  ``/admin/upstreams``, ``/admin/config``, a ``/metrics`` route) with an internal "Builtin handler
  complete" error, which lands there although the client got its 200. Liveness probes and the
  operator's own scrapes would read as server errors. Reasons such as
  ``proxy_error_ConnectRefused`` count individual upstream attempts (retries included), not answers.
  Both stay in :attr:`PodMetrics.blocked` for evidence.
- ``zentinel_request_duration_seconds{method,route}`` (histogram).
- ``zentinel_open_connections``, ``zentinel_memory_usage_bytes`` (gauges). 0.6.45 registers both but
  never updates them, so they read 0: a flat zero is reported as unknown (``None``), see
  :func:`aggregate`.
- ``zentinel_circuit_breaker_state{component,route}`` (gauge, 1 = open): registered, but only
  exported once something sets it; absent or all-zero is unknown.
- ``zentinel_build_info{version}`` and ``zentinel_up``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from ..core.snapshot import MetricsSignal, RouteSignal

REQUESTS_TOTAL = "zentinel_requests_total"
BLOCKED_TOTAL = "zentinel_blocked_requests_total"
DURATION = "zentinel_request_duration_seconds"
DURATION_BUCKET = DURATION + "_bucket"
OPEN_CONNECTIONS = "zentinel_open_connections"
MEMORY_BYTES = "zentinel_memory_usage_bytes"
CIRCUIT_BREAKER_STATE = "zentinel_circuit_breaker_state"
BUILD_INFO = "zentinel_build_info"
UP = "zentinel_up"

# The families this module reads; a page with none of them is not a Zentinel page.
ZENTINEL_SAMPLES = frozenset(
    {
        REQUESTS_TOTAL,
        BLOCKED_TOTAL,
        DURATION_BUCKET,
        DURATION + "_sum",
        DURATION + "_count",
        OPEN_CONNECTIONS,
        MEMORY_BYTES,
        CIRCUIT_BREAKER_STATE,
        BUILD_INFO,
        UP,
    }
)

PROXY_ROUTE = "(proxy)"
"""Pseudo-route for the errors Zentinel answers itself (``proxy_error_502|503|504``); they carry no route."""

_SERVER_ERROR = re.compile(r"^5\d\d$")
_PROXY_ERROR = re.compile(r"^proxy_error_(50[234])$")

K = TypeVar("K")

Buckets = tuple[tuple[float, float], ...]
"""Cumulative histogram buckets as ``((upper_bound, count), ...)``, sorted, ``+Inf`` last."""


class MetricsError(Exception):
    """A page that is not a readable Zentinel metrics page. ``reason`` is short and meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PodMetrics:
    """One pod's metrics page, reduced to what the operator reads. Treat the mappings as read-only.

    Counters are cumulative since the process started. A gauge is ``None`` when the page did not
    export it at all.
    """

    requests: Mapping[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    """``(route, status) -> count`` of ``zentinel_requests_total``, summed over ``method``."""
    blocked: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """``reason -> count`` of ``zentinel_blocked_requests_total``."""
    latency: Mapping[str, Buckets] = dataclasses.field(default_factory=dict)
    """``route -> cumulative buckets`` of ``zentinel_request_duration_seconds``, summed over ``method``."""
    open_connections: float | None = None
    memory_bytes: float | None = None
    circuit_breakers: Mapping[tuple[tuple[str, str], ...], float] | None = None
    """Samples of ``zentinel_circuit_breaker_state`` keyed by their sorted label pairs; ``None`` when absent."""
    version: str | None = None
    up: float | None = None

    def proxy_errors(self) -> dict[str, float]:
        """``"502" -> count`` of the errors Zentinel answered itself because an upstream failed."""
        out: dict[str, float] = {}
        for reason, value in self.blocked.items():
            m = _PROXY_ERROR.match(reason)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + value
        return out


@dataclasses.dataclass(frozen=True)
class PodRates:
    """What one pod did between two scrapes (counts in the interval, not per second)."""

    interval_seconds: float
    route_requests: Mapping[str, float]
    """``route -> requests``, all statuses; :data:`PROXY_ROUTE` holds Zentinel's own 502/503/504 answers."""
    route_errors: Mapping[str, float]
    """``route -> 5xx answers``; :data:`PROXY_ROUTE` holds Zentinel's own 502/503/504 answers."""
    proxy_errors: Mapping[str, float]
    """``"502" -> count`` of Zentinel's own 502/503/504 answers."""
    latency: Mapping[str, Mapping[float, float]]
    """``route -> {upper_bound: observations at or below it}`` in the interval (cumulative buckets)."""
    restarted: bool = False
    """A counter went down: the process restarted, and the deltas are the current values."""

    @property
    def requests(self) -> float:
        return sum(self.route_requests.values())

    @property
    def errors(self) -> float:
        return sum(self.route_errors.values())


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _bound(le: str) -> float:
    value = float(le)  # accepts "+Inf"
    if math.isnan(value):
        raise ValueError(f"bucket bound {le!r} is not a number")
    return value


def parse_exposition(text: str) -> PodMetrics:
    """Read one Zentinel ``/metrics`` page (Prometheus text format 0.0.4).

    Raises :class:`MetricsError` when the text is not an exposition page, or when it is one but
    holds none of Zentinel's families (a scrape of the wrong port, say).
    """
    if not text.strip():
        raise MetricsError("empty metrics page")
    requests: dict[tuple[str, str], float] = {}
    blocked: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    breakers: dict[tuple[tuple[str, str], ...], float] = {}
    open_connections: float | None = None
    memory_bytes: float | None = None
    version: str | None = None
    up: float | None = None
    seen = False
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, float(sample.value)
                if name not in ZENTINEL_SAMPLES:
                    continue
                seen = True
                if name == REQUESTS_TOTAL:
                    key = (labels.get("route", ""), labels.get("status", ""))
                    requests[key] = requests.get(key, 0.0) + value
                elif name == BLOCKED_TOTAL:
                    reason = labels.get("reason", "")
                    blocked[reason] = blocked.get(reason, 0.0) + value
                elif name == DURATION_BUCKET:
                    if "le" not in labels:
                        raise ValueError(f"{DURATION_BUCKET} sample without an le label")
                    per_route = buckets.setdefault(labels.get("route", ""), {})
                    le = _bound(labels["le"])
                    per_route[le] = per_route.get(le, 0.0) + value
                elif name == OPEN_CONNECTIONS:
                    open_connections = (open_connections or 0.0) + value
                elif name == MEMORY_BYTES:
                    memory_bytes = max(memory_bytes or 0.0, value)
                elif name == CIRCUIT_BREAKER_STATE:
                    breakers[tuple(sorted(labels.items()))] = value
                elif name == BUILD_INFO:
                    version = labels.get("version") or version
                elif name == UP:
                    up = value
    except MetricsError:
        raise
    except Exception as exc:  # the parser raises ValueError, IndexError, KeyError, ... on garbage
        raise MetricsError(f"not a Prometheus text page: {_short(exc)}") from exc
    if not seen:
        raise MetricsError("no Zentinel metrics on the page (no zentinel_* families)")
    return PodMetrics(
        requests=requests,
        blocked=blocked,
        latency={route: tuple(sorted(per.items())) for route, per in buckets.items()},
        open_connections=open_connections,
        memory_bytes=memory_bytes,
        circuit_breakers=breakers if breakers else None,
        version=version,
        up=up,
    )


def _short(exc: BaseException, limit: int = 120) -> str:
    message = str(exc) or type(exc).__name__
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------


def _went_down(prev: Mapping[K, float], cur: Mapping[K, float]) -> bool:
    return any(cur.get(key, value) < value for key, value in prev.items())


def _restarted(prev: PodMetrics, cur: PodMetrics) -> bool:
    if _went_down(prev.requests, cur.requests) or _went_down(prev.blocked, cur.blocked):
        return True
    for route, prev_buckets in prev.latency.items():
        cur_buckets = cur.latency.get(route)
        if cur_buckets is not None and _went_down(dict(prev_buckets), dict(cur_buckets)):
            return True
    return False


def _delta(prev: Mapping[K, float], cur: Mapping[K, float], restarted: bool) -> dict[K, float]:
    if restarted:
        return dict(cur)
    # A series missing before appeared during the interval: everything it counted is new.
    return {key: max(0.0, value - prev.get(key, 0.0)) for key, value in cur.items()}


def compute_rates(prev: PodMetrics | None, cur: PodMetrics, interval_seconds: float) -> PodRates | None:
    """What one pod did between two scrapes; ``None`` on the first scrape (no ``prev``).

    A counter that went down means the process restarted and every counter started again from
    zero, so the deltas are then the current values (for every series of the pod, not only the one
    that went down: a series can have grown past its old value since the restart).
    """
    if prev is None:
        return None
    if not interval_seconds > 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
    restarted = _restarted(prev, cur)

    route_requests: dict[str, float] = {}
    route_errors: dict[str, float] = {}
    for (route, status), delta in _delta(prev.requests, cur.requests, restarted).items():
        route_requests[route] = route_requests.get(route, 0.0) + delta
        if _SERVER_ERROR.match(status):
            route_errors[route] = route_errors.get(route, 0.0) + delta
        else:
            route_errors.setdefault(route, 0.0)

    proxy_errors: dict[str, float] = {}
    for reason, delta in _delta(prev.blocked, cur.blocked, restarted).items():
        m = _PROXY_ERROR.match(reason)
        if m:
            proxy_errors[m.group(1)] = proxy_errors.get(m.group(1), 0.0) + delta
    proxy_total = sum(proxy_errors.values())
    if proxy_errors:
        route_requests[PROXY_ROUTE] = route_requests.get(PROXY_ROUTE, 0.0) + proxy_total
        route_errors[PROXY_ROUTE] = route_errors.get(PROXY_ROUTE, 0.0) + proxy_total

    latency: dict[str, dict[float, float]] = {}
    for route, cur_buckets in cur.latency.items():
        prev_buckets = dict(prev.latency.get(route, ()))
        latency[route] = _delta(prev_buckets, dict(cur_buckets), restarted)

    return PodRates(
        interval_seconds=interval_seconds,
        route_requests=route_requests,
        route_errors=route_errors,
        proxy_errors=proxy_errors,
        latency=latency,
        restarted=restarted,
    )


# --------------------------------------------------------------------------------------------
# Aggregation over pods
# --------------------------------------------------------------------------------------------


def histogram_quantile(q: float, buckets: Mapping[float, float] | Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative buckets, computed as Prometheus' ``histogram_quantile`` does.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0 (or at
    its bound when that is not positive); a rank in the ``+Inf`` bucket answers the highest finite
    bound. ``None`` where Prometheus answers NaN: no observations, no ``+Inf`` bucket, fewer than two
    buckets.
    """
    pairs: Iterable[tuple[float, float]] = buckets.items() if isinstance(buckets, Mapping) else buckets
    items: list[tuple[float, float]] = sorted((float(le), float(count)) for le, count in pairs)
    if len(items) < 2 or not math.isinf(items[-1][0]) or items[-1][0] < 0:
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    # Counts must not go down with the bound; Prometheus repairs small inconsistencies the same way.
    bounds = [le for le, _ in items]
    counts: list[float] = []
    highest = 0.0
    for _, count in items:
        highest = max(highest, count)
        counts.append(highest)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, count in enumerate(counts) if count >= rank)
    if b == len(items) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if b == 0 else bounds[b - 1]
    end = bounds[b]
    below = 0.0 if b == 0 else counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket <= 0:
        return end
    return start + (end - start) * ((rank - below) / in_bucket)


def next_baseline(prev_baseline: float | None, current_rps: float | None, alpha: float = 0.1) -> float | None:
    """Exponentially weighted moving average of requests per second, for traffic-spike detection.

    Compare a pass's rate with the baseline *before* folding that pass in, then keep
    ``next_baseline(baseline, rps)`` for the next pass. An unknown rate leaves the baseline as it is.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if current_rps is None or math.isnan(current_rps):
        return prev_baseline
    if prev_baseline is None:
        return current_rps
    return prev_baseline + alpha * (current_rps - prev_baseline)


def _version(current: list[PodMetrics]) -> str | None:
    counts = Counter(m.version for m in current if m.version)
    if not counts:
        return None
    # The most common version; on a tie (mid-rollout) the newest-looking string.
    return max(counts.items(), key=lambda item: (item[1], _version_key(item[0])))[0]


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.+-]", version))


def _circuit_breakers_open(current: list[PodMetrics]) -> int | None:
    samples = [m.circuit_breakers for m in current if m.circuit_breakers is not None]
    if not samples:
        return None
    open_keys = {key for pod in samples for key, value in pod.items() if value >= 1}
    if not open_keys and all(value == 0 for pod in samples for value in pod.values()):
        return None  # flat zero: never set, not "all closed" (older releases did not update it)
    return len(open_keys)


def aggregate(
    per_pod: list[PodRates],
    current: list[PodMetrics],
    failures: list[str],
    baseline_rps: float | None,
) -> MetricsSignal:
    """Sum one pass over the pods of a Zentinel into a :class:`MetricsSignal`.

    ``current`` holds the pages read in this pass, ``per_pod`` the rates of those pods that also
    had a page in the previous pass (empty on the first pass: then only gauges are filled), and
    ``failures`` one readable line per pod that could not be scraped or parsed.

    ``baseline_requests_per_second`` is ``baseline_rps`` as passed in: the rate this pass is compared
    with. Keep :func:`next_baseline` of it for the next pass.

    Gauges that real Zentinel 0.6.45 registers but never updates are reported as unknown rather
    than as a made-up zero: ``memory_bytes`` when every pod says 0, ``open_connections`` when every
    pod says 0 while requests flowed, ``circuit_breakers_open`` when absent or all zero.
    """
    if not current:
        reason = "; ".join(failures[:3]) if failures else "no pods to scrape"
        if len(failures) > 3:
            reason += f"; and {len(failures) - 3} more"
        return MetricsSignal(
            available=False,
            error=f"no pod could be scraped: {reason}",
            pods_scraped=0,
            pods_failed=len(failures),
            baseline_requests_per_second=baseline_rps,
        )

    memory_values = [m.memory_bytes for m in current if m.memory_bytes is not None]
    memory_bytes = max(memory_values) if memory_values and max(memory_values) > 0 else None
    connection_values = [m.open_connections for m in current if m.open_connections is not None]
    open_connections = sum(connection_values) if connection_values else None
    breakers_open = _circuit_breakers_open(current)
    version = _version(current)
    if not per_pod:
        return MetricsSignal(
            available=True,
            pods_scraped=len(current),
            pods_failed=len(failures),
            open_connections=open_connections,
            memory_bytes=memory_bytes,
            circuit_breakers_open=breakers_open,
            baseline_requests_per_second=baseline_rps,
            version=version,
        )

    route_requests: dict[str, float] = {}
    route_errors: dict[str, float] = {}
    proxy_errors: dict[str, float] = {}
    buckets: dict[float, float] = {}
    rps = 0.0
    for rates in per_pod:
        for route, value in rates.route_requests.items():
            route_requests[route] = route_requests.get(route, 0.0) + value
        for route, value in rates.route_errors.items():
            route_errors[route] = route_errors.get(route, 0.0) + value
        for code, value in rates.proxy_errors.items():
            proxy_errors[code] = proxy_errors.get(code, 0.0) + value
        for route_buckets in rates.latency.values():
            for le, value in route_buckets.items():
                buckets[le] = buckets.get(le, 0.0) + value
        rps += rates.requests / rates.interval_seconds

    requests = sum(route_requests.values())
    errors = sum(route_errors.values())
    if open_connections == 0 and requests > 0:
        open_connections = None  # a gauge that reads 0 while requests flow is not maintained
    routes = tuple(
        sorted(
            (
                RouteSignal(route=route, requests=value, errors=route_errors.get(route, 0.0))
                for route, value in route_requests.items()
            ),
            key=lambda r: (-r.errors, -r.requests, r.route),
        )
    )
    return MetricsSignal(
        available=True,
        pods_scraped=len(current),
        pods_failed=len(failures),
        interval_seconds=sum(r.interval_seconds for r in per_pod) / len(per_pod),
        requests=requests,
        errors=errors,
        routes=routes,
        latency_p99_seconds=histogram_quantile(0.99, buckets) if buckets else None,
        open_connections=open_connections,
        memory_bytes=memory_bytes,
        circuit_breakers_open=breakers_open,
        requests_per_second=rps,
        baseline_requests_per_second=baseline_rps,
        proxy_errors=proxy_errors,
        version=version,
    )
