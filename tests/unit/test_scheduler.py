"""scheduler.PassScheduler: one event pass per burst, never beside a timer pass, fair across Zentinels.

No timing is asserted: each test waits for a state (a pass started, nothing owed) and checks what ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable

import pytest

from zentinel_operator.scheduler import PassScheduler


class Passes:
    """The pass a scheduler runs: records each start, and holds a pass open while its key's gate is closed."""

    def __init__(self) -> None:
        self.started: list[Hashable] = []
        self.finished: list[Hashable] = []
        self.running = 0
        self.most_at_once = 0
        self.gates: dict[Hashable, asyncio.Event] = {}
        self.during: dict[Hashable, Callable[[], None]] = {}  # what a pass of a key does while it runs
        self.failing: set[Hashable] = set()

    def gate(self, key: Hashable) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    async def __call__(self, key: Hashable) -> None:
        self.started.append(key)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if key in self.during:
                self.during[key]()
            if key in self.gates:
                await self.gates[key].wait()
            if key in self.failing:
                raise RuntimeError(f"pass of {key} failed")
        finally:
            self.running -= 1
            self.finished.append(key)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def passes() -> Passes:
    return Passes()


@pytest.fixture
async def make(passes: Passes) -> AsyncIterator[Callable[..., PassScheduler]]:
    made: list[PassScheduler] = []

    def factory(debounce: float = 0.0, concurrency: int = 4) -> PassScheduler:
        s = PassScheduler(passes, debounce=debounce, concurrency=concurrency)
        s.start()
        made.append(s)
        return s

    yield factory
    for s in made:
        await s.stop()


def idle(s: PassScheduler, passes: Passes, *keys: Hashable) -> Callable[[], bool]:
    return lambda: passes.running == 0 and not any(s.pending(k) for k in keys)


async def test_a_burst_of_changes_makes_one_pass(make: Callable[..., PassScheduler], passes: Passes) -> None:
    s = make(debounce=0.02)
    for _ in range(50):
        s.request("edge")
    assert s.pending("edge") and passes.started == []  # the debounce gathers the burst first
    await until(lambda: passes.finished == ["edge"] and idle(s, passes, "edge")(), "the pass ran")
    assert passes.started == ["edge"] and not s.pending("edge")


async def test_a_change_during_a_pass_makes_exactly_one_more_after_it(
    make: Callable[..., PassScheduler], passes: Passes
) -> None:
    s = make()
    gate = passes.gate("edge")
    s.request("edge")
    await until(lambda: passes.started == ["edge"], "the first pass started")
    for _ in range(10):  # it may have read before these changes: one more pass is owed, not ten
        s.request("edge")
    assert passes.started == ["edge"]  # never two passes of one Zentinel at once
    gate.set()
    await until(lambda: len(passes.finished) == 2 and idle(s, passes, "edge")(), "the second pass ran")
    assert passes.started == ["edge", "edge"] and passes.most_at_once == 1


async def test_a_timer_pass_never_runs_beside_an_event_pass_and_covers_what_was_asked_before_it(
    make: Callable[..., PassScheduler], passes: Passes
) -> None:
    s = make()
    gate = passes.gate("edge")
    s.request("edge")
    await until(lambda: passes.started == ["edge"], "the event pass started")
    order: list[str] = []

    async def timer_pass() -> None:
        async with s.exclusive("edge"):
            order.append("timer")

    timer = asyncio.create_task(timer_pass())
    await asyncio.sleep(0)
    assert order == []  # waits for the event pass
    gate.set()
    await timer
    assert order == ["timer"] and passes.finished == ["edge"]
    assert not s.pending("edge")  # nothing asked after the event pass started: nothing more runs

    # Asked before a timer pass starts: the timer pass reads it all, no event pass follows.
    slow = make(debounce=60.0)
    slow.request("edge")
    assert slow.pending("edge")
    async with slow.exclusive("edge"):
        assert not slow.pending("edge")
    assert not slow.pending("edge") and passes.started == ["edge"]


async def test_a_change_during_a_timer_pass_runs_an_event_pass_after_it(
    make: Callable[..., PassScheduler], passes: Passes
) -> None:
    s = make()
    async with s.exclusive("edge"):
        s.request("edge")
        await asyncio.sleep(0.01)  # give a worker every chance to run it beside the timer pass: it must not
        assert passes.started == []
    await until(lambda: passes.finished == ["edge"] and idle(s, passes, "edge")(), "the event pass after the timer")


async def test_a_zentinel_that_keeps_changing_does_not_starve_the_others(
    make: Callable[..., PassScheduler], passes: Passes
) -> None:
    s = make(concurrency=1)
    noisy = {"left": 5}

    def changes_again() -> None:  # each of its passes sees a new change (a crash loop's status writes)
        if noisy["left"]:
            noisy["left"] -= 1
            s.request("noisy")

    passes.during["noisy"] = changes_again
    for key in ("noisy", "a", "b"):
        s.request(key)
    await until(idle(s, passes, "noisy", "a", "b"), "every pass ran")
    assert passes.started[:4] == ["noisy", "a", "b", "noisy"]  # back to the end of the queue, each time
    assert passes.started.count("noisy") == 6 and passes.started.count("a") == passes.started.count("b") == 1


async def test_concurrency_is_bounded_and_a_burst_over_many_zentinels_is_worked_through_in_order(
    make: Callable[..., PassScheduler], passes: Passes
) -> None:
    s = make(concurrency=2)
    keys = [f"z{i}" for i in range(6)]
    for key in keys:
        passes.gate(key)
        s.request(key)
    await until(lambda: len(passes.started) == 2, "two passes started")
    await asyncio.sleep(0.01)
    assert passes.started == ["z0", "z1"] and passes.running == 2
    for key in keys:
        passes.gates[key].set()
    await until(idle(s, passes, *keys), "every pass ran")
    assert passes.started == keys and passes.most_at_once == 2


async def test_a_failing_pass_leaves_the_workers_running(make: Callable[..., PassScheduler], passes: Passes) -> None:
    s = make(concurrency=1)
    passes.failing.add("broken")
    s.request("broken")
    s.request("edge")
    await until(lambda: passes.finished == ["broken", "edge"], "both passes ran")


async def test_a_forgotten_zentinel_gets_no_pass(make: Callable[..., PassScheduler], passes: Passes) -> None:
    s = make(debounce=60.0)
    s.request("gone")
    s.forget("gone")
    assert not s.pending("gone")
    s.debounce = 0.0
    s.request("edge")
    await until(lambda: passes.finished == ["edge"], "the other pass ran")
    assert passes.started == ["edge"]
