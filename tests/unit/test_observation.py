"""The pass's observation: what gather returns (the snapshot and the raw reads behind it), and how the evidence
completes it without reading anything twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from zentinel_operator import evidence_io, k8s
from zentinel_operator.core.observation import LogRead, Observation
from zentinel_operator.core.snapshot import LogCause, Snapshot, WorkloadSignal
from zentinel_operator.core.zconfig import config_revision
from zentinel_operator.models import Zentinel
from zentinel_operator.signals import gather
from zentinel_operator.signals.scrape import FetchResult

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
CONFIG = 'system {\n    worker-threads 2\n}\nlisteners {\n    listener "http" {\n        address "0.0.0.0:8080"\n'
CONFIG += '        protocol "http"\n    }\n}\n'
METRICS = '# TYPE zentinel_requests_total counter\nzentinel_requests_total{route="api",status="200"} 5\n'
UPSTREAMS = '{"upstreams": []}'


def test_a_log_read_cut_to_fewer_lines_is_what_a_shorter_tail_reads() -> None:
    read = LogRead("edge-a", "zentinel", False, 5, text="1\n2\n3\n4\n5\n")
    assert read.last(2).text == "4\n5\n" and read.last(2).tail_lines == 2
    assert read.last(5) is read and read.last(500) is read
    assert read.last(0).text == ""
    failed = LogRead("edge-a", "zentinel", True, 5, error="API error 500")
    assert failed.last(2) is failed


def test_the_observation_answers_only_for_what_was_read() -> None:
    snap = Snapshot(namespace="shop", zentinel="edge", observed_at=T0, workload=WorkloadSignal(exists=True))
    obs = Observation(
        snap,
        logs=(LogRead("edge-a", "zentinel", False, 200, text="a\nb\n"),),
        pages={"http://10.0.0.1:9090/metrics": METRICS, "http://10.0.0.1:9090/admin/upstreams": None},
    )
    assert obs.log("edge-a", "zentinel", previous=False, lines=1) == LogRead("edge-a", "zentinel", False, 1, "b\n")
    assert obs.log("edge-a", "zentinel", previous=False, lines=500) is None  # read with fewer lines than wanted
    assert obs.log("edge-a", "zentinel", previous=True, lines=1) is None
    assert obs.log("edge-a", "sidecar", previous=False, lines=1) is None
    assert obs.page("http://10.0.0.1:9090/metrics") == (True, METRICS)
    assert obs.page("http://10.0.0.1:9090/admin/upstreams") == (True, None)  # read, no good answer
    assert obs.page("http://10.0.0.2:9090/metrics") == (False, None)  # not read
    assert obs.deployment is None and obs.pods == () and obs.config_text is None
    assert not obs.config_written_by_operator and obs.events is None


# ------------------------------------------------------------------------------- gather
def zentinel() -> Zentinel:
    return Zentinel.model_validate(
        {
            "metadata": {"name": "edge", "namespace": "shop"},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        }
    )


DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "edge", "generation": 1},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "edge"}},
        "template": {"spec": {"containers": [{"name": "zentinel"}]}},
    },
    "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "observedGeneration": 1},
}


def pod(name: str, ip: str, *, crashing: bool) -> dict[str, Any]:
    running = {"running": {"startedAt": "2026-11-27T09:00:00Z"}}
    state: dict[str, Any] = {"waiting": {"reason": "CrashLoopBackOff"}} if crashing else running
    return {
        "metadata": {"name": name, "labels": {"app": "edge"}},
        "spec": {"containers": [{"name": "zentinel"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "False" if crashing else "True"}],
            "containerStatuses": [
                {
                    "name": "zentinel",
                    "ready": not crashing,
                    "restartCount": 2 if crashing else 0,
                    "state": state,
                    **({"lastState": {"terminated": {"reason": "Error", "exitCode": 1}}} if crashing else {}),
                }
            ],
        },
    }


class FakeCluster:
    def __init__(self) -> None:
        self.pods = [pod("edge-a", "10.0.0.1", crashing=True), pod("edge-b", "10.0.0.2", crashing=False)]
        self.log_calls: list[tuple[str, str | None, bool, int]] = []
        self.list_calls = 0
        self.event_calls = 0
        self.fetched: list[list[str]] = []
        self.written_by_operator = False

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return DEPLOYMENT

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.list_calls += 1
        return self.pods

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        annotations = {"zentinel.io/written-by-operator": config_revision(CONFIG)} if self.written_by_operator else {}
        return {"metadata": {"annotations": annotations}, "data": {"zentinel.kdl": CONFIG}}

    def pod_log(self, namespace: str, name: str, container: str | None, *, previous: bool, tail_lines: int) -> str:
        self.log_calls.append((name, container, previous, tail_lines))
        text = self.log_text(previous)
        return "".join(text.splitlines(keepends=True)[-tail_lines:])

    @staticmethod
    def log_text(previous: bool) -> str:
        old = "".join(f"line {i}\n" for i in range(400))
        # The cause is older than the last 200 lines: triage must not see it, a bundle of 500 lines keeps it.
        return "Failed to load configuration file\n" + old if previous else old

    def list_events(self, namespace: str, limit: int = 2000) -> list[dict[str, Any]]:
        self.event_calls += 1
        return [{"involvedObject": {"kind": "Pod", "name": "edge-a"}, "reason": "BackOff", "message": "back-off"}]

    async def fetch_many(self, urls: list[str], **_: Any) -> dict[str, FetchResult]:
        self.fetched.append(list(urls))
        out = {}
        for url in urls:
            body = METRICS if url.endswith("/metrics") else UPSTREAMS if url.endswith("/upstreams") else None
            out[url] = FetchResult(url, body is not None, 200 if body else 404, body, None if body else "HTTP 404", 0.0)
        return out


def install(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake answers gather's reads: the API's and the pods' endpoints'."""
    for name in ("get_deployment", "list_pods", "get_configmap", "pod_log"):
        monkeypatch.setattr(k8s, name, getattr(fake, name))
    monkeypatch.setattr(evidence_io, "list_events", fake.list_events)
    monkeypatch.setattr(gather, "fetch_many", fake.fetch_many)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    install(fake, monkeypatch)
    return fake


