"""Evidence bundles: assembly, redaction, caps, chunking and the manifest (pure), and the collector's
decisions (idempotency, incomplete bundles, retention, post-mortem drafts) against an in-memory API."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from zentinel_operator import evidence_io, k8s
from zentinel_operator.core import evidence as ev
from zentinel_operator.core import lifecycle as lc
from zentinel_operator.core.observation import Observation
from zentinel_operator.core.redact import REDACTED
from zentinel_operator.core.snapshot import ConfigSignal, Finding, Snapshot, WorkloadSignal
from zentinel_operator.handlers import evidence as handler
from zentinel_operator.handlers.incidents import Recorded
from zentinel_operator.models import Zentinel, ZentinelIncident
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.incident import EvidenceRef
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec
from zentinel_operator.signals import gather
from zentinel_operator.signals.scrape import FetchResult

T0 = dt.datetime(2026, 11, 27, 10, 2, 5, tzinfo=dt.UTC)
KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def lines(prefix: str, n: int, width: int = 60) -> str:
    return "".join(f"{prefix} {i:08d} {'x' * width}\n" for i in range(n))


def manifest(bundle: ev.Bundle) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(bundle.chunks[0].data[ev.MANIFEST_KEY])
    return doc


# =================================================================================== naming
def test_data_keys_are_valid_configmap_keys() -> None:
    assert ev.data_key("logs", "edge-7d9f-abcde", "zentinel") == "logs__edge-7d9f-abcde__zentinel"
    assert KEY_RE.match(ev.data_key("weird name/with:chars", "ü"))
    assert len(ev.data_key("x" * 400)) == 253
    assert ev.data_key("..") == "item"


def test_chunk_names_and_selectors() -> None:
    assert ev.chunk_name("inc-20261127-001", "detection", 0) == "inc-20261127-001-ev-detection-00"
    assert ev.chunk_name("inc-20261127-001", "resolution", 12) == "inc-20261127-001-ev-resolution-12"
    assert ev.selector("inc-1", "detection") == (
        "zentinel.io/incident=inc-1,zentinel.io/artifact=evidence,zentinel.io/evidence-phase=detection"
    )


# ==================================================================================== build
def test_small_bundle_is_one_chunk_with_a_manifest_listing_every_item() -> None:
    items = [
        ev.Item("logs__edge-a__zentinel.log", "started\nlistening on 0.0.0.0:8080\n", "current log"),
        ev.Item("metrics__edge-a.txt", "zentinel_up 1\n", "metrics", "head"),
        ev.Item("config.kdl", "system { worker-threads 2 }\n", "config", "head"),
    ]
    bundle = ev.build("inc-20261127-001", "detection", items, max_bytes=4_000_000, collected_at=T0)
    assert len(bundle.chunks) == 1
    chunk = bundle.chunks[0]
    assert chunk.name == "inc-20261127-001-ev-detection-00"
    assert chunk.keys == [ev.MANIFEST_KEY, "logs__edge-a__zentinel.log", "metrics__edge-a.txt", "config.kdl"]
    doc = manifest(bundle)
    assert doc["format"] == ev.FORMAT and doc["incident"] == "inc-20261127-001" and doc["phase"] == "detection"
    assert doc["collectedAt"] == "2026-11-27T10:02:05+00:00"
    assert doc["chunks"] == [chunk.name]
    assert doc["truncated"] is False and doc["notes"] == []
    assert [e["key"] for e in doc["items"]] == [i.key for i in items]
    for entry, item in zip(doc["items"], items, strict=True):
        assert entry["bytes"] == len(item.text.encode())
        assert entry["sha256"] == sha(item.text) == sha(chunk.data[item.key])
        assert entry["chunk"] == chunk.name
    assert doc["totalBytes"] == sum(len(i.text.encode()) for i in items)
    refs = bundle.refs()
    assert refs == [EvidenceRef(name=chunk.name, phase="detection", items=chunk.keys, bytes=chunk.bytes)]


def test_items_are_redacted_and_counted_in_the_manifest() -> None:
    log = "GET /api?token=abc123secret&page=1\nAuthorization: Bearer zyx987654321\nordinary line\n"
    bundle = ev.build(
        "inc-1",
        "detection",
        [ev.Item("logs__p__c.log", log)],
        max_bytes=100_000,
        collected_at=T0,
        notes=["fetch https://u:hunter2@host failed"],
    )
    text = bundle.chunks[0].data["logs__p__c.log"]
    assert "abc123secret" not in text and "zyx987654321" not in text and "ordinary line" in text
    doc = manifest(bundle)
    assert doc["redactions"] == 2 and doc["items"][0]["redactions"] == 2
    assert doc["notes"] == [f"fetch https://u:{REDACTED}@host failed"]
    assert "hunter2" not in bundle.chunks[0].data[ev.MANIFEST_KEY]


def test_duplicate_and_invalid_keys_are_made_unique_and_valid() -> None:
    items = [ev.Item("a.log", "1"), ev.Item("a.log", "2"), ev.Item("bad key/x", "3"), ev.Item(ev.MANIFEST_KEY, "4")]
    bundle = ev.build("inc-1", "resolution", items, max_bytes=100_000, collected_at=T0)
    keys = [e["key"] for e in manifest(bundle)["items"]]
    assert keys == ["a.log", "a.log.2", "bad_key_x", "item.MANIFEST.json"]
    assert all(KEY_RE.match(k) for k in bundle.chunks[0].keys)


def test_large_bundle_is_chunked_under_the_configmap_limit_and_big_items_are_split() -> None:
    big = lines("big", 30_000)  # ~2.2 MB: larger than a chunk
    items = [ev.Item(f"logs__pod-{i}__zentinel.log", lines(f"pod{i}", 4_000)) for i in range(4)]  # ~300 KB each
    items.append(ev.Item("metrics__pod-0.txt", big, keep="head"))
    bundle = ev.build("inc-20261127-002", "detection", items, max_bytes=100_000_000, collected_at=T0)
    assert len(bundle.chunks) >= 4
    for chunk in bundle.chunks:
        assert sum(len(k) + len(v.encode()) for k, v in chunk.data.items()) <= ev.CHUNK_BYTES
        assert all(KEY_RE.match(k) and len(k) <= 253 for k in chunk.data)
    assert [c.name for c in bundle.chunks] == [
        f"inc-20261127-002-ev-detection-{i:02d}" for i in range(len(bundle.chunks))
    ]
    assert ev.MANIFEST_KEY in bundle.chunks[0].data
    assert all(ev.MANIFEST_KEY not in c.data for c in bundle.chunks[1:])
    doc = manifest(bundle)
    assert doc["truncated"] is False
    by_key = {c_key: c for c in bundle.chunks for c_key in c.data}
    for entry in doc["items"]:
        chunk = by_key[entry["key"]]
        assert entry["chunk"] == chunk.name
        assert sha(chunk.data[entry["key"]]) == entry["sha256"]
    parts = [e for e in doc["items"] if e.get("partOf") == "metrics__pod-0.txt"]
    assert len(parts) >= 3
    assert [p["part"] for p in parts] == [f"{i}/{len(parts)}" for i in range(1, len(parts) + 1)]
    assert "".join(by_key[p["key"]].data[p["key"]] for p in parts) == big
    for i in range(4):  # small items are whole
        key = f"logs__pod-{i}__zentinel.log"
        assert by_key[key].data[key] == items[i].text


def test_cap_cuts_the_largest_items_first_and_keeps_the_total_under_max_bytes() -> None:
    small = ev.Item("config.kdl", "system { worker-threads 2 }\n" * 100, keep="head")  # ~2.8 KB
    medium = ev.Item("events.txt", lines("event", 100))  # ~7.7 KB
    large = ev.Item("logs__a__zentinel.log", lines("a", 4_000))  # ~300 KB
    larger = ev.Item("metrics__a.txt", lines("zentinel_requests_total", 5_000), keep="head")
    bundle = ev.build("inc-1", "detection", [small, medium, large, larger], max_bytes=120_000, collected_at=T0)
    assert bundle.total_bytes <= 120_000
    data = bundle.chunks[0].data
    assert data["config.kdl"] == small.text and data["events.txt"] == medium.text
    doc = manifest(bundle)
    assert doc["truncated"] is True
    cut = {e["key"]: e for e in doc["items"] if "truncated" in e}
    assert set(cut) == {"logs__a__zentinel.log", "metrics__a.txt"}
    assert cut["logs__a__zentinel.log"]["truncated"] == {"originalBytes": len(large.text.encode()), "kept": "newest"}
    assert cut["metrics__a.txt"]["truncated"]["kept"] == "first"
    assert any("cut to keep the bundle within maxBytes 120000" in n for n in doc["notes"])
    # Cut fairly: both large items end up about the same size.
    assert abs(cut["logs__a__zentinel.log"]["bytes"] - cut["metrics__a.txt"]["bytes"]) < 2_000
    # Logs keep their newest lines, whole; the metrics page its first lines.
    log = data["logs__a__zentinel.log"]
    assert log.startswith("[... cut by the Zentinel incident operator: kept the newest ")
    assert log.endswith(large.text.splitlines(keepends=True)[-1])
    assert all(line in large.text for line in log.splitlines()[1:])
    metrics = data["metrics__a.txt"]
    assert metrics.startswith(larger.text.splitlines(keepends=True)[0])
    assert metrics.rstrip("\n").endswith("...]")


def test_truncate_and_split_respect_utf8_and_lines() -> None:
    text = "é" * 1000 + "\n" + "ü" * 1000 + "\n"
    cut = ev.truncate(text, 1500, keep="tail", max_bytes=1500)
    assert len(cut.encode()) <= 1500
    cut.encode("utf-8")  # no broken sequence
    head = ev.truncate(text, 1500, keep="head", max_bytes=1500)
    assert len(head.encode()) <= 1500
    assert ev.truncate("short\n", 100, keep="tail", max_bytes=100) == "short\n"
    pieces = ev.split(text * 10, 3000)
    assert "".join(pieces) == text * 10
    assert all(len(p.encode()) <= 3000 for p in pieces)


# ============================================================================ ConfigMaps
def test_configmap_body_is_immutable_owned_and_labelled() -> None:
    bundle = ev.build("inc-1", "resolution", [ev.Item("a.log", "x")], max_bytes=10_000, collected_at=T0)
    body = ev.configmap_body(bundle, bundle.chunks[0], namespace="prod", incident_uid="uid-1", zentinel="edge")
    meta = body["metadata"]
    assert body["immutable"] is True
    assert meta["name"] == "inc-1-ev-resolution-00" and meta["namespace"] == "prod"
    assert meta["labels"]["zentinel.io/incident"] == "inc-1"
    assert meta["labels"]["zentinel.io/evidence-phase"] == "resolution"
    assert meta["labels"]["zentinel.io/zentinel"] == "edge"
    assert meta["annotations"][ev.ANN_CHUNK] == "0/1"
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("ZentinelIncident", "inc-1", "uid-1")
    assert owner["apiVersion"] == "zentinel.io/v1alpha1"


def _cm(name: str, chunk: str, data: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {ev.ANN_CHUNK: chunk}}, "data": data}


def test_refs_from_configmaps_needs_every_chunk() -> None:
    complete = [_cm("i-ev-detection-01", "1/2", {"b": "22"}), _cm("i-ev-detection-00", "0/2", {"a": "1"})]
    refs = ev.refs_from_configmaps(complete, "detection")
    assert refs == [
        EvidenceRef(name="i-ev-detection-00", phase="detection", items=["a"], bytes=1),
        EvidenceRef(name="i-ev-detection-01", phase="detection", items=["b"], bytes=2),
    ]
    assert ev.refs_from_configmaps(complete[:1], "detection") is None
    assert ev.refs_from_configmaps([_cm("x", "bogus", {})], "detection") is None


# =========================================================================== descriptions
POD: dict[str, Any] = {
    "metadata": {
        "name": "edge-a",
        "uid": "u1",
        "labels": {"app": "edge"},
        "annotations": {"zentinel.io/config-revision": "abc", "vault.example/secret": "s3cret-value"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "edge-7d9f"}],
    },
    "spec": {
        "nodeName": "kwok-node-0",
        "containers": [
            {
                "name": "zentinel",
                "image": "ghcr.io/zentinelproxy/zentinel:0.6.45",
                "env": [{"name": "API_TOKEN", "value": "env-secret-value"}],
                "args": ["--token", "arg-secret-value"],
                "ports": [{"name": "admin", "containerPort": 9090}],
            }
        ],
    },
    "status": {
        "phase": "Running",
        "podIP": "127.0.10.2",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {
                "name": "zentinel",
                "ready": False,
                "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    },
}


def test_describe_pods_keeps_status_and_never_env_args_or_foreign_annotations() -> None:
    text = ev.describe_pods([POD])
    doc = yaml.safe_load(text)[0]
    assert doc["name"] == "edge-a" and doc["node"] == "kwok-node-0"
    assert doc["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert doc["status"]["conditions"][0]["type"] == "Ready"
    assert doc["annotations"] == {"zentinel.io/config-revision": "abc"}
    assert doc["ownedBy"] == ["ReplicaSet/edge-7d9f"]
    for secret in ("env-secret-value", "arg-secret-value", "s3cret-value", "API_TOKEN"):
        assert secret not in text


def test_format_events_filters_sorts_and_counts() -> None:
    events: list[dict[str, Any]] = [
        {
            "involvedObject": {"kind": "Pod", "name": "edge-a"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "lastTimestamp": "2026-11-27T10:01:00Z",
            "count": 4,
        },
        {
            "involvedObject": {"kind": "Deployment", "name": "edge"},
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "message": "Scaled up",
            "lastTimestamp": "2026-11-27T09:00:00Z",
        },
        {"involvedObject": {"kind": "Pod", "name": "other"}, "reason": "Ignored", "lastTimestamp": "2026"},
    ]
    text = ev.format_events(events, {("Pod", "edge-a"), ("Deployment", "edge")})
    out = text.splitlines()
    assert out[0].startswith("LAST SEEN")
    assert "Deployment/edge" in out[1] and "Pod/edge-a" in out[2] and "(x4)" in out[2]
    assert "Ignored" not in text
    assert "no events" in ev.format_events([], {("Pod", "x")})


def test_error_counts_and_pods_affected() -> None:
    counts = ev.error_counts([("api", "200", 90), ("api", "503", 10), ("web", "404", 5)], [("502", 3)])
    assert counts == {
        "(proxy)": {"requests": 3, "errors": 3},
        "api": {"requests": 100, "errors": 10},
        "web": {"requests": 5, "errors": 0},
    }
    healthy = {
        "metadata": {"name": "edge-b"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [{"restartCount": 0}]},
    }
    assert ev.pods_affected([POD, healthy]) == ["edge-a"]


def test_summary_for_postmortem_survives_the_evidence_deletion() -> None:
    refs = [EvidenceRef(name="i-ev-detection-00", phase="detection", items=["MANIFEST.json", "a"], bytes=100)]
    man = {
        "collectedAt": T0.isoformat(),
        "truncated": False,
        "redactions": 2,
        "impact": {"routes": {"api": {"requests": 10, "errors": 4}}, "podsAffected": ["edge-a"]},
    }
    until = T0 + dt.timedelta(days=30)
    first = ev.summary_for_postmortem({"detection": man}, refs, previous=None, retention_until=until)
    assert first["bundles"] == [
        {
            "phase": "detection",
            "chunks": ["i-ev-detection-00"],
            "bytes": 100,
            "items": 2,
            "collectedAt": T0.isoformat(),
            "truncated": False,
            "redactions": 2,
        }
    ]
    assert first["podsAffected"] == ["edge-a"] and first["impact"]["detection"]["routes"]["api"]["errors"] == 4
    assert first["retentionUntil"] == until.isoformat()
    later = ev.summary_for_postmortem({}, [], previous=first, retention_until=until)
    assert later["bundles"][0]["deleted"] is True and later["impact"] == first["impact"]


# ================================================================= the collector (handler)
class FakeAPI:
    """Just enough of the API server for the collector: ConfigMaps, pods, logs, events, status patches."""

    def __init__(self) -> None:
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.status_patches: list[tuple[str, dict[str, Any]]] = []
        self.created: list[str] = []
        self.log_calls: list[tuple[str, bool]] = []
        self.pods: list[dict[str, Any]] = [POD]
        self.logs = {
            ("edge-a", False): "2026-11-27T10:00:00Z started\nGET /api?token=tok-planted-1 200\n",
            ("edge-a", True): "Authorization: Bearer planted-bearer-123\nFailed to load configuration file\n",
        }
        self.fail_logs = False
        self.drafts = handler.Drafts()  # the pass context's, kept between the passes of a test

    # --- ConfigMaps
    @staticmethod
    def _matches(cm: dict[str, Any], selector: str) -> bool:
        labels = cm["metadata"].get("labels") or {}
        return all(labels.get(k) == v for k, v in (p.split("=", 1) for p in selector.split(",") if p))

    def list_configmaps(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(c)) for c in self.configmaps.values() if self._matches(c, label_selector)]

    def create_configmap(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        name = body["metadata"]["name"]
        if name in self.configmaps:
            return None
        self.configmaps[name] = json.loads(json.dumps(body))
        self.created.append(name)
        return body

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        cm = self.configmaps.get(name)
        return json.loads(json.dumps(cm)) if cm else None

    def patch_configmap(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        cm = self.configmaps[name]
        assert not cm.get("immutable"), "immutable ConfigMaps cannot be patched"
        cm["metadata"].setdefault("annotations", {}).update(patch.get("metadata", {}).get("annotations", {}))
        cm.setdefault("data", {}).update(patch.get("data", {}))
        return cm

    def delete_configmap(self, namespace: str, name: str) -> None:
        self.configmaps.pop(name, None)

    def delete_configmaps(self, namespace: str, label_selector: str) -> None:
        for name in [n for n, c in self.configmaps.items() if self._matches(c, label_selector)]:
            del self.configmaps[name]

    # --- the rest
    def patch_incident_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.status_patches.append((name, patch))
        return {}

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self.pods

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return DEPLOYMENT

    def pod_log(
        self, namespace: str, pod: str, container: str | None, *, previous: bool, tail_lines: int
    ) -> str | None:
        self.log_calls.append((pod, previous))
        if self.fail_logs:
            raise RuntimeError("boom")
        return self.logs.get((pod, previous))

    def list_events(self, namespace: str, limit: int = 2000) -> list[dict[str, Any]]:
        return [
            {
                "involvedObject": {"kind": "Pod", "name": "edge-a"},
                "type": "Warning",
                "reason": "BackOff",
                "message": "Back-off restarting failed container",
                "lastTimestamp": "2026-11-27T10:01:00Z",
            }
        ]


DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "edge", "generation": 2},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "edge"}}, "template": {"spec": {"containers": []}}},
    "status": {"replicas": 1},
}
CONFIG = 'system {\n    worker-threads 2\n}\nagents {\n    agent "auth" { password "kdl-planted-secret" }\n}\n'
METRICS = (
    "# TYPE zentinel_requests_total counter\n"
    'zentinel_requests_total{route="api",method="GET",status="200"} 90\n'
    'zentinel_requests_total{route="api",method="GET",status="503"} 10\n'
    "# TYPE zentinel_up gauge\nzentinel_up 1\n"
)
UPSTREAMS = json.dumps({"upstreams": [{"id": "api", "targets": [{"address": "10.0.1.10:8000", "status": "healthy"}]}]})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    fake = FakeAPI()
    # The collector is given the fake (its ConfigMaps and status patches); what the pass's gather reads (pods,
    # the Deployment, logs, events) comes from the same fake, through the k8s functions gather calls.
    for name in ("list_pods", "get_deployment", "pod_log"):
        monkeypatch.setattr(k8s, name, getattr(fake, name))
    monkeypatch.setattr(evidence_io, "list_events", fake.list_events)
    yield fake


class Scraper:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, urls: list[str]) -> dict[str, str | None]:
        self.calls.append(urls)
        out: dict[str, str | None] = {}
        for url in urls:
            if url.endswith("/metrics"):
                out[url] = METRICS
            elif url.endswith("/admin/upstreams"):
                out[url] = UPSTREAMS
            else:
                out[url] = None
        return out

    async def fetch_many(self, urls: list[str], **_: Any) -> dict[str, FetchResult]:
        """Stands in for :func:`zentinel_operator.signals.scrape.fetch_many` on the pass's session."""
        bodies = self(list(urls))
        return {
            url: FetchResult(url, body is not None, 200 if body is not None else None, body, None, 0.0)
            for url, body in bodies.items()
        }


