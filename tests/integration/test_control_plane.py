"""A control plane that misbehaves, on the real one (issue 15, item 4).

The session's own kube-apiserver is restarted while the operator works; its etcd is paused for
longer than one of the operator's watches lasts; and, through a fault proxy in front of the real API
server (``support.faultproxy``), writes are answered 429, 500 and 409 (some after the write took
effect), watches are cut short and answered ``410 Gone``. Each test then lets the incident run its course
(detected, paged, recovered, resolved) and checks what a lost or repeated step would break: one
incident, one trigger and one resolve at the receiver, both recorded as Delivered, and the operator
still alive and passing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.test_notifications import deliveries, events_of, policy, start_edge
from support import crash
from support.faultproxy import FaultProxy
from support.kube import Kube, condition, open_incident, wait_for
from support.operator import OperatorProcess, print_logs_if_failed
from support.receivers import Receivers
from zentinel_devcluster.cluster import Cluster

pytestmark = pytest.mark.integration

WATCH_TIMEOUT = 5  # seconds: the API server ends each of the operator's watches this often
# One replica, without a Lease: with leader election the active exits once it cannot renew for the
# renew deadline (4 s in tests), so an API outage longer than that ends in a restart of the process,
# which the restart and takeover tests cover. Here the same process must ride the fault out.
ENV = {"ZENTINEL_OPERATOR_WATCH_TIMEOUT": str(WATCH_TIMEOUT), "ZENTINEL_OPERATOR_LEADER_ELECTION": "false"}


@pytest.fixture
def operator_env() -> dict[str, str]:
    return dict(ENV)


def crash_incidents(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return [i for i in kube.list("zentinelincidents", namespace) if i["spec"]["category"] == "ProcessCrash"]


def crash_one_pod_after_a_pass(kube: Kube, namespace: str, receivers: Receivers) -> dict[str, Any]:
    pol = policy([{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}], ["hook"])
    pods = start_edge(kube, namespace, pol)
    wait_for(lambda: kube.status("zen", "edge", namespace).get("summary"), timeout=60, what="a first pass")
    crash.crash_loop(kube, pods[0], restarts=4)
    return pods[0]


def runs_its_course_once(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, pod: dict[str, Any]
) -> None:
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=120, what="ProcessCrash incident")
    name = inc["metadata"]["name"]
    wait_for(
        lambda: events_of(receivers.got("/hook", name), "event") == ["trigger"], timeout=60, what="the trigger"
    )  # fmt: skip
    crash.recover(kube, kube.get("pod", pod["metadata"]["name"], namespace) or pod)
    wait_for(
        lambda: (kube.get("zinc", name, namespace) or {}).get("status", {}).get("resolvedAt"),
        timeout=60,
        what="resolved after the pod recovered",
    )
    wait_for(
        lambda: events_of(receivers.got("/hook", name), "event") == ["trigger", "resolve"],
        timeout=60,
        what="the resolve",
    )
    time.sleep(4)  # several more passes (1 s interval): nothing may be sent again
    assert events_of(receivers.got("/hook", name), "event") == ["trigger", "resolve"]
    assert [i["metadata"]["name"] for i in crash_incidents(kube, namespace)] == [name]
    assert sorted((r["event"], r["state"]) for r in deliveries(kube, namespace, name)) == [
        ("resolve", "Delivered"),
        ("trigger", "Delivered"),
    ]
    detected = [t for t in (kube.get("zinc", name, namespace) or {})["status"]["timeline"] if t["type"] == "Detected"]
    assert len(detected) == 1
    assert operator.proc is not None and operator.proc.poll() is None, "the operator exited"
    # Still passing: the pass counter goes on after the fault.
    before = passes(operator)
    wait_for(lambda: passes(operator) > before + 2, timeout=30, what="more passes after the fault")


def passes(operator: OperatorProcess) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith("zentinel_operator_pass_seconds_count")
    )


def test_an_apiserver_restarted_mid_pass_loses_and_repeats_nothing(
    cluster: Cluster, kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pod = crash_one_pod_after_a_pass(kube, namespace, receivers)
    # Passes run every second: the restart lands in the middle of the one that sees the crash.
    cluster.restart_apiserver(down_for=3)
    runs_its_course_once(kube, namespace, operator, receivers, pod)


def test_etcd_paused_longer_than_a_watch_loses_and_repeats_nothing(
    cluster: Cluster, kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pod = crash_one_pod_after_a_pass(kube, namespace, receivers)
    time.sleep(0.5)  # the crash is stored; the operator's reads and writes about it hit the paused store
    with cluster.paused("etcd"):
        time.sleep(WATCH_TIMEOUT * 3)
    runs_its_course_once(kube, namespace, operator, receivers, pod)


# ------------------------------------------------------------------ through the fault proxy
@pytest.fixture
def proxied_operator(
    proxy: FaultProxy, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    """The operator talking to the API server only through the fault proxy."""
    op = OperatorProcess(proxy.write_kubeconfig(tmp_path / "kubeconfig-via-proxy"), namespace, tmp_path, dict(ENV))
    op.start()
    try:
        yield op
    finally:
        op.stop()
        if print_logs_if_failed(request, {"operator": op}):
            print("--- refused by the API server ---\n" + "\n".join(proxy.refusals[-30:]))


INCIDENTS = r"/zentinelincidents$"
INCIDENT_STATUS = r"/zentinelincidents/[^/]+/status$"


def test_writes_answered_429_500_and_409_lose_and_repeat_nothing(
    kube: Kube, namespace: str, proxy: FaultProxy, proxied_operator: OperatorProcess, receivers: Receivers
) -> None:
    proxy.fail("POST", INCIDENTS, [429, 500])  # the incident's creation refused twice
    proxy.fail("POST", INCIDENTS, [500], after=True)  # then created, but the operator is told 500
    proxy.fail("WRITE", INCIDENT_STATUS, [409, 429, 500])  # its first status writes refused
    proxy.fail("WRITE", INCIDENT_STATUS, [500], after=True)  # one status write done, answered 500
    proxy.fail("WRITE", r"/zentinels/edge/status$", [500, 409])
    pod = crash_one_pod_after_a_pass(kube, namespace, receivers)
    runs_its_course_once(kube, namespace, proxied_operator, receivers, pod)
    assert proxy.armed() == 0, f"some faults were never hit: {proxy.injected}"
    assert proxy.injected["POST 500 after a 201"] == 1, proxy.injected


def test_watches_cut_short_and_answered_410_gone_lose_and_repeat_nothing(
    kube: Kube, namespace: str, proxy: FaultProxy, proxied_operator: OperatorProcess, receivers: Receivers
) -> None:
    proxy.cut_watches_after(2)
    proxy.gone(r"/zentinelincidentpolicies$", times=2)
    proxy.gone(r"/zentinelincidents$", times=2)
    proxy.gone(r"/zentinels$", times=2)
    pod = crash_one_pod_after_a_pass(kube, namespace, receivers)
    runs_its_course_once(kube, namespace, proxied_operator, receivers, pod)
    assert proxy.injected["watch cut"] >= 3, proxy.injected
    assert proxy.armed() == 0, f"some watches were never answered 410: {proxy.injected}"


def test_a_pass_that_cannot_read_the_workload_turns_ready_false_until_it_can(
    kube: Kube, namespace: str, proxy: FaultProxy, proxied_operator: OperatorProcess, receivers: Receivers
) -> None:
    """Ready is about the operator's watch, not the proxy: it turns False when a stage of the pass fails."""
    pol = policy([{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}], ["hook"])
    start_edge(kube, namespace, pol)

    def wait(wanted: str) -> dict[str, Any]:
        proc = kube.run("wait", f"--for=condition={wanted}", "zen/edge", "-n", namespace, "--timeout=60s", check=False)
        assert proc.returncode == 0, proc.stderr
        zen = kube.get("zen", "edge", namespace)
        assert zen is not None
        return zen

    def ready_of(zen: dict[str, Any]) -> dict[str, Any]:
        found = condition(zen, "Ready")
        assert found is not None, zen["status"]
        return found

    ready = ready_of(wait("Ready"))
    proxy.fail("GET", r"/apis/apps/v1/namespaces/[^/]+/deployments/edge$", [403] * 100_000)  # as if RBAC said no
    zen = wait("Ready=false")
    unready = ready_of(zen)
    assert unready["reason"] == "GatherFailed", unready
    assert unready["message"].startswith("gather: workload: ") and "403" in unready["message"], unready
    assert unready["observedGeneration"] == zen["metadata"]["generation"]
    assert unready["lastTransitionTime"] >= ready["lastTransitionTime"]
    proxy.disarm()
    again = ready_of(wait("Ready"))
    assert again["reason"] == "Watched" and again["lastTransitionTime"] >= unready["lastTransitionTime"]
