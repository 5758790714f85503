"""Helpers for integration tests against the local control plane."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Kube:
    """kubectl against one cluster, as a test would type it."""

    def __init__(self, kubectl: Path, kubeconfig: Path) -> None:
        self.kubectl_path = kubectl
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.kubectl_path), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def apply(self, manifest: dict[str, Any] | str, namespace: str | None = None) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        self.run(*args, input=text)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def status(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        """The object's status; empty while the object or its first status write does not exist yet."""
        status: dict[str, Any] = (self.get(kind, name, namespace) or {}).get("status") or {}
        return status

    def list(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = json.loads(self.run(*args).stdout)["items"]
        return items

    def patch_status(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        self.run(
            "patch",
            kind,
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """The status condition ``type_`` of ``obj``, if it has one."""
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def open_incident(
    kube: Kube,
    namespace: str,
    category: str = "ProcessCrash",
    also: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any] | None:
    """An incident of ``category`` the operator has recorded (it has a state) and not resolved."""
    for inc in kube.list("zentinelincidents", namespace):
        st = inc.get("status") or {}
        if inc["spec"]["category"] == category and st.get("state") and not st.get("resolvedAt") and also(inc):
            return inc
    return None


def wait_for(probe: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.5, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def deployment(
    name: str,
    *,
    replicas: int = 3,
    labels: dict[str, str] | None = None,
    container: str = "zentinel",
    memory_limit: str | None = None,
) -> dict[str, Any]:
    labels = labels or {"app": name}
    resources = {"limits": {"memory": memory_limit}} if memory_limit else {}
    container_spec = {
        "name": container,
        "image": "ghcr.io/zentinelproxy/zentinel:0.6.45",
        "ports": [{"name": "admin", "containerPort": 9090}],
        "resources": resources,
    }
    return deployment_manifest(name, replicas, {"containers": [container_spec]}, labels)


def deployment_manifest(name: str, replicas: int, pod_spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """A Deployment of ``pod_spec`` rolling one pod at a time (maxUnavailable 1, maxSurge 1)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def running_pods(kube: Kube, namespace: str, selector: str, count: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]]:
        pods = [
            p
            for p in kube.list("pods", namespace, selector)
            if p.get("status", {}).get("phase") == "Running"
            and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]
        return pods if len(pods) == count else []

    return wait_for(probe, timeout=60, what=f"{count} Running pods matching {selector}")