def zentinel() -> Zentinel:
    return Zentinel.model_validate(
        {
            "metadata": {"name": "edge", "namespace": "prod", "uid": "zen-uid"},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        }
    )


def incident(*, resolved: bool = False, evidence: list[EvidenceRef] | None = None) -> ZentinelIncident:
    policy = ZentinelIncidentPolicySpec()
    finding = Finding(Category.PROCESS_CRASH, Severity.SEV2, "1 of 1 Zentinel pods down (CrashLoopBackOff)")
    st = lc.new_incident(finding, now=T0, policy=policy).status
    if resolved:
        st = lc.step(
            st,
            category=Category.PROCESS_CRASH,
            finding=None,
            human=lc.HumanInput(resolved_by="alice", resolution_note="fixed"),
            now=T0 + dt.timedelta(minutes=30),
            policy=policy,
            generation=1,
        ).status
    st.evidence = list(evidence or [])
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": "inc-20261127-001", "namespace": "prod", "uid": "inc-uid"},
            "spec": {"zentinelRef": {"name": "edge"}, "category": "ProcessCrash", "fingerprint": "edge/ProcessCrash"},
            "status": st.dump(),
        }
    )


def observed() -> Observation:
    """What the pass's gather saw (the Deployment and pods from the fake API, the config), no log read yet."""
    workload, config = WorkloadSignal(exists=True), ConfigSignal(present=True)
    snapshot = Snapshot(namespace="prod", zentinel="edge", observed_at=T0, workload=workload, config=config)
    pods = tuple(k8s.list_pods("prod", "app=edge"))
    return Observation(snapshot, deployment=k8s.get_deployment("prod", "edge"), pods=pods, config_text=CONFIG)


