"""Remediation with guardrails against the real control plane: the runbook's first response, done safely."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support import configs, crash
from support.certs import leaf, tls_secret
from support.dataplane import Dataplane
from support.kube import Kube, condition, deployment, running_pods, wait_for
from support.operator import OperatorProcess
from zentinel_operator.core.zconfig import check_config, config_revision

pytestmark = pytest.mark.integration


def policy(resolve_after: str = "3s", **remediation: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "lifecycle": {"resolveAfter": resolve_after, "reopenWindow": "10m"},
        "receivers": [
            {"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"},
            {"name": "lead", "type": "Webhook", "url": "http://127.0.0.1:9/lead"},
        ],
        "escalation": {
            "sev1": {"primary": ["oncall"], "secondary": ["lead"], "managementAfter": "30m"},
            "sev2": {"primary": ["oncall"], "secondary": ["lead"]},
            "sev3": {"primary": ["oncall"], "secondary": ["lead"]},
        },
        "remediation": {
            "defaultMode": "Off",
            "cooldown": "0s",
            # Long enough that the test's crash of the pods on a bad config (kubectl calls from the Keeper's
            # thread, seconds apart on a loaded machine) lands before the bad revision could be proven good:
            # event passes see the new revision the moment it is written.
            "provenGoodAfter": "10s",
            "verifyTimeout": "2m",
            "holdOffAfterChange": "0s",
            **remediation,
        },
    }
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": spec,
    }


def zentinel(reload_mode: str = "RollingRestart", tls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": "edge", "labels": {"tier": "edge"}},
        "spec": {
            "workload": {"name": "edge"},
            "config": {
                "configMapName": "edge-config",
                "reloadMode": reload_mode,
                # The emulator serves /admin/config but does not run the ConfigMap's config: live
                # verification is proven on real Zentinel (test_runbook_e2e.py).
                "verifyLive": False,
            },
            "tls": tls or [],
        },
    }


class Keeper:
    """Keeps emulators on the current pod IPs while Deployments roll (the test plays kubelet + Zentinel)."""

    def __init__(self, dp: Dataplane, extra: Callable[[], None] | None = None) -> None:
        self.dp = dp
        self.extra = extra
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.dp.sync()
                if self.extra:
                    self.extra()
            except Exception:
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def keepers() -> Iterator[list[Keeper]]:
    ks: list[Keeper] = []
    yield ks
    for k in ks:
        k.stop()


def start_edge(
    kube: Kube,
    namespace: str,
    dataplanes: list[Any],
    *,
    reload_mode: str = "RollingRestart",
    tls: list[dict[str, Any]] | None = None,
    setup: Any = None,
    resolve_after: str = "3s",
    **remediation: Any,
) -> Dataplane:
    kube.apply(policy(resolve_after, **remediation), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    running_pods(kube, namespace, "app=edge", 3)
    dp = Dataplane(kube, namespace, "app=edge", setup=setup)
    dataplanes.append(dp)
    dp.sync()
    dp.traffic(rps=50, error_share=0.0)
    kube.apply(zentinel(reload_mode, tls), namespace)
    return dp


def incident(kube: Kube, namespace: str, category: str) -> dict[str, Any] | None:
    for inc in kube.list("zentinelincidents", namespace):
        if inc["spec"]["category"] == category and (inc.get("status") or {}).get("state"):
            return inc
    return None


def remediations(inc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return ((inc or {}).get("status") or {}).get("remediations") or []


def records(kube: Kube, namespace: str, category: str) -> list[dict[str, Any]]:
    return remediations(incident(kube, namespace, category))


def record_where(kube: Kube, namespace: str, category: str, **fields: str) -> dict[str, Any] | None:
    """The first remediation record of the ``category`` incident whose fields have these values."""
    return next((r for r in records(kube, namespace, category) if all(r.get(k) == v for k, v in fields.items())), None)


def is_true(obj: dict[str, Any], type_: str) -> bool:
    return (condition(obj, type_) or {}).get("status") == "True"


def succeeded(kube: Kube, namespace: str, category: str, action: str) -> dict[str, Any] | None:
    """The incident once its ``action`` record is Succeeded (verified: in place, and the signal gone).

    Mitigated=True alone is not enough: the lifecycle sets it (SignalsHealthy) as soon as the signal
    goes, which can be a pass before the action's own verification completes.
    """
    i = incident(kube, namespace, category)
    return i if any(r["action"] == action and r["state"] == "Succeeded" for r in remediations(i)) else None


def proven_good(kube: Kube, namespace: str) -> str:
    """Wait until the operator has proven the example's good config (last known good); return its revision."""
    good_rev = config_revision(configs.GOOD)
    wait_for(
        lambda: kube.status("zen", "edge", namespace).get("lastKnownGoodRevision") == good_rev,
        timeout=60,
        what="the good config proven good",
    )
    return good_rev


