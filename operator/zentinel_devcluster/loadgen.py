"""A bounded HTTP load generator for loopback addresses only.

``python -m zentinel_devcluster.loadgen --url URL [--url URL ...] --rate RPS --duration SECONDS
[--concurrency N] [--path P] [--timeout SECONDS] [--json]``

Sends ``floor(RPS * SECONDS)`` GET requests on a fixed schedule (request i at ``i / RPS`` seconds), spread
round-robin over the URLs, with at most N in flight (default 16) over keep-alive connections. A request
that cannot start within 0.25 s of the end of the run (every slot busy) is not sent; the summary's
``sent`` then falls short of ``planned``. It stops by itself: the run lasts at most SECONDS + 0.25 + the
per-request timeout.

Bounds, all checked before any request is sent (violations: a message and exit status 2): RPS at most
2000, SECONDS at most 600, N at most 64, per-request timeout at most 60 s, and every URL an http(s) URL
whose host is a loopback address (127.0.0.0/8, ::1) or ``localhost`` (which is resolved to 127.0.0.1 and
::1 only, never through DNS). Redirects are not followed and proxy variables are ignored, so no request
leaves the loopback interface.

The summary: requests planned and sent, counts by status code plus ``connect-error`` (refused or
unreachable), ``timeout`` and ``error`` (any other failure, such as a connection closed mid-request),
p50/p99 latency in milliseconds over the requests that got a response, and counts by the ``X-Backend``
response header (set by ``zentinel_devcluster.backend``).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_RATE = 2000.0
MAX_DURATION = 600.0
MAX_CONCURRENCY = 64
MAX_TIMEOUT = 60.0
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT = 5.0
START_GRACE = 0.25
CONNECT_ERROR = "connect-error"


class LoadgenError(ValueError):
    """A run that the bounds refuse; nothing has been sent."""


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, path: str | None = None) -> str:
    """The URL to request (with ``path`` in place of the URL's own path and query, when given);
    ``LoadgenError`` unless it is an http(s) URL on a loopback host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise LoadgenError(f"{url!r} is not a valid URL: {e}") from None
    if parts.scheme not in {"http", "https"}:
        raise LoadgenError(f"{url!r}: only http and https URLs are allowed")
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise LoadgenError(f"{url!r}: host {host!r} is not a loopback address (127.0.0.0/8, ::1 or localhost)")
    if port == 0:
        raise LoadgenError(f"{url!r}: port 0")
    if path is not None:
        if not path.startswith("/"):
            raise LoadgenError(f"--path {path!r} must start with /")
        path_part, _, query = path.partition("?")
        return urlunsplit((parts.scheme, parts.netloc, path_part, query, ""))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


@dataclass(frozen=True)
class Plan:
    """A validated run."""

    urls: tuple[str, ...]
    rate: float
    duration: float
    concurrency: int
    timeout: float

    @property
    def total(self) -> int:
        return math.floor(self.rate * self.duration + 1e-6)


def plan(
    urls: Sequence[str],
    *,
    rate: float,
    duration: float,
    concurrency: int = DEFAULT_CONCURRENCY,
    path: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Plan:
    """Check every bound; ``LoadgenError`` on the first one broken."""
    if isinstance(urls, str):
        urls = [urls]
    if not urls:
        raise LoadgenError("at least one URL is needed")
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise LoadgenError(f"rate {rate:g} is outside (0, {MAX_RATE:g}] requests per second")
    if not (math.isfinite(duration) and 0 < duration <= MAX_DURATION):
        raise LoadgenError(f"duration {duration:g} is outside (0, {MAX_DURATION:g}] seconds")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise LoadgenError(f"concurrency {concurrency} is outside [1, {MAX_CONCURRENCY}]")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise LoadgenError(f"timeout {timeout:g} is outside (0, {MAX_TIMEOUT:g}] seconds")
    checked = tuple(check_url(u, path) for u in urls)
    result = Plan(checked, float(rate), float(duration), int(concurrency), float(timeout))
    if result.total < 1:
        raise LoadgenError(f"rate {rate:g} for {duration:g} s makes no request")
    return result


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Summary:
    plan: Plan
    sent: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    backends: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, requests that got a response
    elapsed: float = 0.0

    def count(self, key: str | int) -> int:
        return self.counts[str(key)]

    def latency_ms(self, p: float) -> float | None:
        value = percentile(sorted(self.latencies), p)
        return None if value is None else round(value * 1000, 3)

    def to_dict(self) -> dict[str, Any]:
        counts = {CONNECT_ERROR: 0} | dict(sorted(self.counts.items()))
        return {
            "urls": list(self.plan.urls),
            "rate": self.plan.rate,
            "duration_s": self.plan.duration,
            "concurrency": self.plan.concurrency,
            "planned": self.plan.total,
            "sent": self.sent,
            "elapsed_s": round(self.elapsed, 3),
            "counts": counts,
            "latency_ms": {"p50": self.latency_ms(50), "p99": self.latency_ms(99)},
            "backends": dict(sorted(self.backends.items())),
        }

    def format(self) -> str:
        d = self.to_dict()

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f} ms"

        lines = [
            f"loadgen: sent {d['sent']} of {d['planned']} planned requests in {d['elapsed_s']:.2f} s "
            f"to {len(d['urls'])} URL(s) at {d['rate']:g}/s",
            *(f"  {key}: {n}" for key, n in d["counts"].items()),
            f"  latency p50 {ms(d['latency_ms']['p50'])}, p99 {ms(d['latency_ms']['p99'])}",
        ]
        if d["backends"]:
            lines.append("  backends: " + ", ".join(f"{k}={n}" for k, n in d["backends"].items()))
        return "\n".join(lines)


class _LoopbackResolver(AbstractResolver):
    """``localhost`` to the loopback addresses, without asking the system (IP literals never get here)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not is_loopback_host(host):
            raise OSError(f"{host!r} is not a loopback host")
        addresses = [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
        return [
            ResolveResult(hostname=host, host=addr, port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)
            for addr, fam in addresses
            if family in {socket.AF_UNSPEC, fam}
        ]

    async def close(self) -> None:
        return None


async def generate(p: Plan) -> Summary:
    """Run a validated plan (see :func:`plan`) in the running event loop."""
    summary = Summary(p)
    connector = aiohttp.TCPConnector(limit=p.concurrency, resolver=_LoopbackResolver(), ssl=False)
    timeout = aiohttp.ClientTimeout(total=p.timeout)
    slots = asyncio.Semaphore(p.concurrency)
    loop = asyncio.get_running_loop()

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        start = time.perf_counter()
        try:
            async with session.get(url, allow_redirects=False) as resp:
                await resp.read()
            summary.latencies.append(time.perf_counter() - start)
            summary.counts[str(resp.status)] += 1
            backend = resp.headers.get("X-Backend")
            if backend:
                summary.backends[backend] += 1
        except aiohttp.ClientConnectorError:
            summary.counts[CONNECT_ERROR] += 1
        except TimeoutError:
            summary.counts["timeout"] += 1
        except aiohttp.ClientError:
            summary.counts["error"] += 1
        finally:
            slots.release()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        tasks: set[asyncio.Task[None]] = set()
        t0 = loop.time()
        cutoff = t0 + p.duration + START_GRACE
        for i in range(p.total):
            delay = t0 + i / p.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with asyncio.timeout_at(cutoff):
                    await slots.acquire()
            except TimeoutError:
                break
            summary.sent += 1
            task = asyncio.create_task(one(session, p.urls[i % len(p.urls)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        summary.elapsed = loop.time() - t0
    return summary


def run(
    urls: Sequence[str],
    *,
    rate: float,
    duration: float,
    concurrency: int = DEFAULT_CONCURRENCY,
    path: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Summary:
    """Validate (``LoadgenError`` before anything is sent), then run in a new event loop.
    From async code: ``await generate(plan(...))``."""
    p = plan(urls, rate=rate, duration=duration, concurrency=concurrency, path=path, timeout=timeout)
    return asyncio.run(generate(p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zentinel_devcluster.loadgen",
        description="Bounded HTTP load against loopback URLs; prints a summary.",
    )
    parser.add_argument("--url", action="append", required=True, help="repeatable; loopback hosts only")
    parser.add_argument("--rate", type=float, required=True, help=f"requests per second, all URLs (max {MAX_RATE:g})")
    parser.add_argument("--duration", type=float, required=True, help=f"seconds (max {MAX_DURATION:g})")
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help=f"max requests in flight (max {MAX_CONCURRENCY})"
    )
    parser.add_argument("--path", default=None, help="request this path (and query) instead of each URL's own")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per request, seconds (default 5)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        p = plan(
            args.url,
            rate=args.rate,
            duration=args.duration,
            concurrency=args.concurrency,
            path=args.path,
            timeout=args.timeout,
        )
    except LoadgenError as e:
        print(f"loadgen: error: {e}", file=sys.stderr)
        return 2
    summary = asyncio.run(generate(p))
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.format(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