def run(
    api: FakeAPI, inc: ZentinelIncident, scraper: Scraper, *, now: dt.datetime = T0, **evidence_policy: Any
) -> None:
    """The pass's evidence stage: is a bundle wanted? then complete the observation, then collect."""
    policy = ZentinelIncidentPolicySpec.model_validate({"evidence": evidence_policy})
    recorded = Recorded(open=[inc] if lc.is_open(inc.status) else [], all=[inc], created=[])
    zen, observation = zentinel(), observed()
    if handler.wanted(api=api, zen=zen, recorded=recorded, policy=policy, now=now):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(gather, "fetch_many", scraper.fetch_many)
            observation = asyncio.run(
                gather.complete_for_evidence(
                    zen, observation, log_lines=policy.evidence.log_lines, settings=gather.GatherSettings()
                )
            )
    handler.collect(
        api=api, drafts=api.drafts, zen=zen, recorded=recorded, observation=observation, policy=policy, now=now
    )


def evidence_patches(api: FakeAPI) -> list[list[dict[str, Any]]]:
    return [p["evidence"] for _, p in api.status_patches if "evidence" in p]


def test_detection_bundle_is_stored_owned_and_listed_in_status(api: FakeAPI) -> None:
    scraper = Scraper()
    run(api, incident(), scraper)
    assert api.created == ["inc-20261127-001-ev-detection-00"]
    cm = api.configmaps["inc-20261127-001-ev-detection-00"]
    assert cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "inc-uid"
    assert cm["metadata"]["labels"]["zentinel.io/evidence-phase"] == "detection"
    data = cm["data"]
    assert set(data) == {
        "MANIFEST.json",
        "logs__edge-a__zentinel.log",
        "logs__edge-a__zentinel.previous.log",
        "metrics__edge-a.txt",
        "upstreams__edge-a.json",
        "describe__pods.yaml",
        "describe__deployment.yaml",
        "events.txt",
        "config.kdl",
        "config-revision.txt",
        "incident.yaml",
    }
    assert "Failed to load configuration file" in data["logs__edge-a__zentinel.previous.log"]
    assert data["metrics__edge-a.txt"] == METRICS
    assert "revision: " in data["config-revision.txt"] and "BackOff" in data["events.txt"]
    everything = json.dumps(api.configmaps) + json.dumps(api.status_patches)
    for planted in ("tok-planted-1", "planted-bearer-123", "kdl-planted-secret"):
        assert planted not in everything
    doc = json.loads(data["MANIFEST.json"])
    assert doc["impact"]["routes"] == {"api": {"requests": 100.0, "errors": 10.0}}
    assert doc["impact"]["podsAffected"] == ["edge-a"]
    assert any("admin-config__edge-a.json: no answer" in n for n in doc["notes"])
    [patch] = evidence_patches(api)
    assert patch == [
        {
            "name": "inc-20261127-001-ev-detection-00",
            "phase": "detection",
            "items": list(data),
            "bytes": sum(len(v.encode()) for v in data.values()),
        }
    ]
    assert not any("postmortem" in p for _, p in api.status_patches)  # open: no post-mortem yet


