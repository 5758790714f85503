"""How many Zentinel metrics pages per second ``fetch_many`` + ``parse_exposition`` get through.

Starts emulated Zentinels (``tests/support/emulator.py``) on distinct loopback addresses
(127.128.x.y, like pod IPs) in a separate process, so that server and scraper do not share a GIL,
then scrapes 10, 100 and 500 of them (``--sizes``) at a given concurrency and prints figures.
A benchmark, not a test: nothing is asserted.

    .venv/bin/python benchmarks/scrape_throughput.py
    .venv/bin/python benchmarks/scrape_throughput.py --sizes 10,100,500 --concurrency 16,64 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.emulator import EmulatorFleet, ZentinelEmulator, free_port  # noqa: E402
from zentinel_operator.signals.metrics import MetricsError, parse_exposition  # noqa: E402
from zentinel_operator.signals.scrape import fetch_many  # noqa: E402


def address(i: int) -> str:
    return f"127.128.{1 + i // 250}.{1 + i % 250}"


def populate(emulator: ZentinelEmulator, i: int) -> None:
    """A busy proxy's page: 8 routes x 2 methods x 4 statuses, histograms, blocked reasons (~30 KiB)."""
    for r in range(8):
        route = f"route-{r}"
        for method in ("GET", "POST"):
            for status, count in ((200, 5000 + i), (404, 40), (500, 3), (502, 1)):
                emulator.add_requests(route, status, count, method=method, latency_seconds=0.004 * (r + 1))
    emulator.add_blocked("proxy_error_502", 7)
    emulator.add_blocked("rate_limited", 120)
    emulator.set_gauge(open_connections=40 + i, memory_bytes=50_000_000)


def serve(count: int) -> None:
    """Child process: run ``count`` emulators until stdin closes."""
    last_error: OSError | None = None
    for _ in range(5):
        port = free_port()
        fleet = EmulatorFleet((address(i), port) for i in range(count))
        try:
            fleet.start()
        except OSError as exc:  # the port is taken on one of the addresses: try another
            last_error = exc
            continue
        for i, emulator in enumerate(fleet):
            populate(emulator, i)
        print(f"READY {port} {len(fleet.emulators[0].render_metrics())}", flush=True)
        sys.stdin.read()
        fleet.stop()
        return
    raise SystemExit(f"could not bind {count} emulators: {last_error}")


async def scrape(
    urls: list[str], concurrency: int, request_timeout: float, session: aiohttp.ClientSession
) -> dict[str, float]:
    started = time.perf_counter()
    results = await fetch_many(
        urls, concurrency=concurrency, timeout=request_timeout, max_bytes=4 << 20, session=session
    )
    fetched = time.perf_counter()
    failed = parse_failed = 0
    for result in results.values():
        if not result.ok or result.body is None:
            failed += 1
            continue
        try:
            parse_exposition(result.body)
        except MetricsError:
            parse_failed += 1
    done = time.perf_counter()
    latencies = sorted(r.elapsed for r in results.values())
    return {
        "total": done - started,
        "fetch": fetched - started,
        "parse": done - fetched,
        "failed": failed,
        "parse_failed": parse_failed,
        "p50_ms": 1000 * statistics.median(latencies),
        "max_ms": 1000 * latencies[-1],
    }


async def run(sizes: list[int], concurrencies: list[int], rounds: int, request_timeout: float, port: int) -> None:
    header = (
        f"{'endpoints':>9} {'conc':>5} {'scrapes/s':>10} {'fetch s':>8} {'parse s':>8} "
        f"{'req p50 ms':>10} {'req max ms':>10} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        urls = [f"http://{address(i)}:{port}/metrics" for i in range(size)]
        for concurrency in concurrencies:
            # One long-lived session, as the operator keeps one: connections are reused across rounds.
            connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                await scrape(urls, concurrency, request_timeout, session)  # warm-up: connect everything once
                runs = [await scrape(urls, concurrency, request_timeout, session) for _ in range(rounds)]
            best = min(runs, key=lambda r: r["total"])
            print(
                f"{size:>9} {concurrency:>5} {size / best['total']:>10.0f} {best['fetch']:>8.3f} "
                f"{best['parse']:>8.3f} {best['p50_ms']:>10.1f} {best['max_ms']:>10.1f} "
                f"{int(best['failed'] + best['parse_failed']):>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500", help="endpoint counts to scrape (default 10,100,500)")
    parser.add_argument("--concurrency", default="64", help="fetch_many concurrency bounds (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per case; the best is shown")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print(f"starting {max(sizes)} emulated Zentinels on 127.128.x.y in a separate process ...", flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(max(sizes))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = child.stdout.readline().split()
        if not line or line[0] != "READY":
            raise SystemExit(f"the emulator process did not start (exit {child.wait()})")
        port, page_bytes = int(line[1]), int(line[2])
        print(
            f"ready in {time.perf_counter() - started:.1f}s on port {port}; page {page_bytes} bytes; "
            f"{args.rounds} rounds per case, best shown; scrape = fetch_many + parse_exposition\n"
        )
        asyncio.run(run(sizes, concurrencies, args.rounds, args.timeout, port))
    finally:
        child.stdin.close()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
