"""Every runbook procedure end to end on the real data plane: real ``zentinel`` processes in front of
real backend processes, run by the process kubelet; the operator as a real process.

Each test injects the fault the way it happens (a bad config rolled out, backends refusing or
answering 500, a slow backend, a certificate near expiry, a flood), and asserts the incident the
operator records, the action it takes, that the real proxy recovered (its own answers, its own
``/admin/config``, the certificate it serves) and the incident's state. Time to detect and time to
mitigate go to ``$ZENTINEL_E2E_FIGURES`` (JSON lines); ``scripts/runbook-e2e`` renders them into
``docs/runbook-e2e.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import certs, configs, realpods
from support.kube import Kube, condition, wait_for
from support.operator import OperatorProcess
from zentinel_devcluster import tools
from zentinel_devcluster.cluster import Cluster
from zentinel_operator.core.zconfig import config_revision

pytestmark = pytest.mark.integration

SAN = "edge.example.com"
BAD_CONFIG_LINE = "\nbogus-block {\n    x 1\n}\n"  # an unknown top-level block: Zentinel refuses the file


def colliding(text: str) -> str:
    """The metrics server moved onto the listener's port: KDL the operator's checks accept, but real
    Zentinel refuses at start ("Initial configuration validation failed") and exits: a crash loop
    that only the process and its log can show."""
    bad = text.replace(f'address "0.0.0.0:{realpods.METRICS_PORT}"', f'address "0.0.0.0:{realpods.HTTP_PORT}"')
    assert bad != text
    return bad


@pytest.fixture(scope="module", autouse=True)
def real_zentinel() -> Path:
    binary = tools.zentinel_binary()
    if not binary.exists():
        pytest.fail(
            f"the real zentinel is not built ({binary}): scripts/setup builds it (`scripts/cluster build-zentinel`)"
        )
    return binary


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"ZENTINEL_OPERATOR_SCAN_INTERVAL": "1"}


# ----------------------------------------------------------------------------- figures


def figures_file() -> Path | None:
    path = os.environ.get("ZENTINEL_E2E_FIGURES")
    return Path(path) if path else None


@dataclasses.dataclass
class Clock:
    """Seconds from the injected fault to what the test saw (polled every 0.25 s)."""

    scenario: str
    procedure: str
    injected: float = 0.0
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)

    def inject(self) -> None:
        self.injected = time.monotonic()

    def mark(self, what: str) -> float:
        seconds = round(time.monotonic() - self.injected, 2)
        self.figures[what] = seconds
        return seconds

    def write(self, **facts: Any) -> None:
        path = figures_file()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(
                json.dumps({"scenario": self.scenario, "procedure": self.procedure, **self.figures, **facts}) + "\n"
            )


# ----------------------------------------------------------------------------- the edge


def policy(actions: dict[str, Any], **remediation: Any) -> dict[str, Any]:
    return realpods.paging_policy(
        "http://127.0.0.1:9/oncall",
        # A test's traffic is tens of requests a second, judged every second: 5 is enough to judge.
        thresholds={"minRequests": 5},
        lifecycle={"resolveAfter": "5s", "reopenWindow": "10m"},
        remediation={
            "defaultMode": "Off",
            "cooldown": "0s",
            "provenGoodAfter": "3s",
            "verifyTimeout": "60s",
            "holdOffAfterChange": "0s",
            "actions": actions,
            **remediation,
        },
    )


@dataclasses.dataclass
class Edge:
    kube: Kube
    namespace: str
    targets: list[str]
    backends: list[dict[str, Any]]
    traffic: realpods.Traffic | None = None

    def pods(self) -> list[dict[str, Any]]:
        return [
            p for p in self.kube.list("pods", self.namespace, "app=edge") if not p["metadata"].get("deletionTimestamp")
        ]

    def ips(self) -> list[str]:
        return sorted(p["status"]["podIP"] for p in self.pods() if (p.get("status") or {}).get("podIP"))

    def urls(self) -> list[str]:
        return [f"http://{ip}:{realpods.HTTP_PORT}/api/x" for ip in self.ips()]

    def config_text(self) -> str:
        cm = self.kube.get("configmap", "edge-config", self.namespace) or {}
        return str(cm["data"]["zentinel.kdl"])

    def write_config(self, text: str) -> None:
        self.kube.run(
            "patch", "configmap", "edge-config", "-n", self.namespace, "--type=merge",
            "-p", json.dumps({"data": {"zentinel.kdl": text}}),
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        return self.kube.status("zen", "edge", self.namespace)

    def incident(self, category: str) -> dict[str, Any] | None:
        for inc in self.kube.list("zentinelincidents", self.namespace):
            if inc["spec"]["category"] == category and (inc.get("status") or {}).get("state"):
                return inc
        return None

    def record(self, category: str, action: str, state: str) -> dict[str, Any] | None:
        inc = self.incident(category)
        for rec in ((inc or {}).get("status") or {}).get("remediations", []):
            if rec["action"] == action and rec["state"] == state:
                return rec
        return None

    def live_configs(self) -> list[dict[str, Any]] | None:
        """What each pod runs (its ``/admin/config``); None while a pod a rolling restart is replacing
        does not answer (listed before its deletion, or started but not listening yet)."""
        try:
            return [realpods.live_config(ip)["config"] for ip in self.ips()]
        except OSError:
            return None

    def all_ready(self, count: int = 3) -> bool:
        pods = self.pods()
        return len(pods) == count and all((condition(p, "Ready") or {}).get("status") == "True" for p in pods)


@pytest.fixture
def edge_factory(kube: Kube, namespace: str, operator: OperatorProcess) -> Iterator[Callable[..., Edge]]:
    made: list[Edge] = []

    def make(
        *,
        reload_mode: str = "RollingRestart",
        auto_reload: bool = False,
        tls: bool = False,
        rps: float = 60,
        health_check: bool = True,
        actions: dict[str, Any],
        **remediation: Any,
    ) -> Edge:
        kube.apply(policy(actions, **remediation), namespace)
        kube.apply(realpods.backend_deployment("api", replicas=3), namespace)
        backends = realpods.ready_pods(kube, namespace, "api", 3)
        targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in realpods.pod_ips(backends)]
        text = realpods.config(targets, auto_reload=auto_reload, tls=tls, health_check=health_check)
        kube.apply(configs.configmap("edge-config", text), namespace)
        kube.apply(realpods.zentinel_deployment("edge", 3, tls_secret="edge-tls" if tls else None), namespace)
        realpods.ready_pods(kube, namespace, "edge", 3)
        tls_refs = None
        if tls:
            issuer = {"type": "CASecret", "caSecretName": "edge-ca"}
            tls_refs = [{"name": "public", "secretName": "edge-tls", "port": realpods.TLS_PORT, "serverName": SAN}]
            tls_refs[0]["issuer"] = issuer
        kube.apply(realpods.zentinel_object("edge", reload_mode=reload_mode, tls=tls_refs), namespace)
        e = Edge(kube, namespace, targets, backends)
        e.traffic = realpods.Traffic(e.urls, rps)
        made.append(e)
        wait_for(lambda: e.status().get("summary", {}).get("pods") == "3/3", timeout=60, what="Zentinel status 3/3")
        return e

    yield make
    for e in made:
        if e.traffic is not None:
            e.traffic.stop()


def wait_proven_good(edge: Edge) -> str:
    good = config_revision(edge.config_text())
    wait_for(
        lambda: edge.status().get("lastKnownGoodRevision") == good,
        timeout=90,
        what=f"revision {good} proven last known good",
    )
    return good


# A bad config rolled out crashes the first new pod: a ProcessCrash and, from its log, a ConfigError. The
# rollback runs once, for whichever incident the pass saw first (the other waits for it), so either may own it.
ROLLOUT_CRASH = ("ProcessCrash", "ConfigError")


def rollback_started(edge: Edge) -> tuple[str, dict[str, Any]]:
    """(owning category, record) of the rollback once it ran; no other incident of the crash ran one."""

    def started() -> tuple[str, dict[str, Any]] | None:
        for category in ROLLOUT_CRASH:
            for state in ("Verifying", "Succeeded"):
                if rec := edge.record(category, "configRollback", state):
                    return category, rec
        return None

    found = wait_for(started, timeout=120, interval=0.25, what="the rollback")
    assert found is not None
    owner = found[0]
    others = [c for c in ROLLOUT_CRASH if c != owner]
    assert not any(edge.record(c, "configRollback", s) for c in others for s in ("Running", "Verifying", "Succeeded"))
    return found


def rollback_verified(edge: Edge, clock: Clock, good: str, category: str = "ProcessCrash") -> dict[str, Any]:
    """The incident's rollback Succeeded (verified), and the ConfigMap holds the last known good revision."""
    rec = wait_for(
        lambda: edge.record(category, "configRollback", "Succeeded"), timeout=120, interval=0.25,
        what="the rollback verified",
    )  # fmt: skip
    clock.mark("mitigate_s")
    assert rec is not None and config_revision(edge.config_text()) == good
    assert rec["config"]["toRevision"] == good and rec["config"]["fromRevision"] != good  # typed, not text
    return rec


