"""Two operator replicas, one active (a Lease): the active SIGKILLed at each stage of a remediation.

The active is held at a named stage (``ZENTINEL_OPERATOR_TEST_HOLD_AT``, see ``checkpoints``) and killed
there; the standby takes the Lease and finishes the remediation. Each test checks the remediation
record (one rollback, started once, one rollout of the Deployment), the incident, and what a local
webhook receiver got (each notification exactly once). The takeover time, from the SIGKILL to the
standby's first completed pass, is printed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import configs
from support.kube import Kube, wait_for
from support.operator import OperatorProcess, print_logs_if_failed
from support.receivers import Receivers
from zentinel_devcluster.cluster import Cluster

from .test_remediation import (
    BAD_BUT_PARSES,
    Keeper,
    crash_all_on_bad_config,
    incident,
    keepers,  # noqa: F401 - the fixture
    policy,
    proven_good,
    start_edge,
    succeeded,
)

pytestmark = pytest.mark.integration

LEASE = "zentinel-incident-operator"
PASSED = "Timer 'zentinel_pass' succeeded"


class Replicas:
    """Operator processes against one namespace, each with its own log directory."""

    def __init__(self, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
        self.cluster, self.namespace, self.tmp_path = cluster, namespace, tmp_path
        self.procs: list[OperatorProcess] = []

    def start(self, env: dict[str, str] | None = None) -> OperatorProcess:
        log_dir = self.tmp_path / f"replica-{len(self.procs)}"
        log_dir.mkdir()
        op = OperatorProcess(self.cluster.kubeconfig, self.namespace, log_dir, env or {})
        self.procs.append(op)
        op.start()
        return op

    def stop(self) -> None:
        for op in self.procs:
            op.stop()


@pytest.fixture
def replicas(
    cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Replicas]:
    r = Replicas(cluster, namespace, tmp_path)
    try:
        yield r
    finally:
        r.stop()
        print_logs_if_failed(request, {f"replica {i}": op for i, op in enumerate(r.procs)}, tail=5000)


def holder(kube: Kube, namespace: str) -> str | None:
    lease = kube.get("lease", LEASE, namespace) or {}
    return (lease.get("spec") or {}).get("holderIdentity")


def identity_of(op: OperatorProcess) -> str:
    m = re.search(r"acquired lease \S+ as (\S+)", op.current_log())
    assert m, "the replica never logged its Lease"
    return m.group(1)


def active_and_standby(
    replicas: Replicas, kube: Kube, namespace: str, env: dict[str, str] | None = None
) -> tuple[OperatorProcess, OperatorProcess]:
    active = replicas.start(env)
    wait_for(lambda: "active: acquired lease" in active.current_log(), timeout=30, what="the first replica active")
    standby = replicas.start()
    wait_for(lambda: "standby: waiting for lease" in standby.current_log(), timeout=30, what="the second one standby")
    assert holder(kube, namespace) == identity_of(active)
    return active, standby


def edge_with_receiver(kube: Kube, namespace: str, dataplanes: list[Any], receivers: Receivers) -> Any:
    dp = start_edge(kube, namespace, dataplanes, actions={"configRollback": {"mode": "Automatic"}})
    pol = policy(actions={"configRollback": {"mode": "Automatic"}})
    pol["spec"]["receivers"] = [
        {"name": "oncall", "type": "Webhook", "url": receivers.url("/oncall")},
        {"name": "lead", "type": "Webhook", "url": receivers.url("/lead")},
    ]
    kube.apply(pol, namespace)
    return dp


def break_config(kube: Kube, namespace: str, dp: Any, keepers: list[Keeper]) -> int:  # noqa: F811
    """Apply a bad config the pods crash on; return the Deployment's generation before the rollback."""
    proven_good(kube, namespace)
    generation = int(kube.get("deployment", "edge", namespace)["metadata"]["generation"])  # type: ignore[index]
    kube.apply(configs.configmap("edge-config", BAD_BUT_PARSES), namespace)
    keepers.append(Keeper(dp, crash_all_on_bad_config(kube, namespace, configs.GOOD)))
    return generation


def events(receivers: Receivers, path: str, name: str) -> list[str]:
    return [str(json.loads(r.raw)["event"]) for r in receivers.got(path, name)]


