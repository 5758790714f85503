"""The process kubelet on the real control plane: pods on the process node are real local processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from support import realpods
from support.kube import Kube, wait_for
from zentinel_devcluster import kubelet, tools
from zentinel_devcluster.cluster import Cluster

pytestmark = pytest.mark.integration


def _pid(pod: dict[str, object]) -> int:
    status = pod["status"]
    assert isinstance(status, dict)
    return int(status["containerStatuses"][0]["containerID"].removeprefix("process://"))


def test_backend_pods_run_as_processes_on_their_pod_ips(kube: Kube, namespace: str) -> None:
    kube.apply(realpods.backend_deployment("api", replicas=2), namespace)
    pods = realpods.ready_pods(kube, namespace, "api", 2)
    assert {p["spec"]["nodeName"] for p in pods} == {kubelet.NODE_NAME}
    for pod in pods:
        status, body = realpods.get(f"http://{pod['status']['podIP']}:{realpods.BACKEND_PORT}/hello")
        assert status == 200 and pod["metadata"]["name"].encode() in body
        os.kill(_pid(pod), 0)  # a real process
    # kubectl logs goes through the API server to the kubelet's log endpoint.
    name = pods[0]["metadata"]["name"]
    logs = kube.run("logs", name, "-n", namespace).stdout
    assert f"backend {name} listening on {pods[0]['status']['podIP']}:{realpods.BACKEND_PORT}" in logs


def test_a_mode_annotation_changes_the_answers(kube: Kube, namespace: str) -> None:
    kube.apply(realpods.backend_deployment("api", replicas=1), namespace)
    (pod,) = realpods.ready_pods(kube, namespace, "api", 1)
    url = f"http://{pod['status']['podIP']}:{realpods.BACKEND_PORT}/x"
    realpods.set_backend_mode(kube, namespace, pod["metadata"]["name"], "error")
    wait_for(lambda: realpods.get(url)[0] == 500, timeout=10, what="500 answers")
    realpods.set_backend_mode(kube, namespace, pod["metadata"]["name"], "refuse")

    def refused() -> bool:
        try:
            realpods.get(url, timeout=1)
        except ConnectionRefusedError:
            return True
        except OSError as e:
            return isinstance(e.__cause__ or e.args[0] if e.args else None, ConnectionRefusedError)
        return False

    wait_for(refused, timeout=10, what="connection refused")
    # The readiness probe (tcpSocket) sees it: the pod goes not Ready.
    wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "False"
            for c in (kube.get("pod", pod["metadata"]["name"], namespace) or {}).get("status", {}).get("conditions", [])
        ),
        timeout=15,
        what="pod not Ready",
    )


def test_an_exit_is_a_restart_with_the_log_tail_and_a_back_off(kube: Kube, namespace: str) -> None:
    kube.apply(realpods.backend_deployment("api", replicas=1), namespace)
    (pod,) = realpods.ready_pods(kube, namespace, "api", 1)
    name = pod["metadata"]["name"]
    first = _pid(pod)
    os.kill(first, signal.SIGKILL)

    def restarted() -> dict[str, object] | None:
        cs = ((kube.get("pod", name, namespace) or {}).get("status") or {}).get("containerStatuses") or [{}]
        return cs[0] if cs[0].get("restartCount", 0) >= 1 and "running" in cs[0].get("state", {}) else None

    cs = wait_for(restarted, timeout=30, what="the container restarted")
    terminated = cs["lastState"]["terminated"]  # type: ignore[index]
    assert terminated["exitCode"] == 137 and terminated["reason"] == "Error"
    assert f"backend {name} listening on" in terminated["message"]
    assert _pid(kube.get("pod", name, namespace) or {}) != first
    previous = kube.run("logs", name, "-n", namespace, "--previous").stdout
    assert f"backend {name} listening on" in previous


def test_deleting_a_pod_stops_its_process(kube: Kube, namespace: str) -> None:
    kube.apply(realpods.backend_deployment("api", replicas=1), namespace)
    (pod,) = realpods.ready_pods(kube, namespace, "api", 1)
    pid = _pid(pod)
    kube.run("delete", "pod", pod["metadata"]["name"], "-n", namespace)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
    (new,) = realpods.ready_pods(kube, namespace, "api", 1)  # the ReplicaSet's replacement runs
    assert new["metadata"]["name"] != pod["metadata"]["name"]


def test_zentinel_pods_run_the_real_binary_with_their_config(kube: Kube, namespace: str, cluster: Cluster) -> None:
    binary = tools.zentinel_binary()
    assert binary.exists(), f"the real zentinel is not built ({binary}): run `scripts/cluster build-zentinel`"
    kube.apply(realpods.backend_deployment("api", replicas=1), namespace)
    backends = realpods.pod_ips(realpods.ready_pods(kube, namespace, "api", 1))
    targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in backends]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "edge-config"},
            "data": {"zentinel.kdl": realpods.config(targets)},
        },
        namespace,
    )
    kube.apply(realpods.zentinel_deployment("edge", replicas=1), namespace)
    (pod,) = realpods.ready_pods(kube, namespace, "edge", 1)
    ip = pod["status"]["podIP"]
    status, body = realpods.get(f"http://{ip}:{realpods.HTTP_PORT}/anything")
    assert status == 200 and b'"backend"' in body  # proxied to the backend pod
    live = realpods.live_config(ip)
    assert [t["address"] for u in live["config"]["upstreams"] for t in u["targets"]] == targets
    assert any(listener["address"] == f"{ip}:{realpods.HTTP_PORT}" for listener in live["config"]["listeners"])


def test_a_config_with_targets_off_the_machine_is_never_given_to_a_real_zentinel(kube: Kube, namespace: str) -> None:
    # Traffic stays on this machine: the process kubelet does not write a ConfigMap volume whose
    # Zentinel config names a 10.x, 192.168.x or public target, so no real Zentinel starts on it.
    text = realpods.config(["127.0.0.1:8000", "10.0.1.10:8000"])
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "edge-config"}}
    kube.apply({**configmap, "data": {"zentinel.kdl": text}}, namespace)
    kube.apply(realpods.zentinel_deployment("edge", replicas=1), namespace)

    def held() -> dict[str, object] | None:
        for pod in kube.list("pods", namespace, "app=edge"):
            for c in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (c.get("state") or {}).get("waiting") or {}
                if "off this machine" in waiting.get("message", ""):
                    return waiting
        return None

    waiting = wait_for(held, timeout=60, what="the pod held in ContainerCreating with the reason")
    assert waiting is not None and waiting["reason"] == "ContainerCreating"
    assert "api/10.0.1.10:8000" in str(waiting["message"])
    time.sleep(3)  # several volume syncs at the tests' 1 s: still nothing started
    (pod,) = kube.list("pods", namespace, "app=edge")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert not pod["status"]["containerStatuses"][0]["ready"]
    assert pod["status"]["containerStatuses"][0]["containerID"] == "process://0"  # no process was ever spawned
