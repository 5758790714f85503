"""Evidence bundles and the post-mortem draft on the real control plane, with the operator as a real process.

Two of three kwok pods crash-loop; their container logs (served by kwok from Logs objects, read through
the API as ``kubectl logs`` does) hold ordinary lines and planted secrets. Zentinel admin emulators answer
on the pod IPs. The operator must keep the runbook's evidence (logs of the current and the previous
container, metrics, upstreams, pods, events, config and its revision) in ConfigMaps owned by the incident,
with every planted secret redacted everywhere, then a resolution bundle and a post-mortem draft once the
pods recover, and delete the evidence when its retention ends.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support import configs, crash
from support.dataplane import Dataplane
from support.kube import Kube, deployment, running_pods, wait_for
from support.operator import OperatorProcess
from zentinel_operator.core.zconfig import config_revision

pytestmark = pytest.mark.integration

BEARER = "abcd1234efgh5678ijkl9012mnop3456"
COOKIE = "sess7f3a9c2e1b8d4f60aa"
TOKEN = "tok9d8c7b6a5f4e3d2c1b0a"
PASSWORD = "hunter2pw5566xyz"
PLANTED = (BEARER, COOKIE, TOKEN, PASSWORD)

CURRENT_LOG = f"""\
INFO zentinel_proxy: listening on 0.0.0.0:8080 (listener http)
INFO request completed route=api method=GET status=200 request_id=9f86d081884c7d659a2feaa0c55ad015
DEBUG request headers: Authorization: Bearer {BEARER}
DEBUG request headers: Cookie: session={COOKIE}; theme=dark
INFO GET /api/items?token={TOKEN}&page=2 status=200
WARN health probe to https://monitor:{PASSWORD}@10.0.1.10:8000/health failed: connection refused
INFO upstream api target 10.0.1.11:8000 healthy again
"""
PREVIOUS_LOG = f"""\
INFO zentinel_proxy: starting zentinel 0.6.45
DEBUG replaying request with Authorization: Bearer {BEARER}
ERROR zentinel_proxy: listener http failed: Too many open files (os error 24)
"""


def healthy_upstreams(emu: Any) -> None:
    for addr in ("10.0.1.10:8000", "10.0.1.11:8000", "10.0.1.12:8000"):
        emu.set_target("api", addr, "healthy")


def policy(retention: str) -> dict[str, Any]:
    return configs.edge_policy(
        lifecycle={"resolveAfter": "3s", "reopenWindow": "10m"},
        remediation={"defaultMode": "Off"},
        evidence={"retention": retention, "logLines": 50, "maxBytes": 2_000_000},
    )


def zentinel() -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": "edge", "labels": {"tier": "edge"}},
        "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
    }


def crash_incident(kube: Kube, namespace: str) -> dict[str, Any] | None:
    for inc in kube.list("zentinelincidents", namespace):
        if inc["spec"]["category"] == "ProcessCrash" and (inc.get("status") or {}).get("state"):
            return inc
    return None


def evidence_maps(kube: Kube, namespace: str, incident: str, phase: str) -> list[dict[str, Any]]:
    selector = f"zentinel.io/incident={incident},zentinel.io/evidence-phase={phase}"
    return sorted(kube.list("configmaps", namespace, selector), key=lambda c: c["metadata"]["name"])


def merged(maps: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in maps:
        data.update(cm.get("data") or {})
    return data


def refs(inc: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    return [r for r in (inc.get("status") or {}).get("evidence") or [] if r["phase"] == phase]


def assert_no_secret(text: str, where: str) -> None:
    for secret in PLANTED:
        assert secret not in text, f"a planted secret leaked into {where}"


def check_bundle(
    kube: Kube, namespace: str, inc: dict[str, Any], phase: str, crashed: list[str], all_pods: list[str]
) -> dict[str, str]:
    name, uid = inc["metadata"]["name"], inc["metadata"]["uid"]
    maps = evidence_maps(kube, namespace, name, phase)
    assert [m["metadata"]["name"] for m in maps] == [r["name"] for r in refs(inc, phase)]
    assert maps[0]["metadata"]["name"] == f"{name}-ev-{phase}-00"
    for cm in maps:
        assert cm["immutable"] is True
        owner = cm["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("ZentinelIncident", name, uid)
        assert cm["metadata"]["labels"]["zentinel.io/evidence-phase"] == phase
    data = merged(maps)
    manifest = json.loads(data["MANIFEST.json"])
    assert manifest["incident"] == name and manifest["phase"] == phase
    for entry in manifest["items"]:  # every item listed, with its size and sha256
        assert hashlib.sha256(data[entry["key"]].encode()).hexdigest() == entry["sha256"]
        assert len(data[entry["key"]].encode()) == entry["bytes"]
    assert {e["key"] for e in manifest["items"]} == set(data) - {"MANIFEST.json"}
    assert manifest["redactions"] >= 4 * len(crashed)
    for pod in crashed:
        current = data[f"logs__{pod}__zentinel.log"]
        assert "listening on 0.0.0.0:8080" in current and "request_id=9f86d081884c7d659a2feaa0c55ad015" in current
        assert "Authorization: Bearer [REDACTED]" in current and "Cookie: [REDACTED]" in current
        assert "?token=[REDACTED]&page=2" in current and "https://monitor:[REDACTED]@10.0.1.10:8000" in current
        previous = data[f"logs__{pod}__zentinel.previous.log"]
        assert "Too many open files (os error 24)" in previous and "Bearer [REDACTED]" in previous
    for pod in all_pods:
        assert "zentinel_requests_total" in data[f"metrics__{pod}.txt"]
        assert json.loads(data[f"upstreams__{pod}.json"])["summary"]["total_targets"] == 3
    assert data["config.kdl"] == configs.GOOD
    assert f"revision: {config_revision(configs.GOOD)}" in data["config-revision.txt"]
    assert manifest["configRevision"] == config_revision(configs.GOOD)
    assert "CrashLoopBackOff" in data["describe__pods.yaml"]
    assert "Deployment/edge" in data["events.txt"] and "ScalingReplicaSet" in data["events.txt"]
    assert f"ZentinelIncident/{name}" in data["events.txt"]
    assert sorted(manifest["impact"]["podsAffected"]) == sorted(crashed)
    return data


def test_evidence_redaction_postmortem_and_retention(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], tmp_path: Path
) -> None:
    kube.apply(policy(retention="1h"), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    pods = running_pods(kube, namespace, "app=edge", 3)
    dp = Dataplane(kube, namespace, "app=edge", setup=healthy_upstreams)
    dataplanes.append(dp)
    dp.sync()
    dp.traffic(rps=40, error_share=0.0)

    crashed = sorted(p["metadata"]["name"] for p in pods[:2])
    all_pods = sorted(p["metadata"]["name"] for p in pods)
    for pod in pods[:2]:
        crash.set_logs(kube, pod, "zentinel", CURRENT_LOG, PREVIOUS_LOG, tmp_path / "logs")
    sample = kube.run("logs", pods[0]["metadata"]["name"], "-n", namespace, "--previous").stdout
    assert "Too many open files" in sample  # kwok serves the planted logs
    # Both pods crash before the Zentinel exists, so the pass that opens the incident sees both: crashed
    # one after the other under a watching operator, a pass in between opens it at SEV3 with one pod.
    for pod in pods[:2]:
        crash.crash_loop(kube, pod, restarts=5)
    kube.apply(zentinel(), namespace)
    wait_for(
        lambda: kube.status("zen", "edge", namespace).get("currentRevision"),
        timeout=60,
        what="the first pass",
    )

    # --- detection: a bundle owned by the incident, listed in its status
    def detected() -> dict[str, Any] | None:
        i = crash_incident(kube, namespace)
        return i if i is not None and refs(i, "detection") else None

    inc = wait_for(detected, timeout=90, what="detection evidence on the ProcessCrash incident")
    assert inc is not None
    assert inc["status"]["severity"] == "SEV2"
    name = inc["metadata"]["name"]
    check_bundle(kube, namespace, inc, "detection", crashed, all_pods)
    assert not refs(inc, "resolution") and not inc["status"].get("postmortem")

    # --- a restarted operator does not collect the phase again
    uids = {cm["metadata"]["uid"] for cm in evidence_maps(kube, namespace, name, "detection")}
    operator.restart()
    time.sleep(4)  # several passes at a 1 s interval
    assert {cm["metadata"]["uid"] for cm in evidence_maps(kube, namespace, name, "detection")} == uids
    assert refs(crash_incident(kube, namespace) or {}, "detection") == refs(inc, "detection")

    # --- recovery: resolution bundle and the post-mortem draft
    for pod in kube.list("pods", namespace, "app=edge"):
        if pod["metadata"]["name"] in crashed:
            crash.recover(kube, pod)

    def resolved() -> dict[str, Any] | None:
        i = crash_incident(kube, namespace)
        done = i is not None and i["status"].get("resolvedAt") and i["status"].get("postmortem")
        return i if i is not None and done and refs(i, "resolution") else None

    inc = wait_for(resolved, timeout=90, what="resolution evidence and a post-mortem")
    assert inc is not None
    assert refs(inc, "detection")  # still listed: the detection bundle is not collected again
    resolution = merged(evidence_maps(kube, namespace, name, "resolution"))
    assert "Too many open files" in resolution[f"logs__{crashed[0]}__zentinel.previous.log"]
    assert "CrashLoopBackOff" not in resolution["describe__pods.yaml"]
    assert len(evidence_maps(kube, namespace, name, "detection")) == len(refs(inc, "detection"))

    assert inc["status"]["postmortem"] == f"{name}-postmortem"

    def postmortem(containing: str) -> Callable[[], dict[str, Any] | None]:
        def probe() -> dict[str, Any] | None:
            cm = kube.get("configmap", f"{name}-postmortem", namespace)
            return cm if cm is not None and containing in cm["data"]["postmortem.md"] else None

        return probe

    pm_cm = wait_for(
        postmortem(f"{name}-ev-resolution-00"), timeout=30, what="the post-mortem listing the resolution evidence"
    )
    assert pm_cm is not None
    assert pm_cm["metadata"]["ownerReferences"][0]["uid"] == inc["metadata"]["uid"]
    text = pm_cm["data"]["postmortem.md"]
    assert text.startswith(f"# Incident Post-Mortem: {name}\n")
    for heading in ("## Summary", "## Timeline", "## Root Cause", "## Action Items", "## Lessons Learned"):
        assert f"\n{heading}\n" in text
    assert "- **Severity**: SEV2" in text and "- **Post-mortem due**: " in text
    assert f"- **Pods affected**: {', '.join(f'`{p}`' for p in crashed)}" in text
    rows = [line for line in text.splitlines() if line.startswith("| 20")]
    labels = [row.split("**")[1] for row in rows]
    assert labels[0] == "First alert triggered; incident declared"
    assert "Signals healthy" in labels and labels[-1] == "Full resolution"
    assert "```mermaid\ntimeline\n" in text
    assert f"`{name}-ev-detection-00`" in text

    # --- nothing secret anywhere: evidence, incidents, post-mortem, operator log
    everything = kube.run("get", "configmaps", "-n", namespace, "-o", "json").stdout
    assert "[REDACTED]" in everything
    assert_no_secret(everything, "a ConfigMap")
    assert_no_secret(kube.run("get", "zentinelincidents", "-n", namespace, "-o", "json").stdout, "an incident")
    assert_no_secret(kube.run("get", "events", "-n", namespace, "-o", "json").stdout, "an event")
    assert_no_secret(operator.logs(), "the operator log")

    # --- retention: the evidence goes, the post-mortem stays and says so
    kube.apply(policy(retention="5s"), namespace)
    wait_for(
        lambda: not kube.list("configmaps", namespace, f"zentinel.io/incident={name},zentinel.io/artifact=evidence"),
        timeout=60,
        what="evidence deleted after its retention",
    )
    wait_for(
        lambda: not ((crash_incident(kube, namespace) or {}).get("status") or {}).get("evidence"),
        timeout=30,
        what="status.evidence cleared",
    )
    pm_cm = wait_for(postmortem("deleted after its retention"), timeout=30, what="the post-mortem noting the deletion")
    assert pm_cm is not None
    assert "5xx answers counted by the pods' counters" in pm_cm["data"]["postmortem.md"]

    # --- owned by the incident: deleting it removes the post-mortem
    kube.run("delete", "zentinelincident", name, "-n", namespace)
    wait_for(
        lambda: kube.get("configmap", f"{name}-postmortem", namespace) is None,
        timeout=60,
        what="the post-mortem garbage-collected with its incident",
    )
