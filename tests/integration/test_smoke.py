"""The chain every other test stands on: a real control plane, CRDs, the operator, kwok pods."""

from __future__ import annotations

import ipaddress
import json

from support import configs
from support.kube import Kube, deployment, running_pods, wait_for
from zentinel_devcluster.cluster import Cluster


def test_server_is_the_built_kubernetes(cluster: Cluster, kube: Kube) -> None:
    version = json.loads(kube.run("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"


def test_rbac_is_enforced_for_a_non_admin_identity(cluster: Cluster, kube: Kube) -> None:
    dev = cluster.developer_kubeconfig
    denied = kube.run("auth", "can-i", "create", "pods", "-n", "default", kubeconfig=dev, check=False)
    assert denied.stdout.strip() == "no"
    assert kube.run("auth", "can-i", "create", "pods", "-n", "default").stdout.strip() == "yes"
    forbidden = kube.run("get", "pods", "-n", "default", kubeconfig=dev, check=False)
    assert forbidden.returncode != 0 and "forbidden" in forbidden.stderr.lower()


def test_deployment_pods_run_on_kwok_with_loopback_ips(kube: Kube, namespace: str) -> None:
    kube.apply(deployment("web", replicas=3), namespace)
    pods = running_pods(kube, namespace, "app=web", 3)
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 3
    assert all(ipaddress.ip_address(ip).is_loopback for ip in ips)
    assert {p["spec"]["nodeName"] for p in pods} == {"kwok-node-0"}


def test_operator_sees_a_zentinel_and_writes_its_status(kube: Kube, namespace: str, operator: object) -> None:
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    running_pods(kube, namespace, "app=edge", 3)
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "Zentinel",
            "metadata": {"name": "edge"},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        },
        namespace,
    )

    def status() -> dict[str, object] | None:
        obj = kube.get("zen", "edge", namespace)
        st = (obj or {}).get("status") or {}
        return st if st.get("summary", {}).get("pods") == "3/3" else None

    st = wait_for(status, timeout=60, what="Zentinel status with 3/3 pods")
    assert st["observedGeneration"] == 1
    assert "edge" in kube.run("get", "zen", "-n", namespace).stdout
