"""Issue 13 item 2: a quiet Zentinel's timer passes reuse what they read from the API server until a watch
event concerns it (``signals.gather.ApiReads``, ``PassMemory.changed``) or the resync period runs out; the
Incidents stage reuses a quiet list the same way. Whatever is not quiet is read by every pass, as before."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from support.fake_api import FakeApi
from unit.test_incidents_shell import record, resolved_incident
from unit.test_observation import DEPLOYMENT, FakeCluster, install, pod, zentinel
from unit.test_remediation_plan import NOW, finding
from zentinel_operator import k8s
from zentinel_operator.core.snapshot import CertificateSignal, Snapshot
from zentinel_operator.handlers.zentinel import PassContext, _quiet_incidents
from zentinel_operator.models import Zentinel
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.signals import gather

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
DONE = {**DEPLOYMENT, "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "observedGeneration": 1}}


class Counting(FakeCluster):
    """The fake cluster of test_observation with both pods healthy, counting every API read."""

    def __init__(self) -> None:
        super().__init__()
        self.pods = [pod("edge-a", "10.0.0.1", crashing=False), pod("edge-b", "10.0.0.2", crashing=False)]
        self.deployment: dict[str, Any] = copy.deepcopy(DONE)
        self.reads: list[str] = []

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads.append("deployment")
        return self.deployment

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.reads.append("pods")
        return self.pods

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads.append("configmap")
        return super().get_configmap(namespace, name)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Counting:
    fake = Counting()
    install(fake, monkeypatch)
    return fake


SETTINGS = gather.GatherSettings(reads_resync=300)


async def observe(
    memory: gather.PassMemory,
    at: dt.datetime,
    *,
    zen: Zentinel | None = None,
    full: bool = True,
    settings: gather.GatherSettings = SETTINGS,
) -> Snapshot:
    obs = await gather.gather(zen or zentinel(), memory, now=at, settings=settings, full=full)
    return obs.snapshot


def same_reads(a: Snapshot, b: Snapshot) -> bool:
    """The parts of two snapshots made from API reads are the same (metrics and their rates differ by scrape)."""
    return all(getattr(a, f) == getattr(b, f) for f in ("workload", "pods", "config", "certificates", "logs"))


async def test_a_quiet_zentinel_is_read_once_until_a_watch_event_concerns_it(cluster: Counting) -> None:
    memory = gather.PassMemory()
    first = await observe(memory, T0)
    assert cluster.reads == ["deployment", "pods", "configmap"]
    later = await observe(memory, T0 + dt.timedelta(seconds=15))
    assert cluster.reads == ["deployment", "pods", "configmap"]  # nothing read again
    assert same_reads(first, later) and later.observed_at == T0 + dt.timedelta(seconds=15)
    assert len(cluster.fetched) == 2  # the pods' own endpoints are scraped every full pass all the same
    # A watch event: the next pass reads again, and sees what changed.
    cluster.pods = [pod("edge-a", "10.0.0.1", crashing=True), cluster.pods[1]]
    memory.changed()
    again = await observe(memory, T0 + dt.timedelta(seconds=30))
    assert cluster.reads.count("pods") == 2
    assert [p.ready for p in again.pods] == [False, True]


async def test_a_change_during_the_read_leaves_nothing_to_reuse(
    cluster: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = gather.PassMemory()

    def configmap_then_event(namespace: str, name: str) -> dict[str, Any]:
        memory.changed()  # a watch event lands while the pass is reading
        return Counting.get_configmap(cluster, namespace, name)

    monkeypatch.setattr(k8s, "get_configmap", configmap_then_event)
    await observe(memory, T0)
    monkeypatch.setattr(k8s, "get_configmap", cluster.get_configmap)
    await observe(memory, T0 + dt.timedelta(seconds=15))
    assert cluster.reads.count("deployment") == 2


async def test_reads_are_reused_only_while_quiet_current_and_inside_the_resync(cluster: Counting) -> None:
    # Reuse off (the default without event passes: nothing would say a read is out of date).
    memory = gather.PassMemory()
    for i in range(2):
        await observe(memory, T0 + dt.timedelta(seconds=15 * i), settings=gather.GatherSettings())
    assert cluster.reads.count("deployment") == 2
    # The resync period runs out.
    cluster.reads.clear()
    memory = gather.PassMemory()
    await observe(memory, T0)
    await observe(memory, T0 + dt.timedelta(seconds=299))
    await observe(memory, T0 + dt.timedelta(seconds=300))
    assert cluster.reads.count("deployment") == 2
    # A new generation of the Zentinel: its spec may name other objects.
    cluster.reads.clear()
    memory = gather.PassMemory()
    await observe(memory, T0)
    edited = zentinel().model_copy(update={"metadata": zentinel().metadata.model_copy(update={"generation": 2})})
    await observe(memory, T0 + dt.timedelta(seconds=15), zen=edited)
    assert cluster.reads.count("deployment") == 2
    # An event pass reads afresh (it was started by a change) and its read is not kept.
    cluster.reads.clear()
    memory = gather.PassMemory()
    await observe(memory, T0, full=False)
    await observe(memory, T0 + dt.timedelta(seconds=1))
    assert cluster.reads.count("deployment") == 2


@pytest.mark.parametrize("trouble", ["troubled pod", "rolling out", "config changed lately", "no Deployment"])
async def test_what_is_not_quiet_is_read_every_pass(cluster: Counting, trouble: str) -> None:
    memory = gather.PassMemory()
    if trouble == "troubled pod":
        cluster.pods = [pod("edge-a", "10.0.0.1", crashing=True), cluster.pods[1]]
    elif trouble == "rolling out":
        cluster.deployment["status"]["updatedReplicas"] = 1
    elif trouble == "config changed lately":
        memory.config_revision = "an earlier revision"
    else:
        cluster.deployment = None  # type: ignore[assignment]
    for i in range(3):
        await observe(memory, T0 + dt.timedelta(seconds=15 * i))
    assert cluster.reads.count("deployment") == 3


async def test_a_reused_read_is_judged_now(cluster: Counting) -> None:
    memory = gather.PassMemory()
    first = await observe(memory, T0)
    assert first.config is not None and first.config.last_known_good is None
    # The pass that read it proved the revision good; the next one reuses the read, not the old status.
    zen = zentinel()
    proven = zen.model_copy(update={"status": zen.status.model_copy(update={"last_known_good_revision": "aaaa"})})
    later = await observe(memory, T0 + dt.timedelta(seconds=15), zen=proven)
    assert cluster.reads.count("configmap") == 1
    assert later.config is not None and later.config.last_known_good == "aaaa"
    assert later.config.revision == first.config.revision


def test_a_certificate_judged_later_has_fewer_days_left() -> None:
    cert = CertificateSignal(
        name="public", secret="edge-tls", present=True, not_after=T0 + dt.timedelta(days=10), days_left=10.0
    )
    assert cert.at(T0 + dt.timedelta(days=9, hours=12)).days_left == pytest.approx(0.5)
    assert cert.at(T0 + dt.timedelta(days=11)).days_left == pytest.approx(-1.0)
    unread = CertificateSignal(name="public", secret="edge-tls", present=False)
    assert unread.at(T0) is unread


# ----------------------------------------------------------------------------- incidents


def test_a_quiet_incident_list_is_kept_and_used_only_when_nothing_can_be_written() -> None:
    api = FakeApi()
    resolved_incident(api, "inc-20261126-001", resolved_at=NOW - dt.timedelta(days=1))
    quiet = record(api)
    assert len(api.called("list_incidents")) == 1 and quiet.quiet_list is not None
    assert [m.metadata.name for m in quiet.all] == ["inc-20261126-001"]
    again = record(api, listed=quiet.quiet_list)
    assert len(api.called("list_incidents")) == 1  # not listed again
    assert [m.metadata.name for m in again.all] == ["inc-20261126-001"] and again.quiet_list is not None
    # A finding: the list is read afresh (an incident is found or created from what is really there).
    crash = finding(Category.PROCESS_CRASH, Severity.SEV2)
    found = record(api, crash, listed=quiet.quiet_list)
    assert len(api.called("list_incidents")) == 3  # this Zentinel's, then the namespace's for the new name
    assert found.quiet_list is None and [m.metadata.name for m in found.open] != []
    # An open incident in the kept list: it has to be advanced from what is really there.
    opened = record(api)
    assert opened.quiet_list is None and len(api.called("list_incidents")) == 4


def test_the_kept_incident_list_goes_with_a_watch_event_or_the_resync() -> None:
    memory = gather.PassMemory()
    assert _quiet_incidents(memory, NOW, 300) is None
    memory.incidents = (memory.changes, NOW, [])
    assert _quiet_incidents(memory, NOW + dt.timedelta(seconds=299), 300) == []
    assert _quiet_incidents(memory, NOW + dt.timedelta(seconds=300), 300) is None
    assert _quiet_incidents(memory, NOW, 0) is None  # reuse off
    memory.changed()
    assert _quiet_incidents(memory, NOW, 300) is None


def test_a_watch_event_marks_only_a_zentinel_the_operator_keeps_memory_of() -> None:
    ctx = PassContext(gather=SETTINGS)
    ctx.changed("shop", "edge")  # no memory yet: nothing was read, nothing to mark
    assert ctx.memories == {}
    memory = ctx.memory("shop", "edge")
    ctx.changed("shop", "edge")
    ctx.changed("shop", "other")
    assert memory.changes == 1 and set(ctx.memories) == {("shop", "edge")}


# ----------------------------------------------------------------------------- status


def test_the_status_p99_moves_by_steps_not_by_scrape() -> None:
    from zentinel_operator.core.zstatus import latency_step

    # Two scrapes a millisecond apart read the same; crossing a step of the 1-2-5 ladder is a change.
    assert latency_step(0.0112) == latency_step(0.0127) == "≤20ms"
    assert latency_step(0.021) == "≤50ms" and latency_step(0.02) == "≤20ms"
    assert [latency_step(s) for s in (0.0, 0.0011, 0.3, 1.0, 1.2, 7.0)] == [
        "≤1ms",
        "≤2ms",
        "≤500ms",
        "≤1s",
        "≤2s",
        "≤10s",
    ]
