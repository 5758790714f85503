"""Event passes: a change starts the pass of the Zentinel it concerns at once, one pass per burst.

:meth:`PassScheduler.request` is called for every change (``registration.py``'s event handlers, through
``core.watch_map``). The first request for a Zentinel waits ``debounce`` seconds, and every request in
that window joins it: a burst (a rollout's pod updates, a crash loop's status writes) makes one pass.
The window is fixed from the first request, so a steady stream of changes cannot postpone the pass.

Ready Zentinels wait in one FIFO queue, each at most once, and ``concurrency`` workers take them in
turn: a burst touching many Zentinels is worked through in order, and a Zentinel that keeps changing
goes back to the end of the queue after each pass, so it cannot starve the others.

The timer pass (the scrape cadence and the safety net) takes the same per-Zentinel lock through
:meth:`PassScheduler.exclusive`, so a timer pass and an event pass of one Zentinel never overlap. A
timer pass covers the requests made before it started (they are dropped); a request made while any
pass of that Zentinel runs starts one more pass after it, since that pass may have read too early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class PassScheduler:
    def __init__(
        self, run: Callable[[Hashable], Awaitable[object]], *, debounce: float = 0.5, concurrency: int = 4
    ) -> None:
        self._run = run
        self.debounce = debounce
        self.concurrency = concurrency
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._waiting: dict[Hashable, asyncio.TimerHandle | None] = {}  # requested, pass not started yet
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()  # requested while a pass of it ran
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._workers: list[asyncio.Task[None]] = []
        self.passes = 0  # event passes run (finished, failed or not)

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work(), name=f"event-pass-{i}") for i in range(self.concurrency)]

    async def stop(self) -> None:
        for handle in self._waiting.values():
            if handle is not None:
                handle.cancel()
        self._waiting.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    # ------------------------------------------------------------------ requests
    def request(self, key: Hashable) -> None:
        """A change concerns ``key``: run its pass soon (call on the event loop)."""
        if key in self._running:
            self._again.add(key)
        elif key not in self._waiting:
            loop = asyncio.get_running_loop()
            self._waiting[key] = loop.call_later(self.debounce, self._ready, key) if self.debounce > 0 else None
            if self.debounce <= 0:
                self._ready(key)

    def pending(self, key: Hashable) -> bool:
        """Whether a pass of ``key`` is owed (waiting out its debounce, queued, or due again after a running one)."""
        return key in self._waiting or key in self._again

    def forget(self, key: Hashable) -> None:
        """The Zentinel is gone: drop what is owed to it."""
        handle = self._waiting.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._again.discard(key)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked() and key not in self._running:
            self._locks.pop(key, None)

    def _ready(self, key: Hashable) -> None:
        if key in self._waiting:
            self._waiting[key] = None
            self._queue.put_nowait(key)

    # ------------------------------------------------------------------ passes
    def _lock(self, key: Hashable) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def exclusive(self, key: Hashable) -> AsyncIterator[None]:
        """Hold ``key``'s lock for a pass started elsewhere (the timer's): it covers what was requested before."""
        async with self._lock(key):
            handle = self._waiting.pop(key, None)
            if handle is not None:
                handle.cancel()
            self._again.discard(key)
            self._running.add(key)
            try:
                yield
            finally:
                self._finished(key)

    def _finished(self, key: Hashable) -> None:
        self._running.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.request(key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            if key not in self._waiting:  # a timer pass took it over, or the Zentinel is gone
                continue
            lock = self._lock(key)
            if lock.locked():  # a timer pass runs: one more pass after it, without holding a worker meanwhile
                del self._waiting[key]
                self._again.add(key)
                continue
            del self._waiting[key]
            async with lock:
                self._running.add(key)
                try:
                    await self._run(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("event pass of %s failed", key)
                finally:
                    self.passes += 1
                    self._finished(key)
