"""The bounded scraper against real local HTTP servers: the emulator and small aiohttp servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from support.emulator import ZentinelEmulator, free_port
from zentinel_operator.signals.metrics import MetricsError, parse_exposition
from zentinel_operator.signals.scrape import FetchResult, fetch_many
from zentinel_operator.signals.upstreams import parse_upstreams

MiB = 1024 * 1024


@pytest.fixture
def emulator() -> Iterator[ZentinelEmulator]:
    # a pod IP on the loopback network, as the integration tests use
    with ZentinelEmulator("127.128.0.5", 0) as emu:
        emu.hang_seconds = 10
        yield emu


class SlowServer:
    """An aiohttp server on the test's own loop that counts requests in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def slow(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.served += 1
        return web.Response(text=f"ok {request.query_string}")

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"#" * (2 * MiB))  # declared in Content-Length

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/big", self.big)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def slow_server() -> AsyncIterator[SlowServer]:
    server = SlowServer(delay=0.05)
    await server.start()
    yield server
    await server.stop()


async def one(url: str, *, request_timeout: float = 2.0, max_bytes: int = MiB) -> FetchResult:
    results = await fetch_many([url], concurrency=4, timeout=request_timeout, max_bytes=max_bytes)
    assert list(results) == [url]
    return results[url]


async def test_fetches_and_parses_the_emulator(emulator: ZentinelEmulator) -> None:
    emulator.add_requests("api", 200, 12)
    emulator.set_target("api", "10.0.0.1:80", "healthy", 0.0)
    results = await fetch_many(
        [emulator.metrics_url, emulator.upstreams_url], concurrency=2, timeout=2.0, max_bytes=MiB
    )
    metrics, upstreams = results[emulator.metrics_url], results[emulator.upstreams_url]
    assert metrics.ok and metrics.status == 200 and metrics.error is None and metrics.body is not None
    assert parse_exposition(metrics.body).requests == {("api", "200"): 12}
    assert upstreams.ok and upstreams.body is not None
    assert [t.address for t in parse_upstreams(upstreams.body)] == ["10.0.0.1:80"]
    assert 0 <= metrics.elapsed < 2.0


async def test_timeout_is_an_error_not_an_exception(emulator: ZentinelEmulator) -> None:
    emulator.mode = "hang"
    started = time.monotonic()
    result = await one(emulator.metrics_url, request_timeout=0.3)
    assert not result.ok and result.status is None and result.body is None
    assert result.error == "timed out after 0.3s"
    assert 0.25 <= result.elapsed < 1.5
    assert time.monotonic() - started < 2.0


async def test_garbage_is_fetched_and_then_refused_by_the_parser(emulator: ZentinelEmulator) -> None:
    emulator.mode = "garbage"
    result = await one(emulator.metrics_url)
    assert result.ok and result.body is not None  # HTTP-wise fine ...
    with pytest.raises(MetricsError):  # ... but not a metrics page
        parse_exposition(result.body)


async def test_empty_body(emulator: ZentinelEmulator) -> None:
    emulator.mode = "empty"
    result = await one(emulator.metrics_url)
    assert result.ok and result.body == ""
    with pytest.raises(MetricsError, match="empty"):
        parse_exposition(result.body)


async def test_huge_chunked_body_is_cut_off(emulator: ZentinelEmulator) -> None:
    emulator.mode = "huge"
    emulator.huge_bytes = 8 * MiB
    result = await one(emulator.metrics_url, max_bytes=MiB)
    assert not result.ok and result.body is None
    assert result.status == 200
    assert result.error == f"body larger than {MiB} bytes"


async def test_declared_length_over_the_cap_is_refused_before_reading(slow_server: SlowServer) -> None:
    result = await one(slow_server.base + "/big", max_bytes=MiB)
    assert not result.ok and result.error == f"body larger than {MiB} bytes"
    assert (await one(slow_server.base + "/big", max_bytes=4 * MiB)).ok


async def test_http_500_keeps_the_status_and_body(emulator: ZentinelEmulator) -> None:
    emulator.mode = "http500"
    result = await one(emulator.metrics_url)
    assert not result.ok and result.status == 500 and result.error == "HTTP 500"
    assert result.body is not None and "Failed to encode metrics" in result.body


async def test_refused_connection() -> None:
    port = free_port("127.128.0.6")  # bound and released: nothing listens there now
    result = await one(f"http://127.128.0.6:{port}/metrics")
    assert not result.ok and result.status is None
    assert result.error == f"cannot connect to 127.128.0.6:{port}: Connection refused"


async def test_a_server_that_does_not_speak_http() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\x01\x02 this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await one(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok and result.status is None
    assert result.error is not None and result.error.startswith("not an HTTP answer: Bad status line")


async def test_bad_urls_do_not_raise() -> None:
    results = await fetch_many(["not a url", "ftp://127.0.0.1/x"], concurrency=2, timeout=1.0, max_bytes=MiB)
    assert all(not r.ok and r.error for r in results.values())


async def test_one_bad_endpoint_does_not_spoil_the_rest(emulator: ZentinelEmulator) -> None:
    with ZentinelEmulator("127.128.0.7", 0) as hanging:
        hanging.hang_seconds = 10
        hanging.mode = "hang"
        urls = [emulator.metrics_url, hanging.metrics_url, emulator.upstreams_url, emulator.metrics_url]
        started = time.monotonic()
        results = await fetch_many(urls, concurrency=8, timeout=0.5, max_bytes=MiB)
        assert time.monotonic() - started < 2.0
    assert len(results) == 3  # duplicates are fetched once
    assert results[emulator.metrics_url].ok and results[emulator.upstreams_url].ok
    assert results[hanging.metrics_url].error == "timed out after 0.5s"


async def test_concurrency_is_bounded(slow_server: SlowServer) -> None:
    urls = [f"{slow_server.base}/slow?i={i}" for i in range(24)]
    started = time.monotonic()
    results = await fetch_many(urls, concurrency=4, timeout=5.0, max_bytes=MiB)
    took = time.monotonic() - started
    assert all(r.ok for r in results.values()) and slow_server.served == 24
    assert slow_server.max_in_flight == 4
    assert took >= 24 / 4 * 0.05 * 0.9  # six waves of 50 ms at least


async def test_concurrency_is_bounded_with_an_unbounded_session(slow_server: SlowServer) -> None:
    urls = [f"{slow_server.base}/slow?i={i}" for i in range(12)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        results = await fetch_many(urls, concurrency=3, timeout=5.0, max_bytes=MiB, session=session)
        assert not session.closed  # a session passed in is the caller's to close
    assert all(r.ok for r in results.values())
    assert slow_server.max_in_flight == 3


async def test_arguments_are_checked() -> None:
    assert await fetch_many([], concurrency=1, timeout=1.0, max_bytes=1) == {}
    with pytest.raises(ValueError):
        await fetch_many(["http://127.0.0.1:1/"], concurrency=0, timeout=1.0, max_bytes=1)
    with pytest.raises(ValueError):
        await fetch_many(["http://127.0.0.1:1/"], concurrency=1, timeout=0, max_bytes=1)
