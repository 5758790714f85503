"""The CLI end to end: the installed console scripts (``zentinelctl``, ``kubectl-zentinel``, ``python -m
zentinel_operator.cli``) run as subprocesses against the local control plane, with the operator as a
real process producing the incidents, and ``kubectl zentinel`` found through kubectl's plugin
mechanism."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import configs, crash
from support.dataplane import Dataplane
from support.emulator import ZentinelEmulator
from support.kube import Kube, deployment, open_incident, running_pods, wait_for
from support.operator import OperatorProcess

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent  # the venv's bin: zentinelctl, kubectl-zentinel


def zentinel(
    kube: Kube | None, *args: str, script: str = "zentinelctl", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script as a person types it; KUBECONFIG points at the test cluster."""
    full = dict(os.environ)
    if kube is not None:
        full["KUBECONFIG"] = str(kube.kubeconfig)
    full.update(env or {})
    cmd = [str(BIN / script), *args] if script != "-m" else [sys.executable, "-m", "zentinel_operator.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=180, check=False)


def policy(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "receivers": [{"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"}],
        "escalation": {"sev1": {"primary": ["oncall"]}, "sev3": {"primary": ["oncall"]}},
        "lifecycle": {"resolveAfter": "10m", "reopenWindow": "10m"},
    }
    base.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": base,
    }


def zentinel_obj(reload_mode: str = "RollingRestart") -> dict[str, Any]:
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
        },
    }


