"""Simulate container failures on kwok pods by writing pod status, as a kubelet would.

kwok's stages only move Pending pods to Running, so a status written here stays until the test
(or a remediation deleting the pod) changes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from .kube import Kube


class PodStatusWriter(Protocol):
    """What writing a pod's status takes: ``support.kube.Kube`` (kubectl), or :class:`ClientKube`."""

    def patch_status(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None: ...


class ClientKube:
    """``patch_status`` through the API client (``kubernetes.client.CoreV1Api``): no kubectl start-up, for a test
    or a benchmark that must write at the operator's pace."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def patch_status(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        assert kind == "pod"
        self.core.patch_namespaced_pod_status(name, namespace, patch, _content_type="application/merge-patch+json")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container(pod: dict[str, Any]) -> tuple[str, str]:
    c = pod["spec"]["containers"][0]
    return c["name"], c["image"]


def _status(pod: dict[str, Any], ready: bool, container_status: dict[str, Any]) -> dict[str, Any]:
    value = "True" if ready else "False"
    now = _now()
    return {
        "status": {
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {
                    "type": "Ready",
                    "status": value,
                    "lastTransitionTime": now,
                    **({} if ready else {"reason": "ContainersNotReady"}),
                },
                {"type": "ContainersReady", "status": value, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": [container_status],
        }
    }


def crash_loop(
    kube: PodStatusWriter,
    pod: dict[str, Any],
    *,
    restarts: int,
    exit_code: int = 1,
    reason: str = "Error",
    message: str = "",
) -> None:
    """CrashLoopBackOff with ``restarts`` restarts; the last run ended with ``exit_code``."""
    name, image = _container(pod)
    status = {
        "name": name,
        "image": image,
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container={name}",
            }
        },
        "lastState": {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "message": message,
                "startedAt": _now(),
                "finishedAt": _now(),
            }
        },
    }
    kube.patch_status("pod", pod["metadata"]["name"], pod["metadata"]["namespace"], _status(pod, False, status))


def oom_killed(kube: PodStatusWriter, pod: dict[str, Any], *, restarts: int = 1) -> None:
    """The container was OOMKilled (exit code 137) and is restarting."""
    crash_loop(kube, pod, restarts=restarts, exit_code=137, reason="OOMKilled")


def not_ready(kube: PodStatusWriter, pod: dict[str, Any]) -> None:
    """Running but failing its readiness probe."""
    name, image = _container(pod)
    status = {
        "name": name,
        "image": image,
        "ready": False,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": _now()}},
    }
    kube.patch_status("pod", pod["metadata"]["name"], pod["metadata"]["namespace"], _status(pod, False, status))


def recover(kube: PodStatusWriter, pod: dict[str, Any], *, restarts: int | None = None) -> None:
    """Running and Ready again (restartCount kept unless given)."""
    name, image = _container(pod)
    current = (pod.get("status", {}).get("containerStatuses") or [{}])[0].get("restartCount", 0)
    status = {
        "name": name,
        "image": image,
        "ready": True,
        "started": True,
        "restartCount": current if restarts is None else restarts,
        "state": {"running": {"startedAt": _now()}},
    }
    kube.patch_status("pod", pod["metadata"]["name"], pod["metadata"]["namespace"], _status(pod, True, status))


def set_logs(
    kube: Kube, pod: dict[str, Any], container: str, current: str, previous: str | None, directory: Any
) -> None:
    """Make ``kubectl logs`` (and the operator) read these lines, through kwok's Logs object."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pod_name = pod["metadata"]["name"]

    def cri(text: str) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return "".join(f"{stamp} stderr F {line}\n" for line in text.splitlines())

    cur = directory / f"{pod_name}.log"
    cur.write_text(cri(current))
    entry: dict[str, Any] = {"containers": [container], "logsFile": str(cur)}
    if previous is not None:
        prev = directory / f"{pod_name}.previous.log"
        prev.write_text(cri(previous))
        entry["previousLogsFile"] = str(prev)
    kube.apply(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": pod_name, "namespace": pod["metadata"]["namespace"]},
            "spec": {"logs": [entry]},
        }
    )
