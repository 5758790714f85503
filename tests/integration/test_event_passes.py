"""Event passes: a change to a Zentinel's pods, ConfigMap or TLS Secret starts its pass at once.

The scan interval is 300 s here and the timer's first pass runs when the Zentinel appears, so the next tick
is 300 s away: each incident below must exist while the operator's own counter still shows that one timer
pass. That checks the mechanism (an event pass made the incident), not how fast it is.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import kubernetes
import pytest

from integration.test_triage import incident, start_edge
from support import configs, crash
from support.kube import Kube, condition, running_pods, wait_for
from support.operator import OperatorProcess
from zentinel_operator.core.certs import self_signed, tls_secret_data
from zentinel_operator.names import GROUP, INCIDENTS, VERSION

pytestmark = pytest.mark.integration

SCAN_INTERVAL = 300.0


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"ZENTINEL_OPERATOR_SCAN_INTERVAL": str(int(SCAN_INTERVAL)), "ZENTINEL_OPERATOR_EVENT_PASSES": "true"}


def passes(operator: OperatorProcess, trigger: str) -> int:
    found = re.search(rf'^zentinel_operator_passes_total\{{trigger="{trigger}"\}} (\S+)$', operator.metrics(), re.M)
    return int(float(found.group(1))) if found else 0


def first_pass_done(kube: Kube, namespace: str, operator: OperatorProcess) -> float:
    """Waits for the timer's first pass (Ready=True on the Zentinel); returns when it was seen (monotonic)."""
    wait_for(
        lambda: (c := condition(kube.get("zen", "edge", namespace), "Ready")) and c["status"] == "True",
        timeout=60,
        what="the first pass (Ready=True)",
    )
    wait_for(lambda: passes(operator, "timer") >= 1, timeout=30, what="the timer's first pass counted")
    assert passes(operator, "timer") == 1
    return time.monotonic()


def tls_secret(days: float) -> dict[str, Any]:
    cert = self_signed(
        sans=["edge.example.com"],
        common_name="edge.example.com",
        now=dt.datetime.now(dt.UTC),
        validity=dt.timedelta(days=days),
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "edge-tls"},
        "data": tls_secret_data(cert),
    }


def test_a_crash_written_to_a_pod_is_an_incident_before_the_next_tick(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=50, error_share=0.0)
    seen = first_pass_done(kube, namespace, operator)
    pods = running_pods(kube, namespace, "app=edge", 3)
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash")
    assert time.monotonic() - seen < SCAN_INTERVAL
    assert passes(operator, "timer") == 1  # no tick since the first pass: an event pass found the crash
    assert passes(operator, "event") >= 1
    assert inc["status"]["severity"] == "SEV3"  # one pod of three
    # The Zentinel's status follows in the same pass.
    wait_for(
        lambda: (c := condition(kube.get("zen", "edge", namespace), "Healthy")) and c["reason"] == "ProcessCrash",
        timeout=30,
        what="Healthy=False (ProcessCrash) on the Zentinel",
    )
    # Nothing changes any more: the passes' own writes (incident, status, evidence) start no further pass.
    settled = wait_for(lambda: _unchanged_over(operator, 2.0), timeout=60, what="event passes settled")
    time.sleep(3)
    assert passes(operator, "event") == settled
    assert passes(operator, "timer") == 1


def _unchanged_over(operator: OperatorProcess, seconds: float) -> int | None:
    before = passes(operator, "event")
    time.sleep(seconds)
    return before if passes(operator, "event") == before else None


def test_a_config_change_and_a_secret_change_are_passed_over_at_once(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    kube.apply(tls_secret(days=90), namespace)
    dp = start_edge(kube, namespace, dataplanes, tls=[{"name": "public", "secretName": "edge-tls"}])
    dp.traffic(rps=50, error_share=0.0)
    first_pass_done(kube, namespace, operator)

    kube.apply(configs.configmap("edge-config", configs.BAD), namespace)
    wait_for(lambda: incident(kube, namespace, "ConfigError"), timeout=60, what="ConfigError")
    assert passes(operator, "timer") == 1

    kube.apply(tls_secret(days=2), namespace)
    inc = wait_for(lambda: incident(kube, namespace, "CertificateExpiring"), timeout=60, what="CertificateExpiring")
    assert inc["status"]["severity"] == "SEV2"
    assert passes(operator, "timer") == 1

    # Repaired: seen at once as well.
    kube.apply(configs.configmap("edge-config"), namespace)
    wait_for(
        lambda: (c := condition(kube.get("zen", "edge", namespace), "ConfigValid")) and c["status"] == "True",
        timeout=60,
        what="ConfigValid=True again",
    )
    assert passes(operator, "timer") == 1


def test_a_crash_after_its_last_incident_was_deleted_is_a_new_incident(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    # A person deletes the incident of a crash that recovered; the pod crash-loops again: a new incident.
    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=50, error_share=0.0)
    first_pass_done(kube, namespace, operator)
    pod = running_pods(kube, namespace, "app=edge", 3)[0]
    crash.crash_loop(kube, pod, restarts=4)
    first = wait_for(lambda: incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash")
    crash.recover(kube, pod, restarts=4)
    kube.run("delete", "zinc", first["metadata"]["name"], "-n", namespace)
    wait_for(lambda: _unchanged_over(operator, 2.0), timeout=60, what="event passes settled")

    crash.crash_loop(kube, pod, restarts=8)
    again = wait_for(lambda: incident(kube, namespace, "ProcessCrash"), timeout=60, what="a new ProcessCrash")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert passes(operator, "timer") == 1  # found by an event pass


def test_an_incident_deleted_as_soon_as_its_pod_recovered_is_not_brought_back(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], in_process_api: None
) -> None:
    # The benchmark's pace: the pod recovers and the incident is deleted the moment it appears. The event pass the
    # recovery starts must not report the same restarts again (it did: growth counted from scan to scan, so every
    # event pass until the next scan saw them, and the incident came back under the same name). The crash after
    # that must be a new incident.
    custom = kubernetes.client.CustomObjectsApi()
    core = kubernetes.client.CoreV1Api()

    def crash_incidents() -> list[dict[str, Any]]:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, INCIDENTS)["items"]
        return [i for i in items if i["spec"]["category"] == "ProcessCrash"]

    dp = start_edge(kube, namespace, dataplanes)
    dp.traffic(rps=50, error_share=0.0)
    first_pass_done(kube, namespace, operator)
    pod = running_pods(kube, namespace, "app=edge", 3)[0]
    fast = crash.ClientKube(core)  # no kubectl start-up between the incident and the delete
    crash.crash_loop(fast, pod, restarts=4)
    (first,) = wait_for(crash_incidents, timeout=60, interval=0.02, what="ProcessCrash")
    crash.recover(fast, pod, restarts=4)
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, INCIDENTS, first["metadata"]["name"])
    wait_for(lambda: _unchanged_over(operator, 3.0), timeout=60, what="event passes settled")
    assert [i["metadata"]["name"] for i in crash_incidents()] == []  # the recovered crash opened nothing new

    crash.crash_loop(fast, pod, restarts=8)
    (again,) = wait_for(crash_incidents, timeout=60, what="a new ProcessCrash")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
