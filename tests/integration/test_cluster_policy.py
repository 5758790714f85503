"""Cluster policies on a real API server with the operator as a process: a ZentinelClusterIncidentPolicy
governs a Zentinel in a namespace without policy and pages a receiver whose Secret is in the operator's
namespace; a namespaced policy that selects the Zentinel shadows it (``status.policy``), and deleting
that gives governance back; a bad cluster policy is refused at ``kubectl apply``, naming the field."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from support import configs, crash
from support.kube import Kube, condition, deployment, open_incident, running_pods, wait_for
from support.operator import OperatorProcess
from support.receivers import Receivers

pytestmark = pytest.mark.integration

API = "zentinel.io/v1alpha1"


@pytest.fixture
def operator_home(kube: Kube) -> Iterator[str]:
    """The operator's own namespace (``ZENTINEL_OPERATOR_POD_NAMESPACE``), not among those it watches."""
    name = f"zentinel-home-{secrets.token_hex(3)}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator_env(operator_home: str) -> dict[str, str]:
    return {"ZENTINEL_OPERATOR_POD_NAMESPACE": operator_home}


@pytest.fixture
def cluster_policy_name(kube: Kube) -> Iterator[str]:
    """A unique name; the cluster-scoped object outlives namespaces, so it goes at teardown."""
    name = f"everyone-{secrets.token_hex(3)}"
    yield name
    kube.run("delete", "zcip", name, "--wait=false", "--ignore-not-found", check=False)
    if kube.get("zcip", name) is not None:  # the operator (and its finalizer's owner) may be gone already
        kube.run("patch", "zcip", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)


def cluster_policy(name: str, receivers: list[dict[str, Any]], primary: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ZentinelClusterIncidentPolicy",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"tier": "edge"}},
            "receivers": receivers,
            "escalation": {"sev3": {"primary": primary}},
            "lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"},
        },
    }


def governing(kube: Kube, namespace: str) -> dict[str, Any]:
    zen = kube.get("zen", "edge", namespace) or {}
    result: dict[str, Any] = (zen.get("status") or {}).get("policy") or {}
    return result


def test_a_cluster_policy_governs_pages_with_the_operators_secret_and_is_shadowed_by_a_namespaced_one(
    kube: Kube,
    namespace: str,
    operator_home: str,
    cluster_policy_name: str,
    operator: OperatorProcess,
    receivers: Receivers,
) -> None:
    name = cluster_policy_name
    url = receivers.url("/cluster-oncall")
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "oncall-hook"},
            "type": "Opaque",
            "data": {"url": base64.b64encode(url.encode()).decode()},
        },
        operator_home,
    )
    hook = {"name": "oncall", "type": "Webhook", "secretRef": {"name": "oncall-hook", "key": "url"}}
    kube.apply(cluster_policy(name, [hook], ["oncall"]))
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    pods = running_pods(kube, namespace, "app=edge", 3)
    kube.apply(
        {
            "apiVersion": API,
            "kind": "Zentinel",
            "metadata": {"name": "edge", "labels": {"tier": "edge"}},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        },
        namespace,
    )
    assert kube.list("zipol", namespace) == []  # no namespaced policy, no Secret in the Zentinel's namespace
    assert kube.get("secret", "oncall-hook", namespace) is None

    # Governed by the cluster policy: status.policy, the wide column, the policy's own status.
    wait_for(
        lambda: (
            governing(kube, namespace)
            == {
                "kind": "ZentinelClusterIncidentPolicy",
                "name": name,
                "namespace": "",
                "reason": "Selected",
                "message": governing(kube, namespace).get("message"),
            }
        ),
        timeout=60,
        what="status.policy naming the cluster policy",
    )
    assert "no ZentinelIncidentPolicy in the namespace does" in governing(kube, namespace)["message"]
    wide = kube.run("get", "zen", "edge", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["POLICY", "AGE"]
    assert wide[1][wide[0].index("POLICY") :].split()[0] == name  # by position: other cells hold spaces

    def cluster_selected() -> list[str]:
        st = (kube.get("zcip", name) or {}).get("status") or {}
        return (
            list(st.get("selected") or [])
            if (c := condition({"status": st}, "Accepted")) and c["status"] == "True"
            else []
        )

    wait_for(lambda: f"{namespace}/edge" in cluster_selected(), timeout=60, what="the cluster policy's status")
    listed = kube.run("get", "zcip", name).stdout.splitlines()
    assert listed[0].split()[:4] == ["NAME", "SELECTED", "ACCEPTED", "READY"]

    # Pages through the receiver whose Secret is in the operator's namespace.
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash incident")
    incident = str(inc["metadata"]["name"])
    (page, *_) = wait_for(lambda: receivers.got("/cluster-oncall", incident), timeout=60, what="the page")
    assert page.json["event"] == "trigger"
    assert url not in operator.logs()

    # A namespaced policy that selects the Zentinel shadows the cluster policy.
    local = {
        "apiVersion": API,
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "local"},
        "spec": {"selector": {"matchLabels": {"tier": "edge"}}, "priority": -5},
    }
    kube.apply(local, namespace)
    shadowed = wait_for(
        lambda: (p := governing(kube, namespace)).get("reason") == "ShadowsClusterPolicy" and p,
        timeout=60,
        what="status.policy: the namespaced policy shadows the cluster policy",
    )
    assert (shadowed["kind"], shadowed["name"], shadowed["namespace"]) == ("ZentinelIncidentPolicy", "local", namespace)
    assert f"shadows ZentinelClusterIncidentPolicy {name}" in shadowed["message"]
    wait_for(lambda: f"{namespace}/edge" not in cluster_selected(), timeout=60, what="the cluster policy gives it up")
    wait_for(
        lambda: ((kube.get("zipol", "local", namespace) or {}).get("status") or {}).get("selected") == ["edge"],
        timeout=60,
        what="the namespaced policy's status",
    )

    # Deleting it gives governance back to the cluster policy.
    kube.run("delete", "zipol", "local", "-n", namespace, "--timeout=60s")
    back = wait_for(
        lambda: (p := governing(kube, namespace)).get("kind") == "ZentinelClusterIncidentPolicy" and p,
        timeout=60,
        what="status.policy back to the cluster policy",
    )
    assert (back["name"], back["namespace"], back["reason"]) == (name, "", "Selected")
    wait_for(lambda: f"{namespace}/edge" in cluster_selected(), timeout=60, what="the cluster policy governs again")
    kube.run("delete", "zcip", name, "--timeout=60s")  # while the operator runs: its finalizer goes


def test_a_bad_cluster_policy_is_refused_at_apply_naming_the_field(kube: Kube, cluster_policy_name: str) -> None:
    bad = cluster_policy(cluster_policy_name, [{"name": "oncall", "type": "Slack"}], ["oncall", "ghost"])
    proc = kube.run("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert proc.returncode != 0
    assert f'The ZentinelClusterIncidentPolicy "{cluster_policy_name}" is invalid' in proc.stderr
    assert "spec.escalation.sev3.primary" in proc.stderr and "receiver 'ghost' is not defined" in proc.stderr
    assert "spec.receivers[0].secretRef" in proc.stderr and "a Slack receiver needs a Secret key" in proc.stderr
    assert kube.get("zcip", cluster_policy_name) is None