def start_edge(
    kube: Kube,
    namespace: str,
    dataplanes: list[Any],
    *,
    setup: Callable[[ZentinelEmulator], None] | None = None,
    reload_mode: str = "RollingRestart",
    **policy_spec: Any,
) -> tuple[Dataplane, list[dict[str, Any]]]:
    kube.apply(policy(**policy_spec), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    kube.apply(deployment("edge", replicas=3), namespace)
    pods = running_pods(kube, namespace, "app=edge", 3)
    dp = Dataplane(kube, namespace, "app=edge", setup=setup)
    dataplanes.append(dp)
    dp.sync()
    kube.apply(zentinel_obj(reload_mode), namespace)
    return dp, pods


def crashed_incident(
    kube: Kube, namespace: str, dataplanes: list[Any], logs: Path | None = None, **policy_spec: Any
) -> tuple[str, list[dict[str, Any]]]:
    """Every pod crash-looping (with the log lines of a bad config, kept under ``logs``): the operator
    opens a SEV1 ProcessCrash incident; its name, and the pods."""
    _, pods = start_edge(kube, namespace, dataplanes, **policy_spec)
    for p in pods:
        if logs is not None:
            crash.set_logs(kube, p, "zentinel", "starting", "Failed to load configuration file: bad", logs)
        crash.crash_loop(kube, p, restarts=5, message="Failed to load configuration file")
    inc = wait_for(
        lambda: open_incident(kube, namespace, "ProcessCrash", lambda i: i["status"].get("severity") == "SEV1"),
        timeout=90,
        what="a SEV1 ProcessCrash incident",
    )
    assert inc is not None
    return str(inc["metadata"]["name"]), pods


def recover(kube: Kube, namespace: str, name: str, pods: list[dict[str, Any]]) -> None:
    """The pods run again and the operator has seen it (the incident stays open: resolveAfter is 10m)."""
    for p in pods:
        crash.recover(kube, p)
    wait_for(lambda: status(kube, namespace, name).get("healthySince"), timeout=60, what="signals healthy")


def status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return (kube.get("zinc", name, namespace) or {}).get("status") or {}


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


# ------------------------------------------------------------------------ incidents, show, ack, resolve
def test_list_show_acknowledge_and_resolve(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], tmp_path: Path
) -> None:
    name, pods = crashed_incident(kube, namespace, dataplanes)

    listed = zentinel(kube, "incidents", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    table = rows(listed.stdout)
    assert table[0] == ["NAME", "SEVERITY", "CATEGORY", "ZENTINEL", "STATE", "ACKED-BY", "AGE", "LAST-SEEN"]
    row = next(r for r in table if r[0] == name)
    assert row[1:6] == ["SEV1", "ProcessCrash", "edge", "Detected", "<none>"]

    as_json = zentinel(kube, "incidents", "-n", namespace, "-o", "json", "--open", "--zentinel", "edge")
    assert as_json.returncode == 0
    (found,) = [r for r in json.loads(as_json.stdout) if r["name"] == name]
    assert (found["severity"], found["category"], found["namespace"]) == ("SEV1", "ProcessCrash", namespace)
    assert found["lastSeenAt"]
    none = zentinel(kube, "incidents", "-n", namespace, "--severity", "SEV4", "-o", "yaml")
    assert (none.returncode, none.stdout) == (0, "[]\n")
    assert zentinel(kube, "incidents", "-n", namespace, "--zentinel", "other").stdout.startswith("No incidents found")

    everywhere = zentinel(kube, "incidents", "-A")
    assert everywhere.returncode == 0 and rows(everywhere.stdout)[0][:2] == ["NAMESPACE", "NAME"]
    assert [namespace, name] in [r[:2] for r in rows(everywhere.stdout)]

    # No -n: the namespace comes from the kubeconfig context (--kubeconfig wins over KUBECONFIG).
    cfg = json.loads(Path(kube.kubeconfig).read_text())
    cfg["contexts"][0]["context"]["namespace"] = namespace
    scoped = tmp_path / "kubeconfig"
    scoped.write_text(json.dumps(cfg))
    by_context = zentinel(kube, "incidents", "--kubeconfig", str(scoped))
    assert by_context.returncode == 0 and name in by_context.stdout

    # kubectl finds kubectl-zentinel on PATH: `kubectl zentinel ...`.
    plugin_env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    plugins = subprocess.run(
        [str(kube.kubectl_path), "plugin", "list"], capture_output=True, text=True, env=plugin_env, check=False
    )
    assert str(BIN / "kubectl-zentinel") in plugins.stdout
    # The install leaves the proxy's own binary name free.
    assert (BIN / "zentinelctl").is_file() and not (BIN / "zentinel").exists()
    via_kubectl = subprocess.run(
        [str(kube.kubectl_path), "zentinel", "incidents", "-n", namespace],
        capture_output=True,
        text=True,
        env=plugin_env,
        timeout=120,
        check=False,
    )
    assert via_kubectl.returncode == 0, via_kubectl.stderr
    assert next(r for r in rows(via_kubectl.stdout) if r[0] == name)[1:4] == ["SEV1", "ProcessCrash", "edge"]
    missing = subprocess.run(
        [str(kube.kubectl_path), "zentinel", "show", "inc-20000101-001", "-n", namespace],
        capture_output=True,
        text=True,
        env=plugin_env,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 3 and 'incident "inc-20000101-001" not found' in missing.stderr

    shown = zentinel(kube, "show", name, "-n", namespace, script="kubectl-zentinel")
    assert shown.returncode == 0, shown.stderr
    for text in (
        f"Name:            {name}",
        "Severity:        SEV1",
        "Acknowledged:    no",
        "Conditions:",
        "Timeline:",
    ):
        assert text in shown.stdout
    assert "Detected" in shown.stdout and "CrashLoopBackOff" in shown.stdout
    st = status(kube, namespace, name)
    if st.get("remediations"):
        assert "Remediations:" in shown.stdout and st["remediations"][0]["id"] in shown.stdout
    as_yaml = zentinel(kube, "show", name, "-n", namespace, "-o", "json")
    assert json.loads(as_yaml.stdout)["metadata"]["name"] == name

    acked = zentinel(kube, "ack", name, "-n", namespace, "--by", "alice")
    assert acked.returncode == 0, acked.stderr
    assert (kube.get("zinc", name, namespace) or {})["spec"]["acknowledgedBy"] == "alice"
    wait_for(lambda: status(kube, namespace, name).get("acknowledgedBy") == "alice", timeout=60, what="acknowledged")
    again = zentinel(kube, "ack", name, "-n", namespace, "--by", "bob")
    assert again.returncode == 4 and "already acknowledged by alice" in again.stderr
    assert "Acknowledged:    by alice at" in zentinel(kube, "show", name, "-n", namespace).stdout
    listed = zentinel(kube, "incidents", "-n", namespace)
    assert next(r for r in rows(listed.stdout) if r[0] == name)[4:6] == ["Acknowledged", "alice"]

    # Resolve by hand (once the signal is gone, so that it does not reopen): the --by default is $USER.
    recover(kube, namespace, name, pods)
    resolved = zentinel(
        kube, "resolve", name, "-n", namespace, "--note", "bad config rolled back by hand", env={"USER": "carol"}
    )
    assert resolved.returncode == 0, resolved.stderr
    spec = (kube.get("zinc", name, namespace) or {})["spec"]
    assert (spec["resolvedBy"], spec["resolutionNote"]) == ("carol", "bad config rolled back by hand")
    wait_for(lambda: status(kube, namespace, name).get("resolvedAt"), timeout=60, what="resolved by hand")
    st = status(kube, namespace, name)
    assert st["resolvedBy"] == "carol" and st.get("postmortemDue")
    refused = zentinel(kube, "resolve", name, "-n", namespace, "--by", "dan")
    assert refused.returncode == 4 and "already resolved (by carol" in refused.stderr
    assert zentinel(kube, "ack", name, "-n", namespace, "--by", "dan").returncode == 4
    closed = zentinel(kube, "show", name, "-n", namespace).stdout
    assert "Resolved:        by carol at" in closed
    assert "Resolution note: bad config rolled back by hand" in closed
    assert "Post-mortem due:" in closed
    if st.get("deliveries"):
        assert "Deliveries:" in closed
    still_open = zentinel(kube, "incidents", "-n", namespace, "--open", "-o", "json")
    assert name not in [r["name"] for r in json.loads(still_open.stdout)]


# ------------------------------------------------------------------------------------- approve


def test_approve_the_pending_remediation(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any]
) -> None:
    dp, _ = start_edge(
        kube,
        namespace,
        dataplanes,
        setup=configs.upstream_health(("10.0.1.11:8000",)),
        reload_mode="AutoReload",
        remediation={
            "defaultMode": "Off",
            "cooldown": "0s",
            "holdOffAfterChange": "0s",
            "verifyTimeout": "2m",
            "actions": {"ejectTargets": {"mode": "NeedsApproval", "ttl": "1h"}},
        },
    )
    dp.traffic(rps=50, error_share=0.0)
    inc = wait_for(
        lambda: open_incident(
            kube,
            namespace,
            "UpstreamFailure",
            lambda i: any(r["state"] == "PendingApproval" for r in i["status"].get("remediations") or []),
        ),
        timeout=90,
        what="a remediation pending approval",
    )
    assert inc is not None
    name = inc["metadata"]["name"]
    pending = next(r for r in inc["status"]["remediations"] if r["state"] == "PendingApproval")

    shown = zentinel(kube, "show", name, "-n", namespace)
    assert "PendingApproval" in shown.stdout
    assert f"Waiting for approval: {pending['id']}" in shown.stdout

    unknown = zentinel(kube, "approve", name, "no-such-action", "-n", namespace, "--by", "dave")
    assert unknown.returncode == 3 and "no remediation 'no-such-action'" in unknown.stderr

    approved = zentinel(kube, "approve", name, "-n", namespace, "--by", "dave", "-o", "json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["actionId"] == pending["id"]
    # The API server fills in the schema's default decision.
    decided = {"actionId": pending["id"], "by": "dave", "decision": "Approve"}
    assert (kube.get("zinc", name, namespace) or {})["spec"]["approvals"] == [decided]
    assert json.loads(approved.stdout)["diff"] == pending["diff"] and '"10.0.1.11:8000"' in pending["diff"]

    def config_text() -> str:
        return str((kube.get("configmap", "edge-config", namespace) or {})["data"]["zentinel.kdl"])

    wait_for(lambda: "10.0.1.11:8000" not in config_text(), timeout=90, what="the ejection, once approved")
    done = next(r for r in status(kube, namespace, name)["remediations"] if r["id"] == pending["id"])
    assert done["approvedBy"] == "dave" and done["state"] != "PendingApproval"

    twice = zentinel(kube, "approve", name, "-n", namespace, "--by", "erin")
    assert twice.returncode == 4
    named = zentinel(kube, "approve", name, pending["id"], "-n", namespace, "--by", "erin")
    assert named.returncode == 4 and "not PendingApproval" in named.stderr


# ------------------------------------------------------------------------------ triage (cluster)
def test_triage_a_zentinel_in_the_cluster_with_its_policy(
    kube: Kube, namespace: str, dataplanes: list[Any], tmp_path: Path
) -> None:
    # The governing policy makes a 30 % error rate SEV1 (the defaults say SEV2).
    dp, pods = start_edge(
        kube, namespace, dataplanes, thresholds={"errorRate": {"sev1": 0.2, "sev2": 0.1, "sev3": 0.01}}
    )
    dp.traffic(rps=100, error_share=0.3)
    crash.crash_loop(kube, pods[0], restarts=4)
    crashed = pods[0]["metadata"]["name"]

    run = zentinel(kube, "triage", "edge", "-n", namespace, "--interval", "2")
    assert run.returncode == 11, run.stdout + run.stderr
    out = run.stdout
    assert out.startswith(f"Triage of Zentinel edge (namespace {namespace}); thresholds from policy edge")
    assert crashed in out and "CrashLoopBackOff" in out
    assert "5xx errors:" in out and "api" in out
    assert "all closed" in out or "unknown: zentinel_circuit_breaker_state" in out
    process = next(line for line in out.splitlines() if "Is the proxy process running?" in line)
    assert "PARTLY" in process and "-> Go to: Process Crash Procedure" in process
    errors = next(line for line in out.splitlines() if "Is error rate elevated?" in line)
    assert "YES" in errors and "High Error Rate" in errors
    assert "SEV1  HighErrorRate" in out and "SEV3  ProcessCrash" in out
    assert out.rstrip().endswith("(exit 11)")

    as_json = zentinel(kube, "triage", "edge", "-n", namespace, "--interval", "1", "-o", "json")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == report["exitCode"] == 11
    assert {(f["category"], f["severity"]) for f in report["findings"]} >= {
        ("HighErrorRate", "SEV1"),
        ("ProcessCrash", "SEV3"),
    }
    assert report["snapshot"]["metrics"]["pods_scraped"] == 2  # the crash-looping pod is not scraped

    # A policy file overrides the cluster's: the default ladder puts 30 % at SEV2.
    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text("kind: ZentinelIncidentPolicy\nmetadata: {name: relaxed}\nspec: {}\n")
    run = zentinel(kube, "triage", "edge", "-n", namespace, "--interval", "1", "--policy", str(relaxed))
    assert run.returncode == 12, run.stdout + run.stderr
    assert f"thresholds from policy relaxed ({relaxed})" in run.stdout

    ghost = zentinel(kube, "triage", "ghost", "-n", namespace, "--interval", "1")
    assert ghost.returncode == 3 and 'Zentinel "ghost" not found' in ghost.stderr


# ------------------------------------------------------------------------------ triage (by URL)
@pytest.fixture
def failing_host() -> Iterator[ZentinelEmulator]:
    """A Zentinel outside Kubernetes: the emulator on a loopback address, 30 % of answers 502."""
    emu = ZentinelEmulator("127.0.0.1", 0).start()
    emu.set_target("api", "10.0.1.10:8000", "healthy")
    emu.set_target("api", "10.0.1.11:8000", "healthy")
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.1):
            emu.add_requests("api", "200", 14, latency_seconds=0.02)
            emu.add_requests("api", "502", 6, latency_seconds=0.05)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        yield emu
    finally:
        stop.set()
        thread.join(5)
        emu.stop()


def test_triage_a_host_by_url(failing_host: ZentinelEmulator, tmp_path: Path) -> None:
    url = failing_host.base_url
    run = zentinel(None, "triage", "--url", url, "--interval", "1")
    assert run.returncode == 12, run.stdout + run.stderr
    out = run.stdout
    assert f"RUNNING: the process answers on 127.0.0.1:{failing_host.port}; zentinel 0.6.45" in out
    assert "/health  200  OK" in out and "/ready   404  not configured" in out
    route = next(line.split() for line in out.splitlines() if line.strip().startswith("api "))
    assert 25 <= float(route[-1].rstrip("%")) <= 35  # 6 of every 20 answers are 502
    assert "10.0.1.10:8000   healthy" in out
    errors = next(line for line in out.splitlines() if "Is error rate elevated?" in line)
    assert "YES" in errors and "-> Go to: High Error Rate Procedure" in errors
    assert "SEV2  HighErrorRate: High error rate: 5xx rate " in out

    strict = tmp_path / "strict.yaml"
    strict.write_text("spec:\n  thresholds:\n    errorRate: {sev1: 0.2, sev2: 0.1, sev3: 0.01}\n")
    as_json = zentinel(
        None, "triage", "--url", url, "--interval", "1", "--policy", str(strict), "-o", "json", script="-m"
    )
    report = json.loads(as_json.stdout)
    assert as_json.returncode == report["exitCode"] == 11
    assert report["health"] == "Down" and report["mode"] == "url"  # SEV1
    assert [c["status"] for c in report["checks"]] == [200, 200, 200, 404]

    failing_host.stop()
    down = zentinel(None, "triage", "--url", url, "--interval", "0.5", script="kubectl-zentinel")
    assert down.returncode == 11
    assert "NOT RUNNING: nothing answers" in down.stdout and "-> Go to: Process Crash Procedure" in down.stdout


# ------------------------------------------------------------------------------ postmortem, evidence
def settled(read: Callable[[], Any], *, wait: float) -> Any:
    """What ``read`` returns once it is non-empty and unchanged for two seconds; empty after ``wait``
    seconds of nothing (a producer writes chunks one by one)."""
    deadline = time.monotonic() + wait
    last = read()
    while time.monotonic() < deadline + (60 if last else 0):
        time.sleep(2)
        now = read()
        if last and now == last:
            return now
        last = now
    return last


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_configmaps(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        cm
        for cm in kube.list("configmaps", namespace, f"zentinel.io/incident={name}")
        if "zentinel.io/evidence-phase" in cm["metadata"].get("labels", {})
    ]


def chunk(name: str, phase: str, number: int, files: dict[str, str]) -> dict[str, Any]:
    """An evidence chunk ConfigMap in the documented layout."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-ev-{phase}-{number:02d}",
            "labels": {"zentinel.io/incident": name, "zentinel.io/evidence-phase": phase},
        },
        "data": files,
    }


def manifest(name: str, phase: str, chunks: list[dict[str, str]]) -> str:
    """MANIFEST.json as the operator writes it in chunk 00: every item with its chunk and sha256."""
    items = [
        {"key": k, "chunk": f"{name}-ev-{phase}-{i:02d}", "bytes": len(v.encode()), "sha256": sha256(v.encode())}
        for i, files in enumerate(chunks)
        for k, v in files.items()
    ]
    return json.dumps({"format": "zentinel.io/evidence/v1", "incident": name, "phase": phase, "items": items})


def bundle_as_documented(kube: Kube, namespace: str, name: str) -> None:
    """What the evidence producer stores, for a tree where it has not landed."""
    pods = kube.list("pods", namespace, "app=edge")
    first = {
        **{f"logs__{p['metadata']['name']}__zentinel.log": "Failed to load configuration file\n" for p in pods},
        "describe__pods.yaml": kube.run("get", "pods", "-n", namespace, "-l", "app=edge", "-o", "yaml").stdout,
        "events.txt": kube.run("get", "events", "-n", namespace).stdout or "no events\n",
    }
    cm = kube.get("configmap", "edge-config", namespace) or {}
    second = {
        f"upstreams__{pods[0]['metadata']['name']}.json": '{"upstreams": []}',
        f"metrics__{pods[0]['metadata']['name']}.txt": "zentinel_up 1\n",
        "config.kdl": cm["data"]["zentinel.kdl"],
        "config-revision.txt": "0123abcd\n",
    }
    listed = manifest(name, "detection", [first, second])
    kube.apply(chunk(name, "detection", 0, {"MANIFEST.json": listed, **first}), namespace)
    kube.apply(chunk(name, "detection", 1, second), namespace)


def test_postmortem_and_evidence(
    kube: Kube, namespace: str, operator: OperatorProcess, dataplanes: list[Any], tmp_path: Path
) -> None:
    # An incident nobody has collected anything for: both say "not found".
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "ZentinelIncident",
            "metadata": {"name": "inc-20000101-001"},
            "spec": {"zentinelRef": {"name": "ghost"}, "category": "ConfigError", "fingerprint": "ghost/ConfigError"},
        },
        namespace,
    )
    none = zentinel(kube, "postmortem", "inc-20000101-001", "-n", namespace)
    assert none.returncode == 3 and "no post-mortem draft for inc-20000101-001 yet" in none.stderr
    none = zentinel(kube, "evidence", "inc-20000101-001", "-n", namespace, "--out", str(tmp_path))
    assert none.returncode == 3 and "no evidence for inc-20000101-001 yet" in none.stderr

    name, pods = crashed_incident(kube, namespace, dataplanes, logs=tmp_path / "logs")
    day, seq = name.split("-")[1:]
    # Evidence at detection: the operator's, or (until its producer lands) the documented layout by hand.
    chunks = settled(lambda: evidence_configmaps(kube, namespace, name), wait=20)
    print(f"[evidence] detection bundle of {name}: {'the operator' if chunks else 'the documented layout'}'s")
    if not chunks:
        bundle_as_documented(kube, namespace, name)
        chunks = evidence_configmaps(kube, namespace, name)

    out = tmp_path / "export"
    run = zentinel(kube, "evidence", name, "-n", namespace, "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    root = out / f"INC-{day}-{seq}"
    for cm in chunks:
        phase = cm["metadata"]["labels"]["zentinel.io/evidence-phase"]
        for key, value in (cm.get("data") or {}).items():
            if ".part" in key:  # a split item is written whole
                continue
            assert (root / phase / Path(*key.split("__"))).read_bytes() == value.encode(), key
    print("\n".join(sorted(str(p.relative_to(out)) for p in root.rglob("*") if p.is_file())))
    exported_logs = [p.read_text() for p in (root / "detection" / "logs").rglob("*.log")]
    assert any("Failed to load configuration file" in text for text in exported_logs)
    assert (root / "detection" / "config.kdl").read_text() == configs.GOOD
    assert "manifest verified" in run.stdout

    # A chunk whose content no longer matches its manifest is reported, and the exit code says so.
    listed = manifest(name, "resolution", [{"tamper-check.txt": "as collected\n"}])
    kube.apply(chunk(name, "resolution", 99, {"MANIFEST.json": listed, "tamper-check.txt": "edited\n"}), namespace)
    run = zentinel(kube, "evidence", name, "-n", namespace, "--out", str(tmp_path / "again"), "-o", "json")
    report = json.loads(run.stdout)
    assert run.returncode == 5 and report["verified"] is False
    assert {f["path"]: f["check"] for f in report["files"]}["resolution/tamper-check.txt"] == "MISMATCH"

    # The post-mortem draft follows the resolution (SEV1: due within 48 hours).
    recover(kube, namespace, name, pods)
    assert zentinel(kube, "resolve", name, "-n", namespace, "--by", "carol").returncode == 0
    wait_for(lambda: status(kube, namespace, name).get("postmortemDue"), timeout=60, what="post-mortem due date")
    settled(lambda: status(kube, namespace, name).get("postmortem"), wait=20)
    cm_name = status(kube, namespace, name).get("postmortem") or f"{name}-postmortem"
    if kube.get("configmap", cm_name, namespace) is None:
        draft = f"# Incident Post-Mortem: INC-{day}-{seq}\n\n## Summary\n- **Severity**: SEV1\n"
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": cm_name, "labels": {"zentinel.io/incident": name}},
                "data": {"postmortem.md": draft},
            },
            namespace,
        )
    expected = (kube.get("configmap", cm_name, namespace) or {})["data"]["postmortem.md"]
    printed = zentinel(kube, "postmortem", name, "-n", namespace)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.rstrip("\n") == expected.rstrip("\n")
    as_json = json.loads(zentinel(kube, "postmortem", name, "-n", namespace, "-o", "json").stdout)
    assert (as_json["configMap"], as_json["markdown"]) == (cm_name, expected)


# ------------------------------------------------------------------------ kubectl habits
def bare_incident(name: str, category: str = "ProcessCrash") -> dict[str, Any]:
    """An incident as the API stores it before the operator's first status write (no operator needed
    to list, watch or name incidents)."""
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncident",
        "metadata": {"name": name},
        "spec": {"zentinelRef": {"name": "edge"}, "category": category, "fingerprint": f"edge/{category}"},
    }


def test_output_name_jsonpath_wide_and_watch_on_the_api(kube: Kube, namespace: str) -> None:
    kube.apply(bare_incident("inc-20261127-001"), namespace)
    kube.apply(bare_incident("inc-20261127-002", "HighErrorRate"), namespace)

    named = zentinel(kube, "incidents", "-n", namespace, "-o", "name")
    assert (named.returncode, named.stdout) == (
        0,
        "zentinelincident.zentinel.io/inc-20261127-001\nzentinelincident.zentinel.io/inc-20261127-002\n",
    ), named.stderr
    # kubectl prints the same names for the same objects.
    by_kubectl = kube.run("get", "zentinelincidents", "-n", namespace, "-o", "name").stdout
    assert by_kubectl == named.stdout
    template = "jsonpath={range .items[*]}{.metadata.name}={.spec.category}{'\\n'}{end}".replace("'", '"')
    picked = zentinel(kube, "incidents", "-n", namespace, "-o", template)
    assert picked.stdout == "inc-20261127-001=ProcessCrash\ninc-20261127-002=HighErrorRate\n", picked.stderr
    names = zentinel(kube, "incidents", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}").stdout
    kubectl_names = kube.run(
        "get", "zentinelincidents", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout
    assert names == kubectl_names == "inc-20261127-001 inc-20261127-002"
    shown = zentinel(kube, "show", "inc-20261127-002", "-n", namespace, "-o", "jsonpath={.metadata.namespace}")
    assert shown.stdout == namespace
    wide = zentinel(kube, "incidents", "-n", namespace, "-o", "wide")
    assert rows(wide.stdout)[0][-4:] == ["COUNT", "ESCALATED", "DETECTED", "SUMMARY"], wide.stderr

    # -w: the table, then a row for each change, as the API's watch reports it. Bounded by --timeout
    # (the API server ends the watch); the test reads until the rows it waits for arrive.
    cmd = [str(BIN / "zentinelctl"), "incidents", "-w", "--timeout", "120", "-n", namespace]
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline().split() for _ in range(3)]
        assert [r[0] for r in first] == ["NAME", "inc-20261127-001", "inc-20261127-002"]
        kube.apply(bare_incident("inc-20261127-003", "TrafficSpike"), namespace)
        added = proc.stdout.readline().split()
        assert added[:3] == ["inc-20261127-003", "<none>", "TrafficSpike"]
        kube.run("patch", "zinc", "inc-20261127-001", "-n", namespace, "--type=merge", "-p", '{"spec":{"source":"x"}}')
        modified = proc.stdout.readline().split()
        assert modified[0] == "inc-20261127-001"
        kube.run("delete", "zinc", "inc-20261127-002", "-n", namespace)
        assert proc.stdout.readline().split()[0] == "inc-20261127-002"
    finally:
        proc.terminate()
        proc.wait(30)
    # --timeout ends it by itself, with exit 0.
    bounded = zentinel(kube, "incidents", "-n", namespace, "-w", "--timeout", "1", "-o", "name")
    assert bounded.returncode == 0, bounded.stderr
    assert bounded.stdout.splitlines() == [
        "zentinelincident.zentinel.io/inc-20261127-001",
        "zentinelincident.zentinel.io/inc-20261127-003",
    ]


def test_as_impersonates_a_user_and_a_group(kube: Kube, namespace: str) -> None:
    """The test cluster authorizes with RBAC (Node,RBAC), so the impersonated user's rights show."""
    kube.apply(bare_incident("inc-20261127-001"), namespace)
    denied = zentinel(kube, "incidents", "-n", namespace, "--as", "nobody@example.com")
    assert denied.returncode == 1
    assert 'User "nobody@example.com" cannot list resource "zentinelincidents"' in denied.stderr
    assert "API 403" in denied.stderr
    # Same for a write: the patch is refused as that user.
    acked = zentinel(kube, "ack", "inc-20261127-001", "-n", namespace, "--by", "x", "--as", "nobody@example.com")
    assert acked.returncode == 1 and 'User "nobody@example.com" cannot get resource' in acked.stderr
    # With a group RBAC lets do everything, the same user lists them.
    allowed = zentinel(
        kube, "incidents", "-n", namespace, "-o", "name", "--as", "nobody@example.com", "--as-group", "system:masters"
    )
    assert (allowed.returncode, allowed.stdout) == (0, "zentinelincident.zentinel.io/inc-20261127-001\n"), (
        allowed.stderr
    )
    # A RoleBinding for the user alone: allowed without the group; options after the subcommand work too.
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "incident-reader"},
            "rules": [{"apiGroups": ["zentinel.io"], "resources": ["zentinelincidents"], "verbs": ["list"]}],
        },
        namespace,
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "incident-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "incident-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader@example.com"}],
        },
        namespace,
    )
    reader = wait_for(
        lambda: (r := zentinel(kube, "incidents", "-n", namespace, "--as", "reader@example.com")).returncode == 0 and r,
        timeout=30,
        what="the RoleBinding in effect",
    )
    assert reader and "inc-20261127-001" in reader.stdout


