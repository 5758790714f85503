"""A fault-injecting proxy in front of the real kube-apiserver, for the operator under test.

The operator gets a kubeconfig pointing at this plain-HTTP proxy on loopback; the proxy forwards every
request (watch streams included) to the API server with the cluster's admin credentials. A test
arms faults on it:

- ``fail(method, path_re, statuses)``: the next matching requests (``WRITE`` matches POST, PUT,
  PATCH and DELETE) are answered with those HTTP statuses (429 with ``Retry-After``, 500, 409...) and
  a Kubernetes ``Status`` body, without reaching the API server; with ``after=True`` the request
  does reach it, and its answer is replaced: the write happened, the client is told it failed;
- ``gone(path_re, times)``: the next matching watch requests get one ``ERROR`` event with code 410
  (what the API server sends when a watch asks for a resourceVersion it no longer has), then close;
- ``cut_watches_after(seconds)``: every watch stream is closed that many seconds after it opened.

Everything it did is counted in ``injected`` so a test can check its faults really happened, and
every request's ``User-Agent`` in ``user_agents`` (who the API server would be told is calling).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    statuses: list[int]
    after: bool

    def matches(self, method: str, path: str) -> bool:
        wanted = WRITES if self.method == "WRITE" else {self.method}
        return bool(self.statuses) and method in wanted and bool(self.path.search(path))


@dataclass
class _Gone:
    path: re.Pattern[str]
    times: int


@dataclass
class FaultProxy:
    kubeconfig: Path
    port: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)  # what the API server itself refused, for failures
    user_agents: Counter[str] = field(default_factory=Counter)  # every request's User-Agent header
    _failures: list[_Failure] = field(default_factory=list)
    _gone: list[_Gone] = field(default_factory=list)
    _cut_after: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        cfg = json.loads(self.kubeconfig.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        self.upstream = cluster["server"]
        self.ssl = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.ssl.load_cert_chain(user["client-certificate"], user["client-key"])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ arming
    def fail(self, method: str, path: str, statuses: list[int], *, after: bool = False) -> None:
        with self._lock:
            self._failures.append(_Failure(method.upper(), re.compile(path), list(statuses), after))

    def gone(self, path: str, times: int = 1) -> None:
        with self._lock:
            self._gone.append(_Gone(re.compile(path), times))

    def cut_watches_after(self, seconds: float | None) -> None:
        with self._lock:
            self._cut_after = seconds

    def disarm(self) -> None:
        """Drop every failure still armed: requests pass through again."""
        with self._lock:
            self._failures.clear()

    def armed(self) -> int:
        """Faults still waiting for a request to land on."""
        with self._lock:
            return sum(len(f.statuses) for f in self._failures) + sum(g.times for g in self._gone)

    def _take_failure(self, method: str, path: str) -> tuple[int, bool] | None:
        with self._lock:
            for f in self._failures:
                if f.matches(method, path):
                    return f.statuses.pop(0), f.after
        return None

    def _take_gone(self, path: str) -> bool:
        with self._lock:
            for g in self._gone:
                if g.times and g.path.search(path):
                    g.times -= 1
                    return True
        return False

    # --------------------------------------------------------------- serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.user_agents[request.headers.get("User-Agent", "")] += 1
        watch = request.query.get("watch") in ("true", "1")
        failure = self._take_failure(request.method, path)
        if failure is not None and not failure[1]:
            return self._failed(request.method, failure[0], "")
        if watch and self._take_gone(path):
            self.injected["watch 410"] += 1
            gone = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await gone.prepare(request)
            await gone.write(json.dumps({"type": "ERROR", "object": _status_body(410)}).encode() + b"\n")
            await gone.write_eof()
            return gone
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        if body and "Content-Type" not in request.headers:
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=None if watch else 60)
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body or None,
            headers=headers,
            ssl=self.ssl,
            timeout=timeout,
        ) as upstream:
            if upstream.status >= 400:
                self.refusals.append(f"{request.method} {path} -> {upstream.status}")
            if failure is not None:  # the write reached the API server; the client hears otherwise
                await upstream.read()
                return self._failed(request.method, failure[0], f" after a {upstream.status}")
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS},
            )
            await response.prepare(request)
            cut_after = self._cut_after if watch else None
            try:
                async with asyncio.timeout(cut_after):
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
            except TimeoutError:
                self.injected["watch cut"] += 1
            await response.write_eof()
            return response

    def _failed(self, method: str, status: int, note: str) -> web.Response:
        self.injected[f"{method} {status}{note}"] += 1
        headers = {"Retry-After": "1"} if status == 429 else {}
        return web.json_response(_status_body(status), status=status, headers=headers)

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    def start(self) -> FaultProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def write_kubeconfig(self, path: Path) -> Path:
        cfg: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "faulty", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "via-proxy", "user": {}}],
            "contexts": [{"name": "faulty", "context": {"cluster": "faulty", "user": "via-proxy"}}],
            "current-context": "faulty",
        }
        path.write_text(json.dumps(cfg))
        return path


def _status_body(code: int) -> dict[str, Any]:
    reason = {409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError"}.get(code, "Unknown")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"injected by the test's fault proxy ({code})",
        "reason": reason,
        "code": code,
    }