def test_a_phase_in_status_is_not_collected_again(api: FakeAPI) -> None:
    scraper = Scraper()
    ref = EvidenceRef(name="inc-20261127-001-ev-detection-00", phase="detection", items=["a"], bytes=1)
    run(api, incident(evidence=[ref]), scraper)
    assert scraper.calls == [] and api.log_calls == [] and api.created == [] and api.status_patches == []


def test_a_complete_bundle_found_by_labels_is_listed_not_collected_again(api: FakeAPI) -> None:
    run(api, incident(), Scraper())
    api.status_patches.clear()
    api.created.clear()
    scraper = Scraper()
    run(api, incident(), scraper)  # the status write was lost: the labels still tell
    assert scraper.calls == [] and api.created == []
    [patch] = evidence_patches(api)
    assert patch[0]["name"] == "inc-20261127-001-ev-detection-00"


def test_an_incomplete_bundle_is_replaced(api: FakeAPI) -> None:
    stale: dict[str, Any] = {
        "metadata": {
            "name": "inc-20261127-001-ev-detection-01",
            "labels": {
                "zentinel.io/incident": "inc-20261127-001",
                "zentinel.io/artifact": "evidence",
                "zentinel.io/evidence-phase": "detection",
            },
            "annotations": {ev.ANN_CHUNK: "1/2"},
        },
        "data": {"x": "old"},
    }
    api.configmaps[stale["metadata"]["name"]] = stale
    run(api, incident(), Scraper())
    assert "inc-20261127-001-ev-detection-01" not in api.configmaps
    assert api.created == ["inc-20261127-001-ev-detection-00"]


