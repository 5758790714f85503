"""A small emulator of Zentinel's admin endpoints, for fault injection and scale in tests.

It answers what a real Zentinel 0.6.45 answers (kept honest by
``tests/integration/test_emulator_contract.py`` against the real binary):

- ``/metrics``: the page of the standalone metrics server (``render_prometheus_metrics`` in
  ``zentinel-proxy`` ``builtin_handlers.rs``): the families of ``RequestMetrics`` (``zentinel-common``
  ``observability.rs``) as the Rust ``prometheus`` crate's ``TextEncoder`` writes them (families
  sorted by name, label pairs sorted by label name, series sorted by label values, numbers in
  Rust's ``f64`` notation, HELP and TYPE lines), then ``zentinel_up``, ``zentinel_build_info`` and
  the HTTP cache counters. Label-less gauges are always there; a labelled family appears once it
  has a series.
- ``/admin/upstreams``: the JSON of ``upstreams_handler``.
- ``/admin/config``: the JSON of ``config_handler`` (listeners, routes, upstream targets).
- ``/health``: the JSON of ``health_handler`` (``{"status": "healthy", ...}``, always 200).

Like the real 0.6.45, every answer of the last three (builtin handlers on the proxy listener) adds
one to ``zentinel_blocked_requests_total{reason="proxy_error_500"}``
(:attr:`ZentinelEmulator.builtin_counts_as_proxy_error`).

Fault modes (``emulator.mode = ...``, or per path with :meth:`ZentinelEmulator.set_mode`):
``normal``, ``garbage`` (200 with a body that is neither Prometheus text nor JSON), ``hang``
(never answers until :attr:`ZentinelEmulator.hang_seconds` or :meth:`stop`), ``huge`` (a
chunked body of :attr:`ZentinelEmulator.huge_bytes` of valid comment lines), ``empty`` (200, no
body) and ``http500`` (what Zentinel answers when it cannot encode its metrics).

The server runs on an event loop in a background thread, so synchronous tests can drive it; every
public method is thread-safe. :class:`EmulatorFleet` runs many emulators on one loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import errno
import json
import math
import secrets
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

MODES = ("normal", "garbage", "hang", "huge", "empty", "http500")
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# zentinel-common 0.6.45, observability.rs: RequestMetrics::new
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FAMILIES: dict[str, tuple[str, str]] = {
    "zentinel_active_requests": ("gauge", "Number of currently active requests"),
    "zentinel_blocked_requests_total": ("counter", "Total blocked requests by reason"),
    "zentinel_circuit_breaker_state": ("gauge", "Circuit breaker state (0=closed, 1=open)"),
    "zentinel_cpu_usage_percent": ("gauge", "Current CPU usage percentage"),
    "zentinel_memory_usage_bytes": ("gauge", "Current memory usage in bytes"),
    "zentinel_open_connections": ("gauge", "Number of open connections"),
    "zentinel_request_duration_seconds": ("histogram", "Request duration in seconds"),
    "zentinel_requests_total": ("counter", "Total number of requests"),
}
# render_prometheus_metrics appends these after build_info when the HTTP cache stats are wired, as
# they are on the standalone metrics server (written with format!, the ratio as {:.4}).
CACHE_FAMILIES = (
    "# HELP zentinel_cache_hits_total Total number of cache hits",
    "# TYPE zentinel_cache_hits_total counter",
    "zentinel_cache_hits_total 0",
    "# HELP zentinel_cache_misses_total Total number of cache misses",
    "# TYPE zentinel_cache_misses_total counter",
    "zentinel_cache_misses_total 0",
    "# HELP zentinel_cache_stores_total Total number of cache stores",
    "# TYPE zentinel_cache_stores_total counter",
    "zentinel_cache_stores_total 0",
    "# HELP zentinel_cache_hit_ratio Cache hit ratio (0.0 to 1.0)",
    "# TYPE zentinel_cache_hit_ratio gauge",
    "zentinel_cache_hit_ratio 0.0000",
    "# HELP zentinel_cache_memory_hits_total Cache hits from memory tier",
    "# TYPE zentinel_cache_memory_hits_total counter",
    "zentinel_cache_memory_hits_total 0",
    "# HELP zentinel_cache_disk_hits_total Cache hits from disk tier",
    "# TYPE zentinel_cache_disk_hits_total counter",
    "zentinel_cache_disk_hits_total 0",
)
GARBAGE = b"<html><body>\x00\x01 502 Bad Gateway {{{ not metrics, not JSON</body></html>\n"


def rust_f64(value: float) -> str:
    """``f64::to_string()``: shortest round-trip digits, never an exponent; ``inf``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e300:
        return str(int(value)) if value != 0 or math.copysign(1.0, value) > 0 else "-0"
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape_label(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def listeners(port: int) -> str:
    """Who listens on ``port`` (``ss -ltnp``), for the message of a bind that failed."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"(ss failed: {e})"
    return "; ".join(" ".join(line.split()) for line in out.splitlines()) or "(nothing: the socket is gone)"


class EmulatorLoop:
    """An asyncio loop in a daemon thread; emulators schedule their servers on it."""

    def __init__(self, name: str = "zentinel-emulator") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        async def runner() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


@dataclasses.dataclass
class _Histogram:
    buckets: list[int] = dataclasses.field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float, count: int) -> None:
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += count
        self.total += seconds * count
        self.count += count


@dataclasses.dataclass
class _Target:
    address: str
    weight: int = 1
    status: str = "unknown"
    failure_rate: float | None = None
    last_error: str | None = None


@dataclasses.dataclass
class _Upstream:
    id: str
    load_balancing: str = "RoundRobin"  # Zentinel writes format!("{:?}", algorithm)
    targets: dict[str, _Target] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EmulatorStats:
    served: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_path: dict[str, int] = dataclasses.field(default_factory=dict)


class ZentinelEmulator:
    """Zentinel's admin endpoints on ``host:port`` (any loopback address; port 0 picks a free one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        version: str = "0.6.45",
        loop: EmulatorLoop | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.version = version
        self.hang_seconds = 300.0
        self.huge_bytes = 16 * 1024 * 1024
        self.response_delay = 0.0
        # 0.6.45 counts every builtin-handler answer (/health, /admin/*) as
        # zentinel_blocked_requests_total{reason="proxy_error_500"}; /metrics here is the metrics server's.
        self.builtin_counts_as_proxy_error = True
        self._lock = threading.RLock()
        self._mode = "normal"
        self._path_modes: dict[str, str] = {}
        self._shared_loop = loop
        self._loop: EmulatorLoop | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self._stats = EmulatorStats()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._blocked: dict[str, float] = {}
        self._histograms: dict[tuple[str, str], _Histogram] = {}
        self._breakers: dict[tuple[str, str], int] = {}
        self._gauges: dict[str, float] = {
            "zentinel_active_requests": 0,
            "zentinel_cpu_usage_percent": 0,
            "zentinel_memory_usage_bytes": 0,
            "zentinel_open_connections": 0,
        }
        self._upstreams: dict[str, _Upstream] = {}
        self._routes: dict[str, str | None] = {}  # route id -> upstream, for /admin/config

    # ---------------------------------------------------------------- life cycle

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return self.base_url + "/metrics"

    @property
    def upstreams_url(self) -> str:
        return self.base_url + "/admin/upstreams"

    @property
    def config_url(self) -> str:
        return self.base_url + "/admin/config"

    def start(self) -> ZentinelEmulator:
        if self._runner is not None:
            return self
        self._loop = self._shared_loop or EmulatorLoop(f"zentinel-emulator-{self.host}:{self.port}")
        try:
            self._loop.call(self._start)
        except BaseException:
            if self._shared_loop is None:
                self._loop.close()
            self._loop = None
            raise
        return self

    async def _start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/admin/upstreams", self._upstreams_handler)
        app.router.add_get("/admin/config", self._config_handler)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            if e.errno == errno.EADDRINUSE:
                raise OSError(e.errno, f"{e.strerror}; listening on port {self.port}: {listeners(self.port)}") from e
            raise
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:
            self.port = int(runner.addresses[0][1])

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.call(self._stop)
        finally:
            if self._shared_loop is None:
                loop.close()

    async def _stop(self) -> None:
        if self._release is not None:
            self._release.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def __enter__(self) -> ZentinelEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- state (thread-safe)

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.set_mode(value)

    def set_mode(self, mode: str, path: str | None = None) -> None:
        """Fault mode for every path, or for one (``/metrics``, ``/admin/upstreams``, ...)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            if path is None:
                self._mode = mode
                self._path_modes.clear()
            else:
                self._path_modes[path] = mode

    @property
    def stats(self) -> EmulatorStats:
        with self._lock:
            return dataclasses.replace(self._stats, by_path=dict(self._stats.by_path))

    def add_requests(
        self, route: str, status: int | str, count: int = 1, method: str = "GET", latency_seconds: float | None = None
    ) -> None:
        """Answers that came back from an upstream (``zentinel_requests_total``); with a latency, also
        observed in ``zentinel_request_duration_seconds`` as Zentinel's ``record_request`` does."""
        with self._lock:
            key = (route, method, str(status))
            self._requests[key] = self._requests.get(key, 0) + count
            self._routes.setdefault(route, None)
            if latency_seconds is not None:
                self._histograms.setdefault((route, method), _Histogram()).observe(latency_seconds, count)

    def add_blocked(self, reason: str, count: float = 1) -> None:
        """Requests Zentinel answered itself; upstream failures are ``proxy_error_502|503|504``."""
        with self._lock:
            self._blocked[reason] = self._blocked.get(reason, 0.0) + count

    def observe_latency(self, route: str, seconds: float, count: int = 1, method: str = "GET") -> None:
        with self._lock:
            self._histograms.setdefault((route, method), _Histogram()).observe(seconds, count)
            self._routes.setdefault(route, None)

    def set_gauge(
        self,
        *,
        open_connections: float | None = None,
        memory_bytes: float | None = None,
        active_requests: float | None = None,
        cpu_percent: float | None = None,
    ) -> None:
        with self._lock:
            for name, value in (
                ("zentinel_open_connections", open_connections),
                ("zentinel_memory_usage_bytes", memory_bytes),
                ("zentinel_active_requests", active_requests),
                ("zentinel_cpu_usage_percent", cpu_percent),
            ):
                if value is not None:
                    self._gauges[name] = value

    def set_circuit_breaker(self, component: str, route: str, is_open: bool) -> None:
        """``zentinel_circuit_breaker_state{component,route}`` (0.6.45 itself never sets it)."""
        with self._lock:
            self._breakers[(component, route)] = 1 if is_open else 0

    def set_upstream(self, upstream: str, load_balancing: str = "RoundRobin") -> None:
        with self._lock:
            self._upstreams.setdefault(upstream, _Upstream(upstream)).load_balancing = load_balancing

    def set_target(
        self,
        upstream: str,
        address: str,
        status: str,
        failure_rate: float | None = None,
        last_error: str | None = None,
        weight: int = 1,
    ) -> None:
        if status not in ("healthy", "unhealthy", "unknown"):
            raise ValueError(f"status must be healthy, unhealthy or unknown, not {status!r}")
        with self._lock:
            up = self._upstreams.setdefault(upstream, _Upstream(upstream))
            up.targets[address] = _Target(address, weight, status, failure_rate, last_error)

    def remove_target(self, upstream: str, address: str) -> None:
        with self._lock:
            up = self._upstreams.get(upstream)
            if up is not None:
                up.targets.pop(address, None)
                if not up.targets:
                    del self._upstreams[upstream]

    def set_route(self, route: str, upstream: str | None = None) -> None:
        with self._lock:
            self._routes[route] = upstream

    def reset_counters(self) -> None:
        """A process restart: every counter and histogram starts again from zero."""
        with self._lock:
            self._requests.clear()
            self._blocked.clear()
            self._histograms.clear()

    # ---------------------------------------------------------------- rendering

    def render_metrics(self) -> str:
        with self._lock:
            series: dict[str, list[str]] = {}
            for name in ("zentinel_active_requests", "zentinel_cpu_usage_percent"):
                series[name] = [f"{name} {rust_f64(self._gauges[name])}"]
            for name in ("zentinel_memory_usage_bytes", "zentinel_open_connections"):
                series[name] = [f"{name} {rust_f64(self._gauges[name])}"]
            if self._blocked:
                name = "zentinel_blocked_requests_total"
                series[name] = [
                    f"{name}{_labels([('reason', reason)])} {rust_f64(value)}"
                    for reason, value in sorted(self._blocked.items())
                ]
            if self._breakers:
                name = "zentinel_circuit_breaker_state"
                series[name] = [
                    f"{name}{_labels([('component', component), ('route', route)])} {value}"
                    for (component, route), value in sorted(self._breakers.items())
                ]
            if self._requests:
                name = "zentinel_requests_total"
                series[name] = [
                    f"{name}{_labels([('method', method), ('route', route), ('status', status)])} {value}"
                    for (method, route, status), value in sorted(
                        ((m, r, s), v) for (r, m, s), v in self._requests.items()
                    )
                ]
            if self._histograms:
                name = "zentinel_request_duration_seconds"
                lines: list[str] = []
                for (method, route), h in sorted(((m, r), h) for (r, m), h in self._histograms.items()):
                    pairs = [("method", method), ("route", route)]
                    for bound, count in zip(LATENCY_BUCKETS, h.buckets, strict=True):
                        lines.append(f"{name}_bucket{_labels([*pairs, ('le', rust_f64(bound))])} {count}")
                    lines.append(f"{name}_bucket{_labels([*pairs, ('le', '+Inf')])} {h.count}")
                    lines.append(f"{name}_sum{_labels(pairs)} {rust_f64(h.total)}")
                    lines.append(f"{name}_count{_labels(pairs)} {h.count}")
                series[name] = lines
            version = self.version
        out: list[str] = []
        for name in sorted(series):
            kind, help_text = FAMILIES[name]
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(series[name])
        out.append("# HELP zentinel_up Zentinel proxy is up and running")
        out.append("# TYPE zentinel_up gauge")
        out.append("zentinel_up 1")
        out.append("# HELP zentinel_build_info Build information")
        out.append("# TYPE zentinel_build_info gauge")
        out.append(f'zentinel_build_info{{version="{_escape_label(version)}"}} 1')
        out.extend(CACHE_FAMILIES)
        return "\n".join(out) + "\n"

    def upstreams_document(self, request_id: str = "emulated") -> dict[str, Any]:
        with self._lock:
            upstreams: list[dict[str, Any]] = [
                {
                    "id": up.id,
                    "load_balancing": up.load_balancing,
                    "targets": [dataclasses.asdict(t) for t in up.targets.values()],
                }
                for up in self._upstreams.values()
            ]
        statuses = [t["status"] for up in upstreams for t in up["targets"]]
        doc: dict[str, Any] = {
            "timestamp": _now(),
            "request_id": request_id,
            "summary": {
                "total_upstreams": len(upstreams),
                "total_targets": len(statuses),
                "healthy": statuses.count("healthy"),
                "unhealthy": statuses.count("unhealthy"),
                "unknown": statuses.count("unknown"),
            },
            "upstreams": upstreams,
        }
        if not upstreams:
            doc["message"] = "No upstreams configured"
        return doc

    def config_document(self, request_id: str = "emulated") -> dict[str, Any]:
        with self._lock:
            routes = [
                {
                    "id": route,
                    "priority": 50,
                    "matches": [{"path_prefix": "/"}],
                    "upstream": upstream,
                    "service_type": "web",
                    "builtin_handler": None,
                    "filters": [],
                    "waf_enabled": False,
                }
                for route, upstream in sorted(self._routes.items())
            ]
            upstreams = [
                {
                    "id": up.id,
                    "targets": [{"address": t.address, "weight": t.weight} for t in up.targets.values()],
                    "load_balancing": _snake(up.load_balancing),
                    "health_check": None,
                    "tls_enabled": False,
                }
                for up in self._upstreams.values()
            ]
        return {
            "timestamp": _now(),
            "request_id": request_id,
            "config": {
                "server": {
                    "worker_threads": 1,
                    "max_connections": 10000,
                    "graceful_shutdown_timeout_secs": 30,
                    "daemon": False,
                    "pid_file": None,
                    "user": None,
                    "group": None,
                    "working_directory": None,
                    "trace_id_format": "tinyflake",
                    "auto_reload": False,
                },
                "listeners": [
                    {
                        "id": "http",
                        "address": f"{self.host}:{self.port}",
                        "protocol": "http",
                        "default_route": None,
                        "request_timeout_secs": 60,
                        "keepalive_timeout_secs": 75,
                        "tls_enabled": False,
                    }
                ],
                "routes": routes,
                "upstreams": upstreams,
                "agents": [],
                "filters": [],
                "waf": None,
                "limits": {"max_total_connections": 10000, "max_connections_per_client": 100},
            },
        }

    # ---------------------------------------------------------------- HTTP

    def _mode_for(self, path: str) -> str:
        with self._lock:
            return self._path_modes.get(path, self._mode)

    async def _serve(self, request: web.Request, render: Callable[[str], tuple[bytes, str]]) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self._stats.served += 1
            self._stats.in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
            self._stats.by_path[path] = self._stats.by_path.get(path, 0) + 1
            delay = self.response_delay
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            mode = self._mode_for(path)
            request_id = secrets.token_urlsafe(9)
            headers = {"X-Request-Id": request_id}
            if mode == "hang":
                assert self._release is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), self.hang_seconds)
                raise web.HTTPServiceUnavailable(text="emulator stopped hanging")
            if mode == "garbage":
                return web.Response(body=GARBAGE, headers={**headers, "Content-Type": "text/html"})
            if mode == "http500":
                body = (
                    b"# ERROR: Failed to encode metrics: emulated failure\n"
                    if path == "/metrics"
                    else b'{"error":"Internal Server Error","status":500}'
                )
                return web.Response(
                    status=500, body=body, headers={**headers, "Content-Type": "text/plain; charset=utf-8"}
                )
            body, content_type = render(request_id)
            if mode == "empty":
                return web.Response(body=b"", headers={**headers, "Content-Type": content_type})
            if mode == "huge":
                return await self._huge(request, content_type)
            if path != "/metrics" and self.builtin_counts_as_proxy_error:
                self.add_blocked("proxy_error_500")
            return web.Response(body=body, headers={**headers, "Content-Type": content_type})
        finally:
            with self._lock:
                self._stats.in_flight -= 1

    async def _huge(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        line = b"# padding: a huge page the scraper has to cut off " + b"x" * 200 + b"\n"
        chunk = line * (64 * 1024 // len(line))
        sent = 0
        try:
            while sent < self.huge_bytes:
                await response.write(chunk)
                sent += len(chunk)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, lambda _rid: (self.render_metrics().encode(), PROMETHEUS_CONTENT_TYPE))

    async def _upstreams_handler(self, request: web.Request) -> web.StreamResponse:
        def render(request_id: str) -> tuple[bytes, str]:
            return _pretty(self.upstreams_document(request_id)), JSON_CONTENT_TYPE

        return await self._serve(request, render)

    async def _config_handler(self, request: web.Request) -> web.StreamResponse:
        def render(request_id: str) -> tuple[bytes, str]:
            return _pretty(self.config_document(request_id)), JSON_CONTENT_TYPE

        return await self._serve(request, render)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        def render(_request_id: str) -> tuple[bytes, str]:
            body = json.dumps({"status": "healthy", "timestamp": _now()}, separators=(",", ":"))
            return body.encode(), JSON_CONTENT_TYPE

        return await self._serve(request, render)


def _pretty(doc: dict[str, Any]) -> bytes:
    # serde_json::to_vec_pretty over a json! map: two-space indent, keys sorted (BTreeMap).
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() and i else ch.lower() for i, ch in enumerate(name))


class EmulatorFleet:
    """Many emulators on one loop thread (hundreds of threads would be wasteful)."""

    def __init__(self, addresses: Iterable[tuple[str, int]], *, version: str = "0.6.45") -> None:
        self._loop = EmulatorLoop("zentinel-emulator-fleet")
        self.emulators = [ZentinelEmulator(host, port, version=version, loop=self._loop) for host, port in addresses]

    def start(self) -> EmulatorFleet:
        try:
            for emulator in self.emulators:
                emulator.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for emulator in self.emulators:
            emulator.stop()
        self._loop.close()

    def __iter__(self) -> Iterator[ZentinelEmulator]:
        return iter(self.emulators)

    def __len__(self) -> int:
        return len(self.emulators)

    def __enter__(self) -> EmulatorFleet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