async def observe(log_lines: int = 500) -> Observation:
    return await gather.gather(
        zentinel(), gather.PassMemory(), now=T0, settings=gather.GatherSettings(), log_lines=log_lines
    )


async def test_gather_returns_what_the_pass_saw_typed(cluster: FakeCluster) -> None:
    obs = await observe()
    assert obs.deployment is DEPLOYMENT
    assert [p["metadata"]["name"] for p in obs.pods] == ["edge-a", "edge-b"]
    assert obs.config_text == CONFIG and obs.config_written_by_operator is False
    assert obs.snapshot.config is not None and obs.snapshot.config.revision == config_revision(CONFIG)
    assert [p.name for p in obs.snapshot.pods] == ["edge-a", "edge-b"]
    # The troubled pod's logs, read once with the evidence's lines; triage matched only the last 200.
    assert cluster.log_calls == [("edge-a", "zentinel", False, 500), ("edge-a", "zentinel", True, 500)]
    assert [(r.pod, r.previous, r.tail_lines) for r in obs.logs] == [("edge-a", False, 500), ("edge-a", True, 500)]
    assert obs.snapshot.logs == ()
    # The running pod's pages, as scraped for the metrics and upstream signals.
    assert obs.pages == {"http://10.0.0.2:9090/metrics": METRICS, "http://10.0.0.2:9090/admin/upstreams": UPSTREAMS}
    assert obs.events is None  # only the evidence asks for them
    # Nothing of it is left in the memory carried to the next pass.
    fields = {f.name for f in dataclasses.fields(gather.PassMemory)}
    assert not fields & {"deployment", "config_text", "config_written_by_operator"}


async def test_triage_sees_the_same_log_lines_whatever_the_evidence_keeps(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lines in (0, 10, 500, 1000):
        obs = await observe(lines)
        assert obs.snapshot.logs == ()
        assert {r.tail_lines for r in obs.logs} == {max(200, lines)}
    previous = obs.log("edge-a", "zentinel", previous=True, lines=1000)
    assert previous is not None and previous.text is not None and "Failed to load" in previous.text
    monkeypatch.setattr(k8s, "pod_log", lambda *a, **kw: "line\nFailed to load configuration file\n")
    obs = await observe()
    assert {m.cause for m in obs.snapshot.logs} == {LogCause.CONFIG_ERROR}


async def test_the_written_by_operator_flag_is_part_of_the_observation(cluster: FakeCluster) -> None:
    cluster.written_by_operator = True
    assert (await observe()).config_written_by_operator is True


async def test_complete_for_evidence_reads_only_what_the_pass_did_not(cluster: FakeCluster) -> None:
    obs = await observe()
    cluster.log_calls.clear()
    cluster.fetched.clear()
    full = await gather.complete_for_evidence(zentinel(), obs, log_lines=500, settings=gather.GatherSettings())
    assert cluster.list_calls == 1  # no second pod list
    assert cluster.log_calls == [("edge-b", "zentinel", False, 500)]  # edge-a's logs were read by gather
    assert cluster.fetched == [
        [
            "http://10.0.0.1:9090/metrics",
            "http://10.0.0.1:9090/admin/upstreams",
            "http://10.0.0.1:9090/admin/config",
        ]
    ]  # edge-b's pages were scraped by gather; edge-a (not running its process) only now
    assert cluster.event_calls == 1 and full.events is not None and full.events[0]["reason"] == "BackOff"
    assert full.page("http://10.0.0.2:9090/metrics") == (True, METRICS)
    assert full.page("http://10.0.0.1:9090/admin/config") == (True, None)
    assert full.log("edge-b", "zentinel", previous=False, lines=500) is not None
    assert full.snapshot is obs.snapshot and full.deployment is obs.deployment and full.pods == obs.pods

    # Completed again (a second bundle in the same pass): nothing more is read.
    cluster.log_calls.clear()
    cluster.fetched.clear()
    await gather.complete_for_evidence(zentinel(), full, log_lines=500, settings=gather.GatherSettings())
    assert cluster.log_calls == [] and cluster.fetched == []


async def test_an_unreadable_log_is_kept_as_such_and_not_read_again(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(k8s, "pod_log", broken)
    obs = await observe()
    assert [r.error for r in obs.logs] == ["RuntimeError: boom", "RuntimeError: boom"]
    read = obs.log("edge-a", "zentinel", previous=True, lines=500)
    assert read is not None and read.text is None and read.error == "RuntimeError: boom"