def targets_of(config: dict[str, Any]) -> list[str]:
    return sorted(t["address"] for u in config["upstreams"] for t in u["targets"])


def live_targets(ip: str) -> list[str]:
    return targets_of(realpods.live_config(ip)["config"])


# ----------------------------------------------------------------------------- config


def test_bad_config_rolled_out_crashes_new_pods_and_is_rolled_back(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(reload_mode="RollingRestart", actions={"configRollback": {"mode": "Automatic"}})
    good = wait_proven_good(edge)
    clock = Clock("bad config, RollingRestart", "Process crash → config error → rollback to last known good")

    clock.inject()
    edge.write_config(colliding(edge.config_text()))
    edge.kube.run("rollout", "restart", "deployment/edge", "-n", edge.namespace)

    inc = wait_for(lambda: edge.incident("ProcessCrash"), timeout=90, interval=0.25, what="ProcessCrash incident")
    clock.mark("detect_s")
    # The new pods really failed, and the operator read why from their own logs (kubectl logs --previous,
    # served by the process kubelet): the real process's message is in the incident's evidence.
    evidence = " ".join(e for f in inc["status"].get("findings", []) for e in f.get("evidence", []))
    assert "CrashLoopBackOff" in evidence and "last exit 1 Error" in evidence, evidence
    assert "metrics server also binds" in evidence and "crash follows a config change" in evidence, evidence

    owner, _ = rollback_started(edge)
    rec = rollback_verified(edge, clock, good, category=owner)
    wait_for(edge.all_ready, timeout=60, what="3 Ready pods")
    for ip in edge.ips():
        assert live_targets(ip) == sorted(edge.targets)
        assert realpods.get(f"http://{ip}:{realpods.HTTP_PORT}/api/x")[0] == 200
    mitigated = edge.incident(owner) or {}
    assert condition(mitigated, "Mitigated")["status"] == "True"  # type: ignore[index]
    clock.write(category=owner, severity=inc["status"]["severity"], action=f"configRollback ({rec['target']})")


def test_bad_config_rolled_out_under_auto_reload_restarts_the_crash_looping_pods_on_the_rollback(
    edge_factory: Callable[..., Edge],
) -> None:
    # The demo's `crash`: AutoReload, and a restart puts new pods on the bad config. They crash-loop and
    # poll no file, so the rollback alone would reach them only at the kubelet's next back-off (up to
    # 5 min in a cluster); the operator restarts them on the restored config. The rollback waits for an
    # approval here, given once the new pods crash-loop: else the old pods' rejected reload can get it rolled
    # back (a ConfigError, at once with event passes) before any new pod has started on the bad config.
    edge = edge_factory(
        reload_mode="AutoReload", auto_reload=True, actions={"configRollback": {"mode": "NeedsApproval"}}
    )
    good = wait_proven_good(edge)
    clock = Clock(
        "bad config rolled out, AutoReload",
        "Process crash → config error → rollback (approved) → crash-looping pods restarted",
    )

    clock.inject()
    edge.write_config(colliding(edge.config_text()))
    edge.kube.run("rollout", "restart", "deployment/edge", "-n", edge.namespace)
    inc = wait_for(lambda: edge.incident("ProcessCrash"), timeout=90, interval=0.25, what="ProcessCrash incident")
    clock.mark("detect_s")

    def crash_looping() -> list[str]:
        return [
            p["metadata"]["name"]
            for p in edge.pods()
            for c in (p.get("status") or {}).get("containerStatuses") or []
            if ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        ]

    wait_for(crash_looping, timeout=90, interval=0.25, what="a new pod crash-looping on the bad config")

    def pending() -> tuple[str, str] | None:
        for category in ROLLOUT_CRASH:
            if rec := edge.record(category, "configRollback", "PendingApproval"):
                return (edge.incident(category) or {})["metadata"]["name"], rec["id"]
        return None

    found = wait_for(pending, timeout=60, interval=0.25, what="the rollback waiting for its approval")
    assert found is not None
    approval = {"spec": {"approvals": [{"actionId": found[1], "by": "e2e"}]}}
    edge.kube.run("patch", "zinc", found[0], "-n", edge.namespace, "--type=merge", "-p", json.dumps(approval))

    owner, rec = rollback_started(edge)
    assert "crash-looping pod(s) on it: " in rec["reason"], rec
    restarted = set(rec["reason"].rsplit(": ", 1)[1].split(", "))
    rec = rollback_verified(edge, clock, good, category=owner)
    assert not restarted & {p["metadata"]["name"] for p in edge.pods()}  # replaced, not waited for
    wait_for(edge.all_ready, timeout=60, what="3 Ready pods")
    for ip in edge.ips():
        assert realpods.get(f"http://{ip}:{realpods.HTTP_PORT}/api/x")[0] == 200
    clock.write(category=owner, severity=inc["status"]["severity"], action=f"configRollback ({rec['target']})")


def test_bad_config_with_auto_reload_is_rejected_and_rolled_back(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(reload_mode="AutoReload", auto_reload=True, actions={"configRollback": {"mode": "Automatic"}})
    good = wait_proven_good(edge)
    clock = Clock("bad config, AutoReload", "Config error → Zentinel rejects the reload, keeps serving → rollback")
    pods_before = {p["metadata"]["name"] for p in edge.pods()}

    clock.inject()
    # The checks pass it (it is valid KDL with known blocks): only real Zentinel's reload refuses it.
    edge.write_config(colliding(edge.config_text()))
    inc = wait_for(lambda: edge.incident("ConfigError"), timeout=60, interval=0.25, what="ConfigError incident")
    clock.mark("detect_s")
    evidence = " ".join(e for f in inc["status"].get("findings", []) for e in f.get("evidence", []))
    assert "REJECTED" in evidence, evidence
    name = sorted(pods_before)[0]
    assert "new configuration REJECTED" in edge.kube.run("logs", name, "-n", edge.namespace).stdout
    assert edge.incident("ProcessCrash") is None  # it kept serving the old config

    rec = wait_for(
        lambda: edge.record("ConfigError", "configRollback", "Succeeded"), timeout=90, interval=0.25,
        what="the rollback verified",
    )  # fmt: skip
    clock.mark("mitigate_s")
    assert config_revision(edge.config_text()) == good
    assert {p["metadata"]["name"] for p in edge.pods()} == pods_before  # delivered by auto-reload, no restart
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in edge.pods())

    def reloaded() -> bool:
        return "Configuration reload completed successfully" in edge.kube.run("logs", name, "-n", edge.namespace).stdout

    wait_for(
        reloaded,
        timeout=30, what="Zentinel reloading the rolled-back config",
    )  # fmt: skip
    for ip in edge.ips():
        assert realpods.get(f"http://{ip}:{realpods.HTTP_PORT}/api/x")[0] == 200
    clock.write(category="ConfigError", severity=inc["status"]["severity"], action=f"configRollback ({rec['target']})")


# ----------------------------------------------------------------------------- upstreams and errors


def test_every_backend_refusing_is_seen_in_zentinels_own_503s(edge_factory: Callable[..., Edge]) -> None:
    # Real 0.6.45 answers 503 for refused targets until its passive health checker marks them all down
    # (about two seconds); from then on it answers 500, counted under the same proxy_error_500 as its
    # built-in handlers' answers, which the error rate cannot tell apart (see docs/runbook-e2e.md).
    edge = edge_factory(actions={}, health_check=False)
    clock = Clock("every backend refusing", "High error rate (all upstreams unreachable) → page, resolve on recovery")

    clock.inject()
    for pod in edge.backends:
        realpods.set_backend_mode(edge.kube, edge.namespace, pod["metadata"]["name"], "refuse")
    inc = wait_for(
        lambda: (i := edge.incident("HighErrorRate")) and i["status"]["severity"] in ("SEV1", "SEV2") and i,
        timeout=60, interval=0.25, what="HighErrorRate SEV1 or SEV2",
    )  # fmt: skip
    clock.mark("detect_s")
    assert realpods.get(edge.urls()[0])[0] in (500, 503)  # Zentinel's own answer: no upstream served it
    traffic = edge.traffic
    assert traffic is not None
    wait_for(lambda: traffic.counts["503"] > 0, timeout=10, what="Zentinel's 503s in the traffic's answers")

    for pod in edge.backends:
        realpods.set_backend_mode(edge.kube, edge.namespace, pod["metadata"]["name"], "ok")
    wait_for(
        lambda: (edge.incident("HighErrorRate") or {}).get("status", {}).get("resolvedAt"),
        timeout=60, interval=0.25, what="the incident resolved after the backends came back",
    )  # fmt: skip
    clock.mark("mitigate_s")
    wait_for(lambda: realpods.get(edge.urls()[0])[0] == 200, timeout=60, what="Zentinel serving 200 again")
    clock.write(category="HighErrorRate", severity=inc["status"]["severity"], action="page; resolved on recovery")


def test_one_backend_answering_500_is_ejected_and_put_back_after_the_ttl(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(actions={"ejectTargets": {"mode": "Automatic", "ttl": "20s", "minRemainingShare": 0.5}})
    wait_proven_good(edge)
    clock = Clock("one backend of three answering 500", "High error rate → remove the bad upstream target")
    bad = edge.backends[0]
    bad_target = f"{bad['status']['podIP']}:{realpods.BACKEND_PORT}"

    clock.inject()
    realpods.set_backend_mode(edge.kube, edge.namespace, bad["metadata"]["name"], "error")
    inc = wait_for(lambda: edge.incident("HighErrorRate"), timeout=60, interval=0.25, what="HighErrorRate")
    clock.mark("detect_s")
    assert inc["status"]["severity"] in ("SEV2", "SEV3")  # a third of the requests: the runbook's > 10 %
    rec = wait_for(
        lambda: edge.record("HighErrorRate", "ejectTargets", "Succeeded"), timeout=90, interval=0.25,
        what="the ejection verified on the live proxies",
    )  # fmt: skip
    clock.mark("mitigate_s")
    for ip in edge.ips():
        assert bad_target not in live_targets(ip)
    assert all(realpods.get(url)[0] == 200 for url in edge.urls() for _ in range(10))

    # The TTL puts it back, on the live proxies too.
    # The revert is delivered by a rolling restart: pods being replaced are read again.
    def back_everywhere() -> bool:
        configs = edge.live_configs()
        return configs is not None and all(bad_target in targets_of(c) for c in configs)

    wait_for(back_everywhere, timeout=90, interval=0.5, what="the target back on every pod after the TTL")
    clock.mark("restored_s")
    clock.write(
        category="HighErrorRate",
        severity=inc["status"]["severity"],
        action=f"ejectTargets ({rec.get('after') or rec.get('target')})",
    )


def test_a_slow_backend_is_performance_degradation_from_zentinels_histogram(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(actions={}, rps=30, health_check=False)  # a check with a 1 s timeout would eject them
    clock = Clock("slow backends", "Performance degradation (p99 from zentinel_request_duration_seconds) → page")

    clock.inject()
    for pod in edge.backends:
        realpods.set_backend_mode(edge.kube, edge.namespace, pod["metadata"]["name"], "slow:1.2")
    inc = wait_for(
        lambda: edge.incident("PerformanceDegradation"), timeout=90, interval=0.25, what="PerformanceDegradation"
    )
    clock.mark("detect_s")
    assert "p99" in (inc["status"].get("summary") or "").lower() or inc["status"].get("findings")
    for pod in edge.backends:
        realpods.set_backend_mode(edge.kube, edge.namespace, pod["metadata"]["name"], "ok")
    wait_for(
        lambda: (edge.incident("PerformanceDegradation") or {}).get("status", {}).get("resolvedAt"),
        timeout=90, interval=0.25, what="resolved after the backends are fast again",
    )  # fmt: skip
    clock.mark("mitigate_s")
    clock.write(
        category="PerformanceDegradation", severity=inc["status"]["severity"], action="page; resolved on recovery"
    )


# ----------------------------------------------------------------------------- certificates


def test_a_certificate_near_expiry_is_rotated_and_served_by_real_zentinel(
    kube: Kube, namespace: str, edge_factory: Callable[..., Edge], cluster: Cluster
) -> None:
    from zentinel_devcluster.pki import CA
    from zentinel_operator.core.certs import fingerprint_sha256

    ca = CA.create("edge e2e CA")
    ca_pem, ca_key = ca.pem()
    kube.apply(certs.tls_secret("edge-ca", ca_pem, ca_key), namespace)
    old_cert, old_key = certs.leaf(ca, [SAN], days=2)
    clock = Clock("certificate 2 days from expiry", "TLS certificate renewal → rotation → pods serve the new one")
    clock.inject()  # the expiring certificate is there from the start: detection is the first passes
    kube.apply(certs.tls_secret("edge-tls", old_cert, old_key), namespace)
    # Verified when every running pod serves the new certificate: a rolling restart of three real
    # processes, about 9 s. (Old pods serving the old certificate mid-rollout once opened a second,
    # CertificateInvalid incident that rotated it again; triage no longer counts that as a fault.)
    edge = edge_factory(tls=True, actions={"certificateRotation": {"mode": "Automatic"}})

    inc = wait_for(lambda: edge.incident("CertificateExpiring"), timeout=60, interval=0.25, what="CertificateExpiring")
    clock.mark("detect_s")

    def rotation_verified() -> dict[str, Any] | None:
        failed = edge.record("CertificateExpiring", "certificateRotation", "Failed")
        assert failed is None, f"the rotation failed: {failed}"
        return edge.record("CertificateExpiring", "certificateRotation", "Succeeded")

    try:
        rec = wait_for(rotation_verified, timeout=120, interval=0.25, what="the rotation verified by a handshake")
    except AssertionError:
        print_pods_and_kubelet(kube, namespace, cluster)
        raise
    clock.mark("mitigate_s")
    new_cert = base64.b64decode((kube.get("secret", "edge-tls", namespace) or {})["data"]["tls.crt"])
    assert fingerprint_sha256(new_cert) != fingerprint_sha256(old_cert)
    # What was installed is on the record as data, and it is what the Secret holds.
    installed = [(c["issuer"], c["fingerprint"]) for c in rec["certificates"]]
    assert installed == [("CASecret", fingerprint_sha256(new_cert))]
    assert edge.incident("CertificateInvalid") is None  # the rollout's old pods were not taken for a fault
    # The rolling restart's last old pod may still be going: every pod the Deployment keeps serves the new one.
    # Verification waited for the rollout and a handshake with the new certificate: it is served now.
    served = {ip: served_fingerprint(ip) for ip in edge.ips()}
    assert edge.all_ready() and set(served.values()) == {fingerprint_sha256(new_cert)}, (
        served, fingerprint_sha256(new_cert), print_pods_and_kubelet(kube, namespace, cluster)
    )  # fmt: skip
    clock.write(category="CertificateExpiring", severity=inc["status"]["severity"], action="certificateRotation (CA)")


def print_pods_and_kubelet(kube: Kube, namespace: str, cluster: Cluster) -> None:
    """What the pods and the process kubelet did, for a scenario that failed in a long run only."""
    print(f"\n--- pods of {namespace} ---")
    print(kube.run("get", "pods", "-n", namespace, "-o", "wide", "--show-labels", check=False).stdout)
    for pod in kube.list("pods", namespace, "app=edge"):
        st = pod.get("status") or {}
        print(pod["metadata"]["name"], pod["metadata"].get("deletionTimestamp"), st.get("podIP"), st.get("phase"))
        for c in st.get("containerStatuses") or []:
            print("   ", c["name"], c.get("ready"), c.get("restartCount"), json.dumps(c.get("state")))
    lines = (cluster.logs / "process-kubelet.log").read_text(errors="replace").splitlines()
    print(f"--- process kubelet, lines about {namespace} (last 80) ---")
    print("\n".join([line for line in lines if namespace in line][-80:]))
    print("--- process kubelet, last 40 lines ---")
    print("\n".join(lines[-40:]))


def served_fingerprint(ip: str) -> str | None:
    import asyncio

    from zentinel_operator.signals.tls_probe import served_certificate

    probe = asyncio.run(served_certificate(ip, realpods.TLS_PORT, server_name=SAN, timeout=5))
    assert probe.ok, probe
    return probe.fingerprint


# ----------------------------------------------------------------------------- traffic


def test_a_flood_is_rate_limited_with_real_429s_and_reverted_after_the_ttl(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(
        actions={"rateLimit": {"mode": "Automatic", "ttl": "20s", "requestsPerSecond": 20, "burst": 20}}, rps=30
    )
    wait_proven_good(edge)
    time.sleep(5)  # a baseline of normal traffic
    clock = Clock("request flood", "DDoS / attack → route rate limit → Zentinel answers 429")
    assert edge.traffic is not None

    clock.inject()
    edge.traffic.set_rate(400)
    inc = wait_for(lambda: edge.incident("TrafficSpike"), timeout=60, interval=0.25, what="TrafficSpike")
    clock.mark("detect_s")
    rec = wait_for(
        lambda: edge.record("TrafficSpike", "rateLimit", "Succeeded"), timeout=90, interval=0.25,
        what="the rate limit verified",
    )  # fmt: skip
    clock.mark("mitigate_s")
    before = edge.traffic.counts["429"]
    wait_for(lambda: edge.traffic.counts["429"] > before + 50, timeout=30, what="real 429 answers under the flood")
    edge.traffic.set_rate(30)
    wait_for(
        lambda: edge.record("TrafficSpike", "rateLimit", "Reverted"), timeout=90, interval=0.5,
        what="the rate limit undone after its TTL",
    )  # fmt: skip
    clock.mark("reverted_s")
    assert "rate-limit" not in edge.config_text()
    clock.write(category="TrafficSpike", severity=inc["status"]["severity"], action=f"rateLimit ({rec['target']})")


def test_connection_limits_are_lowered_on_the_live_proxy_and_reverted(edge_factory: Callable[..., Edge]) -> None:
    limits = {"mode": "Automatic", "ttl": "20s", "maxTotalConnections": 500, "maxConnectionsPerClient": 50}
    edge = edge_factory(actions={"connectionLimits": limits}, rps=30)
    wait_proven_good(edge)
    time.sleep(5)
    clock = Clock("request flood, connection limits", "DDoS / resource limits → lower connection limits")
    assert edge.traffic is not None

    clock.inject()
    edge.traffic.set_rate(400)
    inc = wait_for(lambda: edge.incident("TrafficSpike"), timeout=60, interval=0.25, what="TrafficSpike")
    clock.mark("detect_s")
    wait_for(
        lambda: edge.record("TrafficSpike", "connectionLimits", "Succeeded"), timeout=90, interval=0.25,
        what="the connection limits verified on the live proxies",
    )  # fmt: skip
    clock.mark("mitigate_s")

    def live_limits() -> set[tuple[int, int]]:
        """(max total, per client) each Ready pod runs; a pod the restart is replacing is read again."""
        configs = edge.live_configs() or []
        return {(c["limits"]["max_total_connections"], c["limits"]["max_connections_per_client"]) for c in configs}

    wait_for(lambda: live_limits() == {(500, 50)}, timeout=30, what="500 / 50 live on every pod")
    edge.traffic.set_rate(30)

    wait_for(
        lambda: live_limits() == {(10_000, 1000)},
        timeout=90, interval=0.5, what="the original limits live again after the TTL",
    )  # fmt: skip
    clock.mark("reverted_s")
    clock.write(category="TrafficSpike", severity=inc["status"]["severity"], action="connectionLimits (500 / 50)")