def config_text(kube: Kube, namespace: str) -> str:
    return str(kube.get("configmap", "edge-config", namespace)["data"]["zentinel.kdl"])  # type: ignore[index]


BAD_BUT_PARSES = configs.GOOD.replace('listener "http" {', 'listener "http" {\n        request-timeout-secs -1')


def crash_all_on_bad_config(kube: Kube, namespace: str, good: str) -> Callable[[], None]:
    """Zentinel's behaviour: a pod started with a config it cannot load exits (CrashLoopBackOff)."""

    def bad() -> bool:
        return config_revision(config_text(kube, namespace)) != config_revision(good)

    def tick() -> None:
        if not bad():
            return
        pods = kube.list("pods", namespace, "app=edge")
        # Read again after listing: a rollback restores the ConfigMap before it rolls the Deployment, so if the list
        # holds pods of that rollout, they started on the good config and must not be crashed (they would hold the
        # rollout forever). A config still bad now means every listed pod started on it.
        if not bad():
            return
        crash_running(kube, pods, message="Failed to load configuration file")

    return tick


def crash_running(kube: Kube, pods: list[dict[str, Any]], message: str = "") -> None:
    """Put every listed pod that runs into CrashLoopBackOff (those already crashing are left as they are)."""
    for pod in pods:
        cs = (pod.get("status") or {}).get("containerStatuses") or [{}]
        if pod["status"].get("phase") == "Running" and cs[0].get("state", {}).get("waiting") is None:
            crash.crash_loop(kube, pod, restarts=3, message=message)


