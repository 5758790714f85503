"""Signals and triage end to end: kwok pods, emulated admin endpoints on the pod IPs, real Secrets."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from support import configs, crash
from support.dataplane import Dataplane
from support.kube import Kube, condition, deployment, running_pods, wait_for
from support.operator import OperatorProcess
from zentinel_operator.core.certs import self_signed, tls_secret_data

pytestmark = pytest.mark.integration


def policy(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"},
    }
    base.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": base,
    }


def zentinel(tls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": "edge", "labels": {"tier": "edge"}},
        "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}, "tls": tls or []},
    }


def start_edge(
    kube: Kube,
    namespace: str,
    dataplanes: list[Any],
    replicas: int = 3,
    tls: list[dict[str, Any]] | None = None,
    **policy_spec: Any,
) -> Dataplane:
    kube.apply(policy(**policy_spec), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=replicas), namespace)
    running_pods(kube, namespace, "app=edge", replicas)
    dp = Dataplane(kube, namespace, "app=edge")
    dataplanes.append(dp)
    dp.sync()
    kube.apply(zentinel(tls), namespace)
    return dp


def incident(kube: Kube, namespace: str, category: str, *, open_only: bool = True) -> dict[str, Any] | None:
    for inc in kube.list("zentinelincidents", namespace):
        st = inc.get("status") or {}
        if inc["spec"]["category"] == category and st.get("state") and (not open_only or not st.get("resolvedAt")):
            return inc
    return None


def categories(kube: Kube, namespace: str) -> set[str]:
    return {
        i["spec"]["category"]
        for i in kube.list("zentinelincidents", namespace)
        if not (i.get("status") or {}).get("resolvedAt")
    }


def test_healthy_edge_has_no_incident_and_a_full_summary(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=200, error_share=0.0)
    st = wait_for(
        lambda: (s := kube.status("zen", "edge", namespace)).get("summary", {}).get("errorRate") == "0.00%" and s,
        timeout=60,
        what="an error rate in the summary",
    )
    assert st["health"] == "Healthy" and st["openIncidents"] == 0
    assert st["summary"]["pods"] == "3/3"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds["Healthy"] == "True" and conds["ConfigValid"] == "True"
    assert categories(kube, namespace) == set()
    # Level-based passes every second, but the status is written only when something changed.
    marker = f"/namespaces/{namespace}/zentinels/edge/status"
    before = operator.logs().count(marker)
    time.sleep(4)
    assert operator.logs().count(marker) == before


def test_all_pods_crashing_is_sev1_one_of_three_is_lower(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=50, error_share=0.0)
    pods = running_pods(kube, namespace, "app=edge", 3)
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash")
    assert inc["status"]["severity"] == "SEV3"
    for p in pods[1:]:
        crash.crash_loop(kube, p, restarts=4)
    raised = wait_for(
        lambda: (i := incident(kube, namespace, "ProcessCrash")) and i["status"]["severity"] == "SEV1" and i,
        timeout=60,
        what="ProcessCrash raised to SEV1",
    )
    assert raised["metadata"]["name"] == inc["metadata"]["name"]
    assert any("3 of 3" in e or "all" in e.lower() for e in raised["status"]["findings"][0]["evidence"])


def test_rising_error_share_goes_sev3_then_sev2_then_resolves(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=400, error_share=0.03)
    inc = wait_for(lambda: incident(kube, namespace, "HighErrorRate"), timeout=60, what="HighErrorRate")
    assert inc["status"]["severity"] == "SEV3"
    name = inc["metadata"]["name"]
    dp.traffic(rps=400, error_share=0.20)
    wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"]["severity"] == "SEV2",
        timeout=60,
        what="HighErrorRate SEV2",
    )
    evidence = " ".join(kube.get("zinc", name, namespace)["status"]["findings"][0]["evidence"])  # type: ignore[index]
    assert "api" in evidence
    dp.traffic(rps=400, error_share=0.0)
    done = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt") and o,
        timeout=60,
        what="resolution",
    )
    assert done["status"]["state"] == "Resolved"
    lifecycle = [t["type"] for t in done["status"]["timeline"] if t["type"] != "Action"]
    assert lifecycle[:2] == ["Detected", "SeverityRaised"] and lifecycle[-1] == "Resolved"


def test_expiring_certificate_then_renewal_resolves(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    expiring = self_signed(
        sans=["edge.example.com"], common_name="edge.example.com", now=now, validity=dt.timedelta(days=2)
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "edge-tls"},
            "data": tls_secret_data(expiring),
        },
        namespace,
    )
    dp = start_edge(kube, namespace, dataplanes, tls=[{"name": "public", "secretName": "edge-tls"}])
    dp.traffic(rps=50, error_share=0.0)
    inc = wait_for(lambda: incident(kube, namespace, "CertificateExpiring"), timeout=60, what="CertificateExpiring")
    assert inc["status"]["severity"] == "SEV2"  # default ladder: 3 days or fewer
    # The Zentinel's status is written at the end of the pass that opened the incident.
    cond = wait_for(
        lambda: (
            (c := condition(kube.get("zen", "edge", namespace), "CertificatesValid")) and c["status"] == "False" and c
        ),
        timeout=30,
        what="CertificatesValid=False on the Zentinel",
    )
    assert cond["reason"] == "CertificateExpiring"
    fresh = self_signed(
        sans=["edge.example.com"], common_name="edge.example.com", now=now, validity=dt.timedelta(days=90)
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "edge-tls"},
            "data": tls_secret_data(fresh),
        },
        namespace,
    )
    name = inc["metadata"]["name"]
    wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt"),
        timeout=60,
        what="certificate incident resolved",
    )


def test_garbage_metrics_make_a_finding_not_a_crash(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.each(lambda e: e.set_mode("garbage", "/metrics"))
    inc = wait_for(lambda: incident(kube, namespace, "MetricsUnavailable"), timeout=60, what="MetricsUnavailable")
    assert inc["status"]["severity"] == "SEV4"
    dp.each(lambda e: e.set_mode("huge", "/metrics"))
    # The pass that opened the incident writes the Zentinel's first status only after the evidence bundle, so the
    # incident can be seen while the Zentinel has no status yet (kube.status is empty then).
    wait_for(
        lambda: kube.status("zen", "edge", namespace).get("summary", {}).get("errorRate") == "unavailable",
        timeout=30,
        what="summary",
    )
    assert operator.proc is not None and operator.proc.poll() is None
    assert "Traceback" not in operator.logs()


def test_invalid_config_is_a_config_error(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=50, error_share=0.0)
    wait_for(
        lambda: (s := kube.status("zen", "edge", namespace)).get("currentRevision") or s.get("summary"),
        timeout=30,
        what="status",
    )
    kube.apply(configs.configmap("edge-config", configs.BAD), namespace)
    inc = wait_for(lambda: incident(kube, namespace, "ConfigError"), timeout=60, what="ConfigError")
    assert inc["status"]["severity"] == "SEV3"  # pods still serve the old config
    assert "sytem" in " ".join(inc["status"]["findings"][0]["evidence"]) or "sytem" in inc["status"]["summary"]
    kube.apply(configs.configmap("edge-config"), namespace)
    name = inc["metadata"]["name"]
    wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt"),
        timeout=60,
        what="ConfigError resolved",
    )


def test_ready_condition_serves_kubectl_wait_and_the_printer_columns(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=200, error_share=0.0)
    for obj in ("zen/edge", "zipol/edge"):
        proc = kube.run("wait", "--for=condition=Ready", obj, "-n", namespace, "--timeout=60s", check=False)
        assert proc.returncode == 0, proc.stderr
    zen = kube.get("zen", "edge", namespace)
    assert zen is not None
    ready = condition(zen, "Ready")
    assert ready is not None and ready["reason"] == "Watched"
    assert ready["observedGeneration"] == zen["metadata"]["generation"] == zen["status"]["observedGeneration"]
    header, row = kube.run("get", "zen", "edge", "-n", namespace).stdout.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["READY"], columns["PAUSED"]) == ("True", "false")
    header, row = kube.run("get", "zipol", "edge", "-n", namespace).stdout.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["ACCEPTED"], columns["READY"]) == ("True", "True")
    # Every pod crash-looping: the proxy is in trouble (Healthy=False) but the Zentinel is still watched,
    # so Ready stays True and a GitOps tool does not hold back the fix.
    for pod in running_pods(kube, namespace, "app=edge", 3):
        crash.crash_loop(kube, pod, restarts=4)
    proc = kube.run("wait", "--for=condition=Healthy=false", "zen/edge", "-n", namespace, "--timeout=60s", check=False)
    assert proc.returncode == 0, proc.stderr
    zen = kube.get("zen", "edge", namespace)
    assert zen is not None
    assert (condition(zen, "Healthy") or {}).get("reason") == "ProcessCrash"
    still = condition(zen, "Ready")
    assert still is not None and still["status"] == "True"
    assert still["lastTransitionTime"] == ready["lastTransitionTime"]
