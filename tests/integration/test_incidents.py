"""The incident lifecycle against the real API server, with the operator as a real process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from support import configs, crash
from support.dataplane import Dataplane
from support.kube import Kube, condition, deployment, open_incident, running_pods, wait_for
from support.operator import OperatorProcess
from zentinel_operator import k8s
from zentinel_operator.api import KubeApi
from zentinel_operator.core.snapshot import Finding
from zentinel_operator.handlers.incidents import record
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.policy import ZentinelIncidentPolicySpec

pytestmark = pytest.mark.integration


def zentinel(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": name, "labels": labels or {"tier": "edge"}},
        "spec": {"workload": {"name": name}, "config": {"configMapName": f"{name}-config"}},
    }


def policy(name: str = "edge", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "receivers": [
            {"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"},
            {"name": "lead", "type": "Webhook", "url": "http://127.0.0.1:9/lead"},
        ],
        "escalation": {
            "sev1": {"primary": ["oncall"], "secondary": ["lead"], "managementAfter": "30m"},
            "sev2": {"primary": ["oncall"], "secondary": ["lead"]},
        },
        "lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"},
    }
    base.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": name},
        "spec": base,
    }


def incidents(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return kube.list("zentinelincidents", namespace)


def setup_edge(
    kube: Kube, namespace: str, dataplanes: list[Any], replicas: int = 3, **policy_spec: Any
) -> list[dict[str, Any]]:
    kube.apply(policy(**policy_spec), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=replicas), namespace)
    pods = running_pods(kube, namespace, "app=edge", replicas)
    dp = Dataplane(kube, namespace, "app=edge")  # admin endpoints answer on the pod IPs
    dataplanes.append(dp)
    dp.sync()
    kube.apply(zentinel("edge"), namespace)
    return pods


def test_crash_loop_opens_one_sev1_incident_shown_by_kubectl(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(kube, namespace, dataplanes)
    for p in pods:
        crash.crash_loop(kube, p, restarts=5)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash incident")
    assert inc["status"]["severity"] == "SEV1"
    assert inc["metadata"]["name"].startswith("inc-")
    out = kube.run("get", "zentinelincidents", "-n", namespace).stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "SEVERITY", "CATEGORY", "ZENTINEL", "STATE", "ACKED-BY", "AGE"]
    row = next(line for line in out.splitlines() if inc["metadata"]["name"] in line).split()
    assert row[1:5] == ["SEV1", "ProcessCrash", "edge", "Detected"]
    wide = kube.run("get", "zinc", "-n", namespace, "-o", "wide").stdout.splitlines()[0]
    assert "COUNT" in wide and "SUMMARY" in wide
    zen_out = kube.run("get", "zentinel-all", "-n", namespace).stdout
    assert "zentinel.zentinel.io/edge" in zen_out and "zentinelincident.zentinel.io/inc-" in zen_out
    zen_row = kube.run("get", "zen", "edge", "-n", namespace).stdout.splitlines()
    assert zen_row[0].split() == ["NAME", "WORKLOAD", "READY", "HEALTH", "OPEN", "PODS", "PAUSED", "AGE"]
    # -o wide adds the signals, the config revision and the governing policy (status.policy).
    zen_wide = kube.run("get", "zen", "edge", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert zen_wide[0].split()[-7:] == ["ERRORS", "P99", "UPSTREAMS", "CERTS", "CONFIG", "POLICY", "AGE"]
    assert zen_wide[1][zen_wide[0].index("POLICY") :].split()[0] == "edge"
    governing = kube.status("zen", "edge", namespace)["policy"]
    assert (governing["kind"], governing["name"], governing["namespace"], governing["reason"]) == (
        "ZentinelIncidentPolicy",
        "edge",
        namespace,
        "Selected",
    )
    wait_for(
        lambda: "Down" in kube.run("get", "zen", "edge", "-n", namespace).stdout,
        timeout=30,
        what="Zentinel health Down",
    )
    # Only one incident for this fingerprint however many passes ran.
    wait_for(lambda: True, timeout=1)
    assert len([i for i in incidents(kube, namespace) if i["spec"]["category"] == "ProcessCrash"]) == 1


def test_recurrence_counts_on_the_same_incident_and_recovery_resolves(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(kube, namespace, dataplanes)
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="incident")
    assert inc["status"]["severity"] == "SEV3"  # one of three pods
    name = inc["metadata"]["name"]
    crash.recover(kube, pods[0])
    wait_for(
        lambda: (kube.get("zinc", name, namespace) or {}).get("status", {}).get("state") == "Monitoring",
        timeout=30,
        what="Monitoring",
    )
    crash.crash_loop(kube, pods[0], restarts=6)
    inc = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("count") == 2 and o,
        timeout=30,
        what="count 2",
    )
    assert inc["status"]["state"] == "Detected"
    assert [(i["spec"]["category"], i["status"]["count"]) for i in incidents(kube, namespace)] == [("ProcessCrash", 2)]
    crash.recover(kube, pods[0])
    done = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt") and o,
        timeout=60,
        what="resolution",
    )
    assert done["status"]["state"] == "Resolved"
    assert condition(done, "Resolved")["status"] == "True"  # type: ignore[index]


def test_acknowledge_by_kubectl_and_mtta_metric(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(kube, namespace, dataplanes)
    crash.crash_loop(kube, pods[1], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="incident")
    name = inc["metadata"]["name"]
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=alice")
    acked = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("acknowledgedBy") and o,
        timeout=30,
        what="acknowledgement",
    )
    cond = condition(acked, "Acknowledged")
    assert cond and cond["status"] == "True" and "alice" in cond["message"]
    assert acked["status"]["state"] == "Acknowledged"
    row = next(x for x in kube.run("get", "zinc", "-n", namespace).stdout.splitlines() if name in x)
    assert "alice" in row.split()
    # Metrics are observed just after the status write the test has seen: allow that moment.
    prefix = 'zentinel_operator_acknowledge_seconds_count{severity="SEV3"}'
    line = wait_for(
        lambda: next((x for x in operator.metrics().splitlines() if x.startswith(prefix)), None),
        timeout=10,
        what="the MTTA histogram",
    )
    assert float(line.split()[-1]) == 1.0


def test_unacknowledged_past_target_escalates(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(
        kube, namespace, dataplanes, responseTargets={"sev1": "3s", "sev2": "3s", "sev3": "3s", "sev4": "3s"}
    )
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="incident")
    name = inc["metadata"]["name"]
    esc = wait_for(
        lambda: (
            (o := kube.get("zinc", name, namespace))
            and (c := condition(o, "Escalated"))
            and c["status"] == "True"
            and o
        ),
        timeout=30,
        what="Escalated=True",
    )
    assert esc["status"]["escalationLevel"] == "secondary"
    assert condition(esc, "Escalated")["reason"] == "ResponseTargetMissed"  # type: ignore[index]
    wait_for(
        lambda: 'zentinel_operator_escalations_total{level="secondary",severity="SEV3"} 1.0' in operator.metrics(),
        timeout=10,
        what="the escalation counter",
    )


def test_restart_mid_lifecycle_loses_and_duplicates_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(kube, namespace, dataplanes)
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="incident")
    name = inc["metadata"]["name"]
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/acknowledged-by=bob")
    wait_for(
        lambda: (kube.get("zinc", name, namespace) or {}).get("status", {}).get("acknowledgedBy"),
        timeout=30,
        what="ack",
    )
    before = kube.get("zinc", name, namespace)
    operator.kill()
    operator.start()
    time.sleep(5)  # several passes (1 s interval) of the new process
    after = kube.get("zinc", name, namespace)
    assert after is not None and before is not None
    assert [i["metadata"]["name"] for i in incidents(kube, namespace)] == [name]
    for key in ("detectedAt", "acknowledgedAt", "acknowledgedBy", "count", "severity"):
        assert after["status"][key] == before["status"][key], key
    detected = [t for t in after["status"]["timeline"] if t["type"] == "Detected"]
    assert len(detected) == 1
    ack_cond_before = condition(before, "Acknowledged")
    ack_cond_after = condition(after, "Acknowledged")
    assert ack_cond_before and ack_cond_after
    assert ack_cond_after["lastTransitionTime"] == ack_cond_before["lastTransitionTime"]


def test_racing_creators_get_distinct_names(kube: Kube, namespace: str) -> None:
    """Two processes create incidents for the same day at once: create-by-name plus retry on 409."""
    script = textwrap.dedent(f"""
        import datetime as dt, json, sys
        from zentinel_operator.api import KubeApi
        from zentinel_operator.handlers.incidents import create_incident
        from zentinel_operator.models.common import Category
        now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
        names = [create_incident({namespace!r}, api=KubeApi(), zentinel="edge-" + sys.argv[1],
                                 category=Category.HIGH_ERROR_RATE, now=now) for _ in range(8)]
        print(json.dumps(names))
    """)
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for i in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results += json.loads(out)
    assert len(results) == 16 and len(set(results)) == 16
    assert all(r.startswith("inc-20261127-") for r in results)
    assert sorted(results) == [f"inc-20261127-{i:03d}" for i in range(1, 17)]


def test_manually_resolved_incident_that_flaps_stays_reopened(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    pods = setup_edge(kube, namespace, dataplanes)
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="incident")
    name = inc["metadata"]["name"]
    kube.run(
        "patch",
        "zinc",
        name,
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"resolvedBy": "dave", "resolutionNote": "restarted by hand"}}),
    )
    # The resolution by dave is taken; the pass after it may reopen at once (the pod still crash-loops), so
    # the lasting record of it is the timeline's, not the status of the moment.
    wait_for(
        lambda: (
            (o := kube.get("zinc", name, namespace))
            and any(
                t.get("type") == "Resolved" and "dave" in (t.get("message") or "")
                for t in o["status"].get("timeline") or []
            )
        ),
        timeout=30,
        what="manual resolution",
    )
    # The pod is still crash-looping: the signal is back within the reopen window.
    reopened = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("flapCount") == 1 and o,
        timeout=30,
        what="reopened",
    )
    assert reopened["spec"].get("resolvedBy") is None  # the old request was consumed
    time.sleep(3)
    still = kube.get("zinc", name, namespace)
    assert still is not None and not still["status"].get("resolvedAt") and still["status"]["state"] != "Resolved"


class OperatorStoppedError(Exception):
    """Stands for the operator dying at one API write."""


@pytest.mark.parametrize("dies_at", ["patch_custom", "patch_custom_status"])
def test_operator_stopping_in_a_reopen_neither_resolves_it_again_nor_reopens_twice(
    kube: Kube, namespace: str, in_process_api: None, monkeypatch: pytest.MonkeyPatch, dies_at: str
) -> None:
    """A reopen writes two things: the spec (the old manual resolution is consumed) and the status. Whichever write
    the operator dies at, the passes after it end with one reopened incident, flapped once, without the old request."""
    cat = Category.PROCESS_CRASH
    crashing = Finding(category=cat, severity=Severity.SEV3, summary="1 of 3 pods crash-looping")
    pol = ZentinelIncidentPolicySpec.model_validate({"lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"}})
    t0 = dt.datetime.now(dt.UTC)

    def one_pass(seconds: int) -> None:
        record(
            api=KubeApi(),
            namespace=namespace,
            zentinel="edge",
            zentinel_obj=None,
            policy=pol,
            findings=[crashing],
            observable={cat},
            now=t0 + dt.timedelta(seconds=seconds),
        )

    one_pass(0)
    (inc,) = incidents(kube, namespace)
    name = inc["metadata"]["name"]
    kube.run("patch", "zinc", name, "-n", namespace, "--type", "merge", "-p", '{"spec": {"resolvedBy": "dave"}}')
    one_pass(1)  # resolved by hand while the pod still crash-loops
    assert (kube.get("zinc", name, namespace) or {})["status"]["resolvedBy"] == "dave"

    def die(*args: Any, **kwargs: Any) -> Any:
        raise OperatorStoppedError(dies_at)

    with monkeypatch.context() as m:
        m.setattr(k8s, dies_at, die)
        with pytest.raises(OperatorStoppedError):
            one_pass(2)  # the pass that reopens it, stopped at one of its writes
    for s in (3, 4, 5):
        one_pass(s)
    (after,) = incidents(kube, namespace)
    st = after["status"]
    assert not st.get("resolvedAt") and st["state"] != "Resolved", st.get("conditions")
    assert st["flapCount"] == 1
    assert not after["spec"].get("resolvedBy")