def test_notify_test_reports_each_receiver_and_never_prints_a_secret(
    kube: Kube, namespace: str, receivers: Any
) -> None:
    import base64

    secret_url = receivers.url("/hooks/T0SECRETPATH/B0TOKEN")
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hook"},
            "type": "Opaque",
            "data": {
                "url": base64.b64encode(secret_url.encode()).decode(),
                "token": base64.b64encode(b"tok-s3cr3t-value").decode(),
            },
        },
        namespace,
    )
    receivers.script("/down", 503)
    spec = {
        "receivers": [
            {"name": "plain", "type": "Webhook", "url": receivers.url("/plain")},
            {
                "name": "secret",
                "type": "Webhook",
                "secretRef": {"name": "hook", "key": "url"},
                "tokenSecretRef": {"name": "hook", "key": "token"},
            },
            {"name": "down", "type": "Webhook", "url": receivers.url("/down")},
            {"name": "chat", "type": "Slack", "secretRef": {"name": "no-such-secret", "key": "url"}},
        ],
        "escalation": {"sev1": {"primary": ["plain", "secret", "down", "chat"]}},
    }
    kube.apply(policy(**spec), namespace)

    run = zentinel(kube, "notify", "test", "edge", "-n", namespace, "--timeout", "10")
    assert run.returncode == 1, run.stderr
    table = {r[0]: r[1:] for r in rows(run.stdout)[1:5]}
    assert table["plain"][:3] == ["Webhook", "OK", "delivered"]
    assert table["secret"][:3] == ["Webhook", "OK", "delivered"]
    assert table["down"][:4] == ["Webhook", "FAILED", "HTTP", "503"]
    assert table["chat"][:2] == ["Slack", "FAILED"] and "no-such-secret" in " ".join(table["chat"])
    assert run.stdout.rstrip().endswith("2 of 4 receivers of edge failed.")
    for secret in ("T0SECRETPATH", "B0TOKEN", "tok-s3cr3t-value"):
        assert secret not in run.stdout + run.stderr

    (plain,) = receivers.got("/plain")
    body = plain.json
    assert body["event"] == "trigger" and body["incident"]["severity"] == "SEV4"
    assert "Test notification from `zentinelctl notify test edge`" in body["incident"]["summary"]
    (sent,) = receivers.got("/hooks/T0SECRETPATH/B0TOKEN")
    assert sent.headers["Authorization"] == "Bearer tok-s3cr3t-value"
    assert len(receivers.got("/down")) == 1  # one attempt: a test reports, it does not retry

    # All receivers working: exit 0; -o json for scripts.
    working = {"receivers": spec["receivers"][:2], "escalation": {"sev1": {"primary": ["plain", "secret"]}}}
    kube.apply(policy(**working), namespace)
    good = zentinel(kube, "notify", "test", "edge", "-n", namespace, "-o", "json")
    assert good.returncode == 0, good.stdout + good.stderr
    assert [(c["receiver"], c["ok"]) for c in json.loads(good.stdout)] == [("plain", True), ("secret", True)]
    missing = zentinel(kube, "notify", "test", "nope", "-n", namespace)
    assert missing.returncode == 3 and 'ZentinelIncidentPolicy "nope" not found' in missing.stderr


def test_version_and_completion_from_the_installed_scripts(tmp_path: Path) -> None:
    version = zentinel(None, "--version")
    assert version.returncode == 0 and version.stdout.startswith("zentinelctl ")
    assert zentinel(None, "--version", script="kubectl-zentinel").stdout.startswith("kubectl zentinel ")
    script = zentinel(None, "completion", "bash").stdout
    path = tmp_path / "c.bash"
    path.write_text(script)
    # Completing in a real bash: `zentinelctl no<TAB>` offers notify, `zentinelctl notify <TAB>` offers test.
    probe = (
        f"source {path}; "
        "COMP_WORDS=(zentinelctl no); COMP_CWORD=1; COMP_LINE='zentinelctl no'; COMP_POINT=${#COMP_LINE}; "
        '_shtab_zentinelctl zentinelctl no zentinelctl; echo "${COMPREPLY[@]}"; '
        "COMP_WORDS=(zentinelctl notify ''); COMP_CWORD=2; COMP_LINE='zentinelctl notify '; COMP_POINT=${#COMP_LINE}; "
        '_shtab_zentinelctl zentinelctl "" notify; echo "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["notify", "test"], done.stdout