def test_bad_config_is_rolled_back_to_last_known_good(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    dp = start_edge(kube, namespace, dataplanes, actions={"configRollback": {"mode": "Automatic"}})
    good_rev = proven_good(kube, namespace)
    generation = kube.get("deployment", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    kube.apply(configs.configmap("edge-config", BAD_BUT_PARSES), namespace)
    bad_rev = config_revision(BAD_BUT_PARSES)
    keepers.append(Keeper(dp, crash_all_on_bad_config(kube, namespace, configs.GOOD)))
    inc = wait_for(
        lambda: succeeded(kube, namespace, "ProcessCrash", "configRollback"),
        timeout=120,
        what="incident Mitigated by rollback",
    )
    rec = next(r for r in inc["status"]["remediations"] if r["action"] == "configRollback")
    assert rec["state"] == "Succeeded" and rec["before"] == bad_rev and rec["after"] == good_rev
    assert "request-timeout-secs -1" in rec["diff"]
    assert condition(inc, "Mitigated")["reason"] == "RemediationSucceeded"
    assert config_revision(config_text(kube, namespace)) == good_rev
    # The bad revision is kept, retrievable, owned by the Zentinel.
    saved = kube.get("configmap", f"edge-config-{bad_rev}", namespace)
    assert saved is not None and saved["data"]["zentinel.kdl"] == BAD_BUT_PARSES
    assert saved["metadata"]["ownerReferences"][0]["kind"] == "Zentinel"
    # Delivered by a rolling restart: new pods, Ready.
    dep = kube.get("deployment", "edge", namespace)
    assert dep["metadata"]["generation"] == generation + 1  # type: ignore[index]
    pods = running_pods(kube, namespace, "app=edge", 3)
    assert all(p["metadata"]["annotations"].get("zentinel.io/config-revision") == good_rev for p in pods)
    assert sum(1 for r in inc["status"]["remediations"] if r["action"] == "configRollback") == 1


def not_escalated(kube: Kube, namespace: str, category: str, seconds: float = 4) -> dict[str, Any]:
    """The incident, after watching it for ``seconds``: still at the primary level, the secondary never paged."""
    deadline = time.monotonic() + seconds
    while True:
        inc = incident(kube, namespace, category)
        assert inc is not None
        assert not is_true(inc, "Escalated"), condition(inc, "Escalated")
        assert inc["status"]["escalationLevel"] == "primary"
        assert [e["level"] for e in inc["status"]["escalations"]] == ["primary"]
        if time.monotonic() >= deadline:
            return inc
        time.sleep(0.5)


def test_unproven_revision_is_not_rolled_back_and_pages_nobody_past_the_primary(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    dp = start_edge(
        kube, namespace, dataplanes, actions={"configRollback": {"mode": "Automatic"}}, provenGoodAfter="1h"
    )
    wait_for(lambda: kube.status("zen", "edge", namespace).get("currentRevision"), timeout=60, what="first pass")
    kube.apply(configs.configmap("edge-config", BAD_BUT_PARSES), namespace)
    keepers.append(Keeper(dp, crash_all_on_bad_config(kube, namespace, configs.GOOD)))
    rec = wait_for(
        lambda: record_where(kube, namespace, "ProcessCrash", action="configRollback", state="Refused"),
        timeout=90,
        what="the rollback refused",
    )
    assert "never rolling back to an unproven config" in rec["reason"]
    # A refusal is recorded; the response target, not the refusal, decides when the team lead is paged.
    not_escalated(kube, namespace, "ProcessCrash")
    assert config_text(kube, namespace) == BAD_BUT_PARSES
    assert kube.status("zen", "edge", namespace).get("lastKnownGoodRevision") is None


def test_killing_the_operator_mid_remediation_does_not_repeat_it(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    dp = start_edge(kube, namespace, dataplanes, actions={"configRollback": {"mode": "Automatic"}})
    proven_good(kube, namespace)
    generation = kube.get("deployment", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    kube.apply(configs.configmap("edge-config", BAD_BUT_PARSES), namespace)
    keepers.append(Keeper(dp, crash_all_on_bad_config(kube, namespace, configs.GOOD)))
    wait_for(
        lambda: any(
            r["action"] == "configRollback" and r["state"] in ("Running", "Verifying")
            for r in records(kube, namespace, "ProcessCrash")
        ),
        timeout=90,
        interval=0.1,
        what="rollback in flight",
    )
    operator.kill()
    inc, _ = restart_and_finish_rollback(kube, namespace, operator, "mitigated after the restart")
    starts = [t for t in inc["status"]["timeline"] if t["message"].startswith("Starting configRollback")]
    assert len(starts) == 1
    assert kube.get("deployment", "edge", namespace)["metadata"]["generation"] == generation + 1  # type: ignore[index]


def test_dry_run_records_the_diff_and_changes_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    start_edge(
        kube,
        namespace,
        dataplanes,
        reload_mode="AutoReload",
        setup=configs.upstream_health(("10.0.1.11:8000",)),
        actions={"ejectTargets": {"mode": "DryRun"}},
    )
    rec = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", state="DryRun"),
        timeout=60,
        what="a dry-run record",
    )
    assert rec["action"] == "ejectTargets"
    assert '-        target "10.0.1.11:8000" weight=1' in rec["diff"]
    time.sleep(3)
    assert config_text(kube, namespace) == configs.GOOD


def pending_ejection(
    kube: Kube, namespace: str, dataplanes: list[Any], **actions: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """An edge whose bad target's ejection waits for approval: (its pending record, the incident's name)."""
    start_edge(
        kube,
        namespace,
        dataplanes,
        reload_mode="AutoReload",
        setup=configs.upstream_health(("10.0.1.11:8000",)),
        actions={"ejectTargets": {"mode": "NeedsApproval", "ttl": "1h"}, **actions},
    )
    rec = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", state="PendingApproval"),
        timeout=60,
        what="pending approval",
    )
    name = incident(kube, namespace, "UpstreamFailure")["metadata"]["name"]  # type: ignore[index]
    return rec, name


def test_pending_action_runs_only_after_approval(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    rec, name = pending_ejection(kube, namespace, dataplanes)
    # It carries the change it would make, from a dry run: the person approving sees what they approve.
    assert '-        target "10.0.1.11:8000"' in rec["diff"], rec
    time.sleep(3)
    assert config_text(kube, namespace) == configs.GOOD
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/approved-by=alice")
    wait_for(lambda: "10.0.1.11:8000" not in config_text(kube, namespace), timeout=60, what="ejection after approval")
    done = next(r for r in records(kube, namespace, "UpstreamFailure") if r["id"] == rec["id"])
    assert done["approvedBy"] == "alice"
    text = config_text(kube, namespace)
    assert check_config(text).valid and "// Edge proxy used by the integration tests." in text


def test_a_rejected_action_is_not_carried_out_and_the_ladder_goes_on(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    rec, name = pending_ejection(kube, namespace, dataplanes, restart={"mode": "DryRun"})
    decision = {"actionId": rec["id"], "by": "bob", "decision": "Reject", "reason": "a deploy is on"}
    kube.run(
        "patch", "zinc", name, "-n", namespace, "--type", "merge", "-p", json.dumps({"spec": {"approvals": [decision]}})
    )
    refused = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", id=rec["id"], state="Refused"),
        timeout=60,
        what="the rejected ejection recorded Refused",
    )
    assert refused["rejectedBy"] == "bob" and "approvedBy" not in refused
    assert refused["reason"] == "skip: rejected by bob: a deploy is on"
    # The ladder goes on to its next rung (a restart, here a dry run); the config is never touched.
    wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", action="restart", state="DryRun"),
        timeout=60,
        what="the next rung after the rejection",
    )
    assert config_text(kube, namespace) == configs.GOOD
    # A bad decision is refused by the schema, naming the field.
    bad = {"actionId": rec["id"], "by": "eve", "decision": "Maybe"}
    proc = kube.run(
        "patch", "zinc", name, "-n", namespace, "--type", "merge", "-p", json.dumps({"spec": {"approvals": [bad]}}),
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "spec.approvals[0].decision" in proc.stderr, proc.stderr


def test_ejected_target_returns_after_ttl(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    start_edge(
        kube,
        namespace,
        dataplanes,
        reload_mode="AutoReload",
        setup=configs.upstream_health(("10.0.1.12:8000",)),
        actions={"ejectTargets": {"mode": "Automatic", "ttl": "5s"}},
        verifyTimeout="10m",
    )
    wait_for(lambda: "10.0.1.12:8000" not in config_text(kube, namespace), timeout=60, what="ejection")
    wait_for(lambda: config_text(kube, namespace) == configs.GOOD, timeout=60, what="target back after the TTL")
    # The revert writes the ConfigMap first and its record in the same pass's status write, just after.
    rec = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", action="ejectTargets", state="Reverted"),
        timeout=30,
        what="the ejection recorded Reverted",
    )
    assert rec is not None and rec["reason"].startswith("TTL reached: undone")


def test_quorum_guard_refuses_an_ejection_leaving_too_few_targets(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    def two_bad(emu: Any) -> None:
        for addr, st in (
            ("10.0.1.10:8000", "unhealthy"),
            ("10.0.1.11:8000", "unhealthy"),
            ("10.0.1.12:8000", "healthy"),
        ):
            emu.set_target("api", addr, st)

    start_edge(
        kube,
        namespace,
        dataplanes,
        reload_mode="AutoReload",
        setup=two_bad,
        actions={"ejectTargets": {"mode": "Automatic", "minRemainingShare": 0.5}},
    )
    rec = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", action="ejectTargets"),
        timeout=60,
        what="an ejection decision",
    )
    assert rec["state"] == "Refused" and "quorum guard" in rec["reason"]
    assert "would leave 1" in rec["reason"]
    time.sleep(2)
    assert config_text(kube, namespace) == configs.GOOD


def test_exhausted_budget_stops_actions_and_pages_nobody_past_the_primary(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    start_edge(
        kube,
        namespace,
        dataplanes,
        actions={"restart": {"mode": "Automatic"}},
        budget={"perZentinel": 0, "perCluster": 10, "window": "1h"},
    )
    pods = running_pods(kube, namespace, "app=edge", 3)
    crash.crash_loop(kube, pods[0], restarts=5)
    rec = wait_for(
        lambda: record_where(kube, namespace, "ProcessCrash", action="restart", state="Refused"),
        timeout=60,
        what="the restart refused on the budget",
    )
    assert rec["reason"].startswith("budget exhausted")
    not_escalated(kube, namespace, "ProcessCrash", seconds=2)
    uids = {p["metadata"]["uid"] for p in kube.list("pods", namespace, "app=edge")}
    assert pods[0]["metadata"]["uid"] in uids  # nothing was deleted


def test_expiring_certificate_with_a_ca_issuer_is_rotated_and_served(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    import asyncio

    from support.tlspods import TLSPods
    from zentinel_devcluster.pki import CA
    from zentinel_operator.core.certs import fingerprint_sha256, inspect_certificate
    from zentinel_operator.signals.tls_probe import served_certificate

    ca = CA.create("edge test CA")
    ca_pem, ca_key = ca.pem()
    kube.apply(tls_secret("edge-ca", ca_pem, ca_key), namespace)
    sans = ["edge.example.com", "www.edge.example.com"]
    old_cert, old_key = leaf(ca, sans, days=2)
    kube.apply(tls_secret("edge-tls", old_cert, old_key), namespace)
    tls = [
        {
            "name": "public",
            "secretName": "edge-tls",
            "port": 8443,
            "serverName": "edge.example.com",
            "issuer": {"type": "CASecret", "caSecretName": "edge-ca"},
        }
    ]
    dp = start_edge(kube, namespace, dataplanes, tls=tls, actions={"certificateRotation": {"mode": "Automatic"}})
    pods_tls = TLSPods(kube, namespace, "app=edge", "edge-tls")
    pods_tls.sync()
    keepers.append(Keeper(dp, pods_tls.sync))
    try:
        inc = wait_for(
            lambda: succeeded(kube, namespace, "CertificateExpiring", "certificateRotation"),
            timeout=120,
            what="rotation verified",
        )
        rec = next(r for r in inc["status"]["remediations"] if r["action"] == "certificateRotation")
        assert rec["state"] == "Succeeded"
        data = kube.get("secret", "edge-tls", namespace)["data"]  # type: ignore[index]
        new_cert = base64.b64decode(data["tls.crt"])
        new_key = base64.b64decode(data["tls.key"])
        assert fingerprint_sha256(new_cert) != fingerprint_sha256(old_cert)
        info = inspect_certificate(
            name="public",
            secret="edge-tls",
            cert_pem=new_cert,
            key_pem=new_key,
            ca_pem=ca_pem,
            now=dt.datetime.now(dt.UTC),
        )
        assert info.error is None and info.key_matches and info.chain_valid
        assert sorted(info.sans) == sorted(sans)
        assert info.days_left is not None and info.days_left > 30
        pods = running_pods(kube, namespace, "app=edge", 3)
        for pod in pods:
            probe = asyncio.run(
                served_certificate(pod["status"]["podIP"], 8443, server_name="edge.example.com", timeout=5)
            )
            assert probe.ok and probe.fingerprint == fingerprint_sha256(new_cert)
    finally:
        pods_tls.stop()


def test_crash_looping_pod_is_deleted_and_replaced(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    dp = start_edge(kube, namespace, dataplanes, actions={"restart": {"mode": "Automatic"}})
    keepers.append(Keeper(dp))
    pods = running_pods(kube, namespace, "app=edge", 3)
    victim = pods[0]
    crash.crash_loop(kube, victim, restarts=5)
    inc = wait_for(lambda: succeeded(kube, namespace, "ProcessCrash", "restart"), timeout=90, what="restart verified")
    rec = next(r for r in inc["status"]["remediations"] if r["action"] == "restart")
    assert rec["state"] == "Succeeded" and rec["after"] == f"deleted {victim['metadata']['name']}"
    assert rec["deletedPods"] == [victim["metadata"]["name"]]  # the same fact as data, read back to verify
    after = running_pods(kube, namespace, "app=edge", 3)
    assert victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in after}
    # Only the crashing pod went: the two healthy ones are the same objects (blast radius).
    assert {p["metadata"]["uid"] for p in pods[1:]} <= {p["metadata"]["uid"] for p in after}


def test_oom_killed_pods_get_a_higher_memory_limit_within_the_cap(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    kube.apply(policy(actions={"memoryLimit": {"mode": "Automatic", "factor": 1.5, "cap": "700Mi"}}), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3, memory_limit="512Mi"), namespace)
    running_pods(kube, namespace, "app=edge", 3)
    dp = Dataplane(kube, namespace, "app=edge")
    dataplanes.append(dp)
    dp.sync()
    kube.apply(zentinel(), namespace)
    keepers.append(Keeper(dp))
    for pod in running_pods(kube, namespace, "app=edge", 3)[:2]:
        crash.oom_killed(kube, pod, restarts=4)
    inc = wait_for(
        lambda: (
            (i := incident(kube, namespace, "ProcessCrash"))
            and any(
                r["action"] == "memoryLimit" and r["state"] in ("Verifying", "Succeeded")
                for r in i["status"].get("remediations", [])
            )
            and i
        ),
        timeout=90,
        what="memory limit raised",
    )
    rec = next(r for r in inc["status"]["remediations"] if r["action"] == "memoryLimit")
    assert (rec["before"], rec["after"]) == ("512Mi", "700Mi")
    dep = kube.get("deployment", "edge", namespace)
    limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]  # type: ignore[index]
    assert limits["memory"] == "700Mi"
    wait_for(
        lambda: (i := incident(kube, namespace, "ProcessCrash")) and is_true(i, "Mitigated"),
        timeout=90,
        what="pods recovered on the new limit",
    )


def pending_rollback_then_stop(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    dataplanes: list[Any],
    keepers: list[Keeper],
    resolve_after: str = "3s",
) -> tuple[dict[str, Any], str]:
    """A bad config, crashing pods, a rollback waiting for approval; then the operator stops."""
    dp = start_edge(
        kube, namespace, dataplanes, resolve_after=resolve_after, actions={"configRollback": {"mode": "NeedsApproval"}}
    )
    good_rev = proven_good(kube, namespace)
    kube.apply(configs.configmap("edge-config", BAD_BUT_PARSES), namespace)
    keepers.append(Keeper(dp, crash_all_on_bad_config(kube, namespace, configs.GOOD)))
    pending = wait_for(
        lambda: record_where(kube, namespace, "ProcessCrash", state="PendingApproval"),
        timeout=90,
        what="pending rollback",
    )
    operator.stop()
    return pending, good_rev


def mark_running(kube: Kube, namespace: str, pending: dict[str, Any]) -> None:
    """What the operator writes when an approved action starts: the record says Running."""
    inc = incident(kube, namespace, "ProcessCrash")
    assert inc is not None
    remediations = inc["status"]["remediations"]
    remediations[-1] = {**pending, "state": "Running", "approvedBy": "alice"}
    kube.patch_status("zinc", inc["metadata"]["name"], namespace, {"status": {"remediations": remediations}})


def restart_and_finish_rollback(
    kube: Kube, namespace: str, operator: OperatorProcess, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the operator again; wait until the rollback is Succeeded; return the incident and its one rollback."""
    operator.start()
    done = wait_for(lambda: succeeded(kube, namespace, "ProcessCrash", "configRollback"), timeout=120, what=what)
    rollbacks = [r for r in done["status"]["remediations"] if r["action"] == "configRollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["state"] == "Succeeded", rollbacks
    return done, rollbacks[0]


def test_an_action_recorded_but_not_carried_out_is_finished_once_after_a_restart(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    """The window a SIGKILL can fall into: the record says Running, the change was never made."""
    pending, good_rev = pending_rollback_then_stop(kube, namespace, operator, dataplanes, keepers)
    mark_running(kube, namespace, pending)
    generation = kube.get("deployment", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    assert config_text(kube, namespace) == BAD_BUT_PARSES
    done, _ = restart_and_finish_rollback(kube, namespace, operator, "the rollback finished after the restart")
    assert any(t["message"].startswith("Resumed after a restart") for t in done["status"]["timeline"])
    assert config_revision(config_text(kube, namespace)) == good_rev
    assert kube.get("deployment", "edge", namespace)["metadata"]["generation"] == generation + 1  # type: ignore[index]


def test_a_rollback_stopped_between_its_config_write_and_its_rollout_is_delivered_after_a_restart(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    """The window between the executor's two writes: the good content is back in the ConfigMap, the pods were not
    rolled, so the crash-looping pods still run the bad config. The restarted operator makes the rollout."""
    pending, good_rev = pending_rollback_then_stop(kube, namespace, operator, dataplanes, keepers)
    kube.apply(configs.configmap("edge-config"), namespace)  # the executor's first write, and nothing after it
    generation = kube.get("deployment", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    mark_running(kube, namespace, pending)
    _, rec = restart_and_finish_rollback(kube, namespace, operator, "the rollback delivered and verified")
    assert rec["after"] == good_rev
    deployment = kube.get("deployment", "edge", namespace) or {}
    assert deployment["metadata"]["generation"] == generation + 1
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert template["zentinel.io/config-revision"] == good_rev
    assert template["zentinel.io/restarted-for"] == pending["id"]


def test_an_action_made_but_not_yet_recorded_as_made_is_verified_not_redone(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    """The other window: the change is made (and has already helped), the record still says Running.

    resolveAfter 0s: the incident resolves on the first healthy pass, before the rollout the change
    started has finished; the record must still be verified on the resolved incident.
    """
    pending, good_rev = pending_rollback_then_stop(kube, namespace, operator, dataplanes, keepers, resolve_after="0s")
    # What the executor does, done "just before the SIGKILL": content restored, pods rolled.
    kube.apply(configs.configmap("edge-config"), namespace)
    annotations = {"zentinel.io/config-revision": good_rev, "zentinel.io/restarted-for": pending["id"]}
    patch = json.dumps({"spec": {"template": {"metadata": {"annotations": annotations}}}})
    kube.run("patch", "deployment", "edge", "-n", namespace, "--type", "merge", "-p", patch)
    generation = kube.get("deployment", "edge", namespace)["metadata"]["generation"]  # type: ignore[index]
    mark_running(kube, namespace, pending)
    _, rec = restart_and_finish_rollback(kube, namespace, operator, "the rollback verified after the restart")
    assert rec["after"] == good_rev
    assert kube.get("deployment", "edge", namespace)["metadata"]["generation"] == generation  # type: ignore[index]


# ------------------------------------------------------------- containment, escalation that means something
def test_a_deployment_deleted_mid_rollback_fails_that_step_once_and_the_passes_go_on(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    dataplanes: list[Any],
    keepers: list[Keeper],
    in_process_api: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One pass driven in this process, so that the Deployment goes between the pass reading it and the rollback
    rolling it: the API's 404 fails that step, with its reason. Then the operator's own passes go on."""
    import asyncio

    from zentinel_operator.handlers import remediation as respond_handler
    from zentinel_operator.handlers import zentinel as zentinel_handlers
    from zentinel_operator.signals.gather import GatherSettings

    pending, good_rev = pending_rollback_then_stop(kube, namespace, operator, dataplanes, keepers)
    name = incident(kube, namespace, "ProcessCrash")["metadata"]["name"]  # type: ignore[index]
    kube.run("annotate", "zinc", name, "-n", namespace, "zentinel.io/approved-by=alice")
    real_respond = respond_handler.respond

    def delete_then_respond(**kwargs: Any) -> Any:
        kube.run("delete", "deployment", "edge", "-n", namespace, "--wait=true")
        wait_for(lambda: kube.get("deployment", "edge", namespace) is None, timeout=30, what="Deployment gone")
        return real_respond(**kwargs)

    monkeypatch.setattr(respond_handler, "respond", delete_then_respond)

    async def one_pass() -> list[Any]:
        ctx = zentinel_handlers.PassContext(gather=GatherSettings())
        try:
            result = await zentinel_handlers.reconcile(
                kube.get("zen", "edge", namespace) or {},
                ctx=ctx,
                policies=kube.list("zentinelincidentpolicies", namespace),
            )
            return result.failures
        finally:
            await ctx.close()

    assert asyncio.run(one_pass()) == []  # a Failed step is the ladder's business, not a failed pass
    rec = record_where(kube, namespace, "ProcessCrash", id=pending["id"])
    assert rec is not None and rec["state"] == "Failed" and rec["failedIn"] == "Action"
    assert rec["reason"] == "Deployment edge not found (404)"
    assert config_revision(config_text(kube, namespace)) == good_rev  # the write before the rollout is recorded
    assert rec["after"] == good_rev and rec["approvedBy"] == "alice"

    # The operator's own passes: the ladder goes on past the failed step (nothing retries it), status and
    # evidence are written, the incident's notifications are worked on; no pass fails.
    operator.start()
    page = wait_for(
        lambda: record_where(kube, namespace, "ProcessCrash", action="page"),
        timeout=60,
        what="the ladder at its end",
    )
    assert page["state"] == "Refused" and "failed: configRollback" in page["reason"]
    wait_for(
        lambda: (kube.status("zen", "edge", namespace).get("summary") or {}).get("pods") == "no workload",
        timeout=30,
        what="the Zentinel's status written after the failure",
    )
    time.sleep(3)  # a few more passes
    done = incident(kube, namespace, "ProcessCrash")
    assert done is not None
    rollbacks = [r for r in remediations(done) if r["action"] == "configRollback"]
    assert [(r["state"], r["reason"]) for r in rollbacks] == [("Failed", "Deployment edge not found (404)")]
    assert [e["phase"] for e in done["status"]["evidence"]].count("detection") >= 1
    assert done["status"]["deliveries"], "no notification was worked on"
    zen_status = kube.status("zen", "edge", namespace)
    assert (condition({"status": zen_status}, "PassDegraded") or {}).get("status") == "False"
    assert "failed with an exception" not in operator.logs()  # kopf's words for a pass that raised
    not_escalated(kube, namespace, "ProcessCrash", seconds=1)


def test_a_dry_run_only_ladder_does_not_page_the_secondary_before_the_response_target(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    start_edge(
        kube,
        namespace,
        dataplanes,
        reload_mode="AutoReload",
        setup=configs.upstream_health(("10.0.1.11:8000",)),
        defaultMode="DryRun",
        verifyTimeout="2s",
    )
    page = wait_for(
        lambda: record_where(kube, namespace, "UpstreamFailure", action="page"),
        timeout=90,
        what="the ladder at its end",
    )
    assert page["state"] == "Refused"
    assert "no real action ran and failed its verification (dry run: ejectTargets, restart)" in page["reason"]
    inc = not_escalated(kube, namespace, "UpstreamFailure")
    assert [(r["action"], r["state"]) for r in remediations(inc)] == [
        ("ejectTargets", "DryRun"),
        ("restart", "DryRun"),
        ("page", "Refused"),
    ]
    assert config_text(kube, namespace) == configs.GOOD


def test_a_real_action_that_did_not_recover_escalates_to_the_secondary(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], keepers: list[Keeper]
) -> None:
    # verifyTimeout 20 s: the replaced pods must stay Ready 10 s to count (core.remediation.restart_settle), and the
    # keeper crashes them again within a second or two of kwok making them Ready.
    dp = start_edge(kube, namespace, dataplanes, actions={"restart": {"mode": "Automatic"}}, verifyTimeout="20s")
    keepers.append(Keeper(dp, lambda: crash_running(kube, kube.list("pods", namespace, "app=edge"))))
    inc = wait_for(
        lambda: (i := incident(kube, namespace, "ProcessCrash")) and is_true(i, "Escalated") and i,
        timeout=120,
        what="escalation after the restart did not help",
    )
    assert condition(inc, "Escalated")["reason"] == "RemediationExhausted"  # type: ignore[index]
    assert "restart ran and verification showed no recovery" in condition(inc, "Escalated")["message"]  # type: ignore[index]
    restart = next(r for r in remediations(inc) if r["action"] == "restart")
    assert restart["state"] == "Failed" and restart["failedIn"] == "Verification"
    assert restart["after"].startswith("deleted ") and restart["deletedPods"]  # it really ran
    assert [(e["level"], e["receivers"]) for e in inc["status"]["escalations"]] == [
        ("primary", ["oncall"]),
        ("secondary", ["lead"]),
    ]