def assert_done_once(kube: Kube, namespace: str, generation: int, receivers: Receivers) -> dict[str, Any]:
    """One rollback, started once, one rollout; the incident resolved; every notification sent once."""
    done = wait_for(
        lambda: succeeded(kube, namespace, "ProcessCrash", "configRollback"), timeout=120, what="rollback verified"
    )
    rollbacks = [r for r in done["status"]["remediations"] if r["action"] == "configRollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["state"] == "Succeeded", rollbacks
    starts = [t for t in done["status"]["timeline"] if t["message"].startswith("Starting configRollback")]
    assert len(starts) == 1, starts
    ledger = kube.status("zen", "edge", namespace).get("remediations") or []
    assert [e["action"] for e in ledger] == ["configRollback"], ledger
    assert kube.get("deployment", "edge", namespace)["metadata"]["generation"] == generation + 1  # type: ignore[index]
    name = done["metadata"]["name"]
    resolved = wait_for(
        lambda: (i := incident(kube, namespace, "ProcessCrash")) and i["status"].get("resolvedAt") and i,
        timeout=60,
        what="the incident resolved",
    )
    assert resolved["metadata"]["name"] == name  # the same incident: none lost, none opened twice
    wait_for(lambda: "resolve" in events(receivers, "/oncall", name), timeout=60, what="the resolve notification")
    time.sleep(3)  # more passes of the replica now active: nothing may be sent again
    now = incident(kube, namespace, "ProcessCrash") or {}
    st = now.get("status") or {}
    # Every page the status calls for, once: the detection's trigger, a trigger again for each severity raise
    # (the crash can be seen on some of the pods first, then on all of them: a new page, by design), the resolve.
    raised = [t["message"] for t in st.get("timeline") or [] if t["type"] in ("SeverityRaised", "Reopened")]
    assert events(receivers, "/oncall", name) == ["trigger"] * (1 + len(raised)) + ["resolve"], (raised, st)
    got = [str(json.loads(r.raw)["key"]) for r in receivers.got("/oncall", name)]
    assert len(got) == len(set(got)), got  # no delivery sent twice (each carries its idempotency key)
    records = st.get("deliveries") or []
    delivered = {d["key"] for d in records if d["receiver"] == "oncall" and d["state"] == "Delivered"}
    assert delivered == set(got), (delivered, got)  # none missing from the record, none sent unrecorded
    assert events(receivers, "/lead", name) == []  # the rollback helped: the secondary is never paged
    assert all(d["state"] == "Delivered" for d in records), records
    return done


class Edge:
    """One test's world: the cluster, the operator replicas, the Zentinel "edge" and the receivers."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        replicas: Replicas,
        dataplanes: list[Any],
        kept: list[Keeper],
        got: Receivers,
    ) -> None:
        self.kube, self.namespace, self.replicas = kube, namespace, replicas
        self.dataplanes, self.keepers, self.receivers = dataplanes, kept, got

    def remediation_under_way(
        self, active_env: dict[str, str] | None = None
    ) -> tuple[OperatorProcess, OperatorProcess, int]:
        """Two replicas, then a bad config the pods crash on; returns them and the generation before the rollback."""
        active, standby = active_and_standby(self.replicas, self.kube, self.namespace, active_env)
        dp = edge_with_receiver(self.kube, self.namespace, self.dataplanes, self.receivers)
        return active, standby, break_config(self.kube, self.namespace, dp, self.keepers)

    def done_once(self, generation: int) -> dict[str, Any]:
        return assert_done_once(self.kube, self.namespace, generation, self.receivers)


@pytest.fixture
def edge(
    kube: Kube,
    namespace: str,
    replicas: Replicas,
    dataplanes: list[Any],
    keepers: list[Keeper],  # noqa: F811
    receivers: Receivers,
) -> Edge:
    return Edge(kube, namespace, replicas, dataplanes, keepers, receivers)


@pytest.mark.parametrize("stage", ["decided", "recorded", "acted", "verifying"])
def test_the_standby_finishes_a_remediation_the_active_was_killed_in(edge: Edge, stage: str) -> None:
    active, standby, generation = edge.remediation_under_way({"ZENTINEL_OPERATOR_TEST_HOLD_AT": stage})
    wait_for(lambda: f"holding at stage {stage}" in active.current_log(), timeout=120, what=f"the active at {stage}")
    assert PASSED not in standby.current_log()  # alive, but it never ran a pass while the active was
    killed = time.monotonic()
    active.kill()
    wait_for(lambda: PASSED in standby.current_log(), timeout=60, interval=0.1, what="the standby's first pass")
    takeover = time.monotonic() - killed
    print(f"\n[ha] killed at stage {stage}: standby's first pass {takeover:.1f}s after the SIGKILL (lease 6 s)")
    assert holder(edge.kube, edge.namespace) == identity_of(standby)
    done = edge.done_once(generation)
    if stage in ("recorded", "acted"):
        assert any(t["message"].startswith("Resumed after a restart") for t in done["status"]["timeline"])


def test_a_standby_does_not_act_while_the_active_is_alive(edge: Edge) -> None:
    active, standby, generation = edge.remediation_under_way()
    edge.done_once(generation)
    assert PASSED in active.current_log()
    log = standby.current_log()
    assert PASSED not in log and "Starting configRollback" not in log
    # Still a standby, still up: it never took the Lease (nor lost one it took, which exits the process).
    assert "acquired lease" not in log
    assert standby.proc is not None and standby.proc.poll() is None, log[-3000:]
    assert holder(edge.kube, edge.namespace) == identity_of(active)


def test_a_graceful_stop_hands_the_lease_over_without_waiting_for_expiry(
    kube: Kube, namespace: str, replicas: Replicas
) -> None:
    # The active's Lease says 300 s: the standby gets it in time only if the active gives it up.
    active, standby = active_and_standby(replicas, kube, namespace, {"ZENTINEL_OPERATOR_LEASE_DURATION": "300"})
    active.stop()
    wait_for(lambda: "active: acquired lease" in standby.current_log(), timeout=30, what="the standby active")
    assert holder(kube, namespace) == identity_of(standby)
    lease = kube.get("lease", LEASE, namespace) or {}
    assert lease["spec"]["leaseTransitions"] == 1
