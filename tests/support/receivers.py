"""Local HTTP receivers that record every notification (webhook, Slack, PagerDuty, Alertmanager shapes)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.raw = body
        self.at = time.monotonic()
        self.answered: int | str | None = None  # the status it was answered with, or "hang"

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class Receivers:
    """Local HTTP receivers on one port, in a background thread with its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int | str]] = {}
        self.outages: dict[str, int | str] = {}  # path -> what every request is answered while it is down
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received(request.path, dict(request.headers), body)
        with self.lock:
            self.requests.append(received)
            script = self.scripts.get(request.path, [200])
            action = script.pop(0) if len(script) > 1 else script[0]
            action = self.outages.get(request.path, action)
            received.answered = action
        if action == "hang":
            await asyncio.sleep(3600)
        return web.Response(status=int(action), text="ok" if action in (200, 202) else "unavailable")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def start(self) -> Receivers:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:  # handlers still hanging on purpose
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *actions: int | str) -> None:
        with self.lock:
            self.scripts[path] = list(actions)

    def down(self, path: str, answer: int | str) -> None:
        """Answer every request to ``path`` with ``answer`` (a status, or "hang") until :meth:`up`."""
        with self.lock:
            self.outages[path] = answer

    def up(self, path: str) -> None:
        with self.lock:
            self.outages.pop(path, None)

    def got(self, path: str, incident: str | None = None) -> list[Received]:
        with self.lock:
            items = [r for r in self.requests if r.path == path]
        return [r for r in items if incident is None or incident.encode() in r.raw]