def test_resolution_bundle_and_postmortem_draft(api: FakeAPI) -> None:
    det = EvidenceRef(name="inc-20261127-001-ev-detection-00", phase="detection", items=["MANIFEST.json"], bytes=10)
    inc = incident(resolved=True, evidence=[det])
    run(api, inc, Scraper(), now=T0 + dt.timedelta(minutes=30))
    assert api.created == ["inc-20261127-001-ev-resolution-00", "inc-20261127-001-postmortem"]
    pm_cm = api.configmaps["inc-20261127-001-postmortem"]
    assert pm_cm["metadata"]["ownerReferences"][0]["name"] == "inc-20261127-001"
    assert not pm_cm.get("immutable")
    text = pm_cm["data"]["postmortem.md"]
    assert text.startswith("# Incident Post-Mortem: inc-20261127-001")
    assert "inc-20261127-001-ev-resolution-00" in text
    assert "5xx answers counted by the pods' counters: 10 of 100 requests at resolution" in text
    names = next(p["evidence"] for _, p in api.status_patches if "evidence" in p)
    assert [r["phase"] for r in names] == ["detection", "resolution"]
    assert ("inc-20261127-001", {"postmortem": "inc-20261127-001-postmortem"}) in api.status_patches

    # The next pass, with the status as written: nothing to do.
    api.status_patches.clear()
    api.created.clear()
    refs = [EvidenceRef.model_validate(r) for r in names]
    again = inc.model_copy(
        update={"status": inc.status.model_copy(update={"evidence": refs, "postmortem": "inc-20261127-001-postmortem"})}
    )
    scraper = Scraper()
    run(api, again, scraper, now=T0 + dt.timedelta(minutes=31))
    assert scraper.calls == [] and api.created == [] and api.status_patches == []


