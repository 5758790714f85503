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

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import configs, realpods
from support.kube import Kube, condition, wait_for
from support.operator import OperatorProcess
from zentinel_devcluster import tools
from zentinel_operator.core.zconfig import config_revision

pytestmark = pytest.mark.integration

SAN = "edge.example.com"
BAD_CONFIG_LINE = "\nbogus-block {\n    x 1\n}\n"  # an unknown top-level block: Zentinel refuses the file


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
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": {
            "selector": {"matchLabels": {"tier": "edge"}},
            "lifecycle": {"resolveAfter": "5s", "reopenWindow": "10m"},
            "receivers": [{"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"}],
            "escalation": {s: {"primary": ["oncall"]} for s in ("sev1", "sev2", "sev3", "sev4")},
            "remediation": {
                "defaultMode": "Off",
                "cooldown": "0s",
                "provenGoodAfter": "3s",
                "verifyTimeout": "60s",
                "holdOffAfterChange": "0s",
                "actions": actions,
                **remediation,
            },
        },
    }


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
        actions: dict[str, Any],
        **remediation: Any,
    ) -> Edge:
        kube.apply(policy(actions, **remediation), namespace)
        kube.apply(realpods.backend_deployment("api", replicas=3), namespace)
        backends = realpods.ready_pods(kube, namespace, "api", 3)
        targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in realpods.pod_ips(backends)]
        text = realpods.config(targets, auto_reload=auto_reload, tls=tls)
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


def live_targets(ip: str) -> list[str]:
    return sorted(t["address"] for u in realpods.live_config(ip)["config"]["upstreams"] for t in u["targets"])


# ----------------------------------------------------------------------------- config


def test_bad_config_rolled_out_crashes_new_pods_and_is_rolled_back(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(reload_mode="RollingRestart", actions={"configRollback": {"mode": "Automatic"}})
    good = wait_proven_good(edge)
    clock = Clock("bad config, RollingRestart", "Process crash → config error → rollback to last known good")

    clock.inject()
    edge.write_config(edge.config_text() + BAD_CONFIG_LINE)
    edge.kube.run("rollout", "restart", "deployment/edge", "-n", edge.namespace)

    inc = wait_for(lambda: edge.incident("ProcessCrash"), timeout=90, interval=0.25, what="ProcessCrash incident")
    clock.mark("detect_s")
    # The new pod really failed: its own log says so.
    crashed = [p for p in edge.pods() if (p["status"].get("containerStatuses") or [{}])[0].get("restartCount", 0) > 0]
    assert crashed, "no pod crashed on the bad config"
    logs = edge.kube.run("logs", crashed[0]["metadata"]["name"], "-n", edge.namespace, "--previous").stdout
    assert "Failed to load configuration" in logs, logs[-2000:]

    rec = wait_for(
        lambda: edge.record("ProcessCrash", "configRollback", "Succeeded"), timeout=120, interval=0.25,
        what="the rollback verified",
    )  # fmt: skip
    clock.mark("mitigate_s")
    assert config_revision(edge.config_text()) == good
    wait_for(edge.all_ready, timeout=60, what="3 Ready pods")
    for ip in edge.ips():
        assert live_targets(ip) == sorted(edge.targets)
        assert realpods.get(f"http://{ip}:{realpods.HTTP_PORT}/api/x")[0] == 200
    inc = edge.incident("ProcessCrash") or {}
    assert condition(inc, "Mitigated")["status"] == "True"  # type: ignore[index]
    clock.write(category="ProcessCrash", severity=inc["status"]["severity"], action=f"configRollback ({rec['target']})")


def test_bad_config_with_auto_reload_is_rejected_and_rolled_back(edge_factory: Callable[..., Edge]) -> None:
    edge = edge_factory(reload_mode="AutoReload", auto_reload=True, actions={"configRollback": {"mode": "Automatic"}})
    good = wait_proven_good(edge)
    clock = Clock("bad config, AutoReload", "Config error → Zentinel keeps serving → rollback")
    pods_before = {p["metadata"]["name"] for p in edge.pods()}

    clock.inject()
    edge.write_config(edge.config_text() + BAD_CONFIG_LINE)
    inc = wait_for(lambda: edge.incident("ConfigError"), timeout=60, interval=0.25, what="ConfigError incident")
    clock.mark("detect_s")
    # Real Zentinel logged the rejection and kept serving the old config: no crash, no restart.
    name = sorted(pods_before)[0]
    wait_for(
        lambda: "REJECTED" in edge.kube.run("logs", name, "-n", edge.namespace).stdout,
        timeout=30, what="Zentinel's REJECTED log line",
    )  # fmt: skip
    assert edge.incident("ProcessCrash") is None

    rec = wait_for(
        lambda: edge.record("ConfigError", "configRollback", "Succeeded"), timeout=90, interval=0.25,
        what="the rollback verified",
    )  # fmt: skip
    clock.mark("mitigate_s")
    assert config_revision(edge.config_text()) == good
    assert {p["metadata"]["name"] for p in edge.pods()} == pods_before  # delivered by auto-reload
    assert all((p["status"]["containerStatuses"][0]["restartCount"] == 0) for p in edge.pods())
    inc = edge.incident("ConfigError") or {}
    clock.write(category="ConfigError", severity=inc["status"]["severity"], action=f"configRollback ({rec['target']})")
