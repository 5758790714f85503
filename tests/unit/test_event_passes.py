"""Event passes read the objects afresh and reuse the last full pass's endpoint signals (signals.gather).

A pass started by a change right after a timer pass must not compute rates over that short interval, nor
rewrite the status with them: the metrics stay on the scan cadence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from unit.test_observation import T0, UPSTREAMS, FakeCluster, cluster, pod, zentinel
from zentinel_operator.core.zstatus import summary
from zentinel_operator.signals import gather
from zentinel_operator.signals.scrape import FetchResult

__all__ = ["cluster"]  # the fixture, from test_observation


class Counting(FakeCluster):
    """Metrics pages whose request counter grows by 100 per scrape: every pair of scrapes has a rate."""

    def __init__(self) -> None:
        super().__init__()
        self.scrapes = 0
        self.broken = False

    async def fetch_many(self, urls: list[str], **kw: Any) -> dict[str, FetchResult]:
        if self.broken:
            raise OSError("connection reset")
        self.fetched.append(list(urls))
        self.scrapes += 1
        page = "# TYPE zentinel_requests_total counter\n"
        page += f'zentinel_requests_total{{route="api",status="200"}} {100 * self.scrapes}\n'
        return {u: FetchResult(u, True, 200, page if u.endswith("/metrics") else UPSTREAMS, None, 0.0) for u in urls}


@pytest.fixture
def counting(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Counting:
    fake = Counting()
    fake.pods = cluster.pods
    monkeypatch.setattr(gather, "fetch_many", fake.fetch_many)
    return fake


async def observe(memory: gather.PassMemory, at: float, *, full: bool, failures: list[str] | None = None) -> Any:
    return await gather.gather(
        zentinel(),
        memory,
        now=T0 + dt.timedelta(seconds=at),
        settings=gather.GatherSettings(),
        full=full,
        failures=failures,
    )


async def test_an_event_pass_reuses_the_last_scan_and_computes_no_rate_of_its_own(counting: Counting) -> None:
    memory = gather.PassMemory()
    await observe(memory, 0, full=True)
    scan = await observe(memory, 15, full=True)
    assert scan.snapshot.metrics.interval_seconds == 15 and scan.snapshot.metrics.requests_per_second > 0
    scrapes = counting.scrapes

    event = await observe(memory, 16, full=False)  # one second after the scan
    assert counting.scrapes == scrapes  # no endpoint read at all
    assert event.snapshot.metrics == scan.snapshot.metrics and event.snapshot.upstreams == scan.snapshot.upstreams
    assert event.pages == {}  # nothing was fetched; the evidence reads what it needs itself
    assert event.snapshot.endpoints_at == scan.snapshot.observed_at  # and says when they were read
    # The status it makes differs from the scan's only in when it was observed: nothing to write.
    assert summary(event.snapshot, T0) == summary(scan.snapshot, T0)

    # The next scan's rates are over the time since the last scan, not since the event pass.
    nxt = await observe(memory, 30, full=True)
    assert nxt.snapshot.metrics.interval_seconds == 15
    assert nxt.snapshot.metrics.requests_per_second == scan.snapshot.metrics.requests_per_second


async def test_an_event_pass_reads_the_objects_afresh(counting: Counting) -> None:
    memory = gather.PassMemory()
    await observe(memory, 0, full=True)
    assert [p.ready for p in (await observe(memory, 1, full=False)).snapshot.pods] == [False, True]
    counting.pods[1] = pod("edge-b", "10.0.0.2", crashing=True)  # the change the event was about
    event = await observe(memory, 2, full=False)
    assert [p.ready for p in event.snapshot.pods] == [False, False]
    assert event.snapshot.pods[1].container is not None and event.snapshot.pods[1].container.crash_looping
    assert {r.pod for r in event.logs} == {"edge-a", "edge-b"}  # the newly troubled pod's logs are read


async def test_a_restart_is_counted_once_by_the_first_pass_that_sees_it(counting: Counting) -> None:
    memory = gather.PassMemory()
    await observe(memory, 0, full=True)  # edge-a at 2 restarts

    def restarted(count: int) -> None:
        counting.pods[0]["status"]["containerStatuses"][0]["restartCount"] = count

    def growth(obs: Any) -> int:
        return int(obs.snapshot.pods[0].restart_growth)

    restarted(3)
    assert growth(await observe(memory, 1, full=False)) == 1  # the event pass the restart started
    assert growth(await observe(memory, 2, full=False)) == 0  # used up: a later pass does not report it again
    assert growth(await observe(memory, 15, full=True)) == 0
    restarted(5)
    assert growth(await observe(memory, 30, full=True)) == 2  # seen first by the scan
    assert growth(await observe(memory, 31, full=False)) == 0


async def test_what_the_scan_could_not_read_stays_reported_by_the_event_passes(counting: Counting) -> None:
    memory = gather.PassMemory()
    counting.broken = True
    scan_failures: list[str] = []
    await observe(memory, 0, full=True, failures=scan_failures)
    assert scan_failures == ["admin endpoints: OSError"]
    event_failures: list[str] = []
    event = await observe(memory, 1, full=False, failures=event_failures)
    # The same PassDegraded as the scan's: no flip to healthy and back on every event.
    assert event_failures == scan_failures and event.snapshot.metrics is None


async def test_before_any_scan_an_event_pass_knows_no_endpoint_signal(counting: Counting) -> None:
    event = await observe(gather.PassMemory(), 0, full=False)
    assert event.snapshot.metrics is None and event.snapshot.upstreams is None  # unknown, never healthy
    assert counting.scrapes == 0


async def test_rates_are_over_the_time_between_the_scrapes_not_between_the_passes(counting: Counting) -> None:
    """A pass that waited (for the lock an event pass held) or read the API slowly scrapes later than it started:
    its rates are over the time between the two scrapes, read from the clock at each."""
    memory = gather.PassMemory()
    scrapes = iter([T0 + dt.timedelta(seconds=2.6), T0 + dt.timedelta(seconds=3.8)])

    def clock() -> dt.datetime:
        return next(scrapes)

    settings = gather.GatherSettings()
    await gather.gather(zentinel(), memory, now=T0, settings=settings, clock=clock)
    later = await gather.gather(zentinel(), memory, now=T0 + dt.timedelta(seconds=3), settings=settings, clock=clock)
    assert later.snapshot.metrics is not None
    assert later.snapshot.metrics.interval_seconds == pytest.approx(1.2)  # not the 3 s between the passes' starts