def test_a_draft_edited_by_a_person_is_left_alone(api: FakeAPI) -> None:
    inc = incident(resolved=True)
    run(api, inc, Scraper(), now=T0 + dt.timedelta(minutes=30))
    api.configmaps["inc-20261127-001-postmortem"]["data"]["postmortem.md"] = "# Our own write-up\n"
    api.drafts = handler.Drafts()  # a restarted operator
    changed = inc.model_copy(update={"status": inc.status.model_copy(update={"count": 7})})
    run(api, changed, Scraper(), now=T0 + dt.timedelta(minutes=40))
    data = api.configmaps["inc-20261127-001-postmortem"]["data"]
    assert data["postmortem.md"] == "# Our own write-up\n"
    assert data["postmortem.generated.md"].startswith("# Incident Post-Mortem")
    assert "seen 7 time(s)" in data["postmortem.generated.md"]


def test_retention_deletes_the_evidence_and_clears_the_status(api: FakeAPI) -> None:
    inc = incident(resolved=True)
    run(api, inc, Scraper(), now=T0 + dt.timedelta(minutes=30), retention="1h")
    refs = [EvidenceRef.model_validate(r) for r in evidence_patches(api)[-1]]
    assert "inc-20261127-001-ev-resolution-00" in api.configmaps
    api.status_patches.clear()
    done = inc.model_copy(update={"status": inc.status.model_copy(update={"evidence": refs})})
    scraper = Scraper()
    run(api, done, scraper, now=T0 + dt.timedelta(minutes=30, hours=1), retention="1h")
    assert "inc-20261127-001-ev-resolution-00" not in api.configmaps
    assert evidence_patches(api) == [[]]
    assert scraper.calls == []  # not collected again once the retention is over
    assert "inc-20261127-001-postmortem" in api.configmaps
    assert "deleted after its retention" in api.configmaps["inc-20261127-001-postmortem"]["data"]["postmortem.md"]


def test_disabled_evidence_collects_nothing_but_still_drafts(api: FakeAPI) -> None:
    scraper = Scraper()
    run(api, incident(resolved=True), scraper, now=T0 + dt.timedelta(minutes=30), enabled=False)
    assert scraper.calls == [] and api.log_calls == []
    assert api.created == ["inc-20261127-001-postmortem"]
    assert "No evidence bundle is recorded" in api.configmaps["inc-20261127-001-postmortem"]["data"]["postmortem.md"]


def test_failures_become_notes_and_never_escape(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    api.fail_logs = True
    run(api, incident(), Scraper())
    doc = json.loads(api.configmaps["inc-20261127-001-ev-detection-00"]["data"]["MANIFEST.json"])
    assert any("current log unavailable (RuntimeError: boom)" in n for n in doc["notes"])

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("API down")

    monkeypatch.setattr(api, "list_configmaps", broken)
    run(api, incident(), Scraper())  # logged, not raised
