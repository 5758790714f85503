from __future__ import annotations

import datetime as dt

from zentinel_operator.core.revisions import all_pods_ready, snapshot_name, update_history
from zentinel_operator.core.snapshot import ContainerSignal, PodSignal, Snapshot, WorkloadSignal
from zentinel_operator.models.zentinel import ConfigRevision

T0 = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def snap(ready: int = 3, desired: int = 3, growth: int = 0) -> Snapshot:
    pods = tuple(
        PodSignal(
            name=f"p{i}",
            ip=None,
            phase="Running",
            ready=i < ready,
            restart_growth=growth,
            container=ContainerSignal(name="z", ready=i < ready, running=True, restart_count=0),
        )
        for i in range(desired)
    )
    return Snapshot(
        namespace="n", zentinel="edge", observed_at=T0, workload=WorkloadSignal(exists=True, desired=desired), pods=pods
    )


def step(
    revs: list[ConfigRevision],
    *,
    current: str,
    at: float,
    valid: bool = True,
    s: Snapshot | None = None,
    incidents: int = 0,
    limit: int = 10,
    lkg: str | None = None,
):  # type: ignore[no-untyped-def]
    return update_history(
        revs,
        zentinel="edge",
        current=current,
        current_valid=valid,
        snapshot=s or snap(),
        open_incidents=incidents,
        now=T0 + dt.timedelta(minutes=at),
        proven_good_after="10m",
        limit=limit,
        last_known_good=lkg,
    )


def test_a_new_revision_is_recorded_and_saved_once() -> None:
    h = step([], current="aaaa", at=0)
    assert [r.revision for r in h.revisions] == ["aaaa"] and h.new_snapshot == "aaaa"
    assert h.revisions[0].snapshot == snapshot_name("edge", "aaaa") == "edge-config-aaaa"
    assert step(h.revisions, current="aaaa", at=1).new_snapshot is None


def test_proven_good_only_after_the_period_with_everything_healthy() -> None:
    h = step([], current="aaaa", at=0)
    h = step(h.revisions, current="aaaa", at=9)
    assert h.last_known_good is None and h.became_good is None
    h = step(h.revisions, current="aaaa", at=10)
    assert h.last_known_good == "aaaa" and h.became_good == "aaaa"


def test_trouble_resets_the_clock() -> None:
    h = step([], current="aaaa", at=0)
    h = step(h.revisions, current="aaaa", at=8, s=snap(ready=2))
    assert h.revisions[0].healthy_since is None
    h = step(h.revisions, current="aaaa", at=9)
    h = step(h.revisions, current="aaaa", at=15)
    assert h.last_known_good is None  # healthy since minute 9 only
    h = step(h.revisions, current="aaaa", at=19, incidents=1)
    h = step(h.revisions, current="aaaa", at=40, valid=False)
    assert h.last_known_good is None
    h = step(h.revisions, current="aaaa", at=41, s=snap(growth=1))
    assert h.revisions[0].healthy_since is None


def test_a_bad_revision_never_becomes_good_and_the_old_one_stays_last_known_good() -> None:
    h = step([], current="aaaa", at=0)
    h = step(h.revisions, current="aaaa", at=10)
    h = step(h.revisions, current="bbbb", at=11, s=snap(ready=0))
    h = step(h.revisions, current="bbbb", at=30, s=snap(ready=0))
    assert h.last_known_good == "aaaa"
    assert [r.proven_good for r in h.revisions] == [True, False]


def test_history_is_bounded_but_keeps_last_known_good_and_current() -> None:
    h = step([], current="r0", at=0)
    h = step(h.revisions, current="r0", at=10)
    for i in range(1, 8):
        h = step(h.revisions, current=f"r{i}", at=10 + i, s=snap(ready=0), lkg=h.last_known_good)
    h = step(h.revisions, current="r8", at=30, s=snap(ready=0), limit=3, lkg=h.last_known_good)
    kept = [r.revision for r in h.revisions]
    assert kept == ["r0", "r6", "r7", "r8"]
    assert set(h.pruned) == {"r1", "r2", "r3", "r4", "r5"}


def test_all_pods_ready() -> None:
    assert all_pods_ready(snap())
    assert not all_pods_ready(snap(ready=2))
    assert not all_pods_ready(snap(desired=0))


def test_a_revision_missing_from_a_history_is_a_change_seen_now() -> None:
    """An operator restarted between a config change and its next status write has no memory of the
    change: the history decides. The first config ever seen is where watching began, not a change."""
    from zentinel_operator.models import Zentinel
    from zentinel_operator.signals.gather import _first_seen

    now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    earlier = now - dt.timedelta(hours=2)
    body = {
        "metadata": {"name": "edge", "namespace": "shop"},
        "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
    }
    fresh = Zentinel.model_validate(body)
    assert _first_seen(fresh, "bbbb", now) is None
    history = [
        {"revision": "aaaa", "firstSeen": earlier.isoformat()},
        {"revision": "cccc", "firstSeen": (earlier + dt.timedelta(hours=1)).isoformat()},
    ]
    zen = Zentinel.model_validate({**body, "status": {"revisions": history}})
    assert _first_seen(zen, "aaaa", now) is None
    assert _first_seen(zen, "cccc", now) == earlier + dt.timedelta(hours=1)
    assert _first_seen(zen, "bbbb", now) == now
