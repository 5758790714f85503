"""Real data plane on the process node: Deployments of the real ``zentinel`` and of the test backend.

Pods of these Deployments tolerate the process node's taint and select it, so the process kubelet
(:mod:`zentinel_devcluster.kubelet`) runs them as local processes on their own loopback pod IPs.
Configs name the backend pods by IP: nothing here sends traffic off the machine.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from zentinel_devcluster import kubelet

from . import configs
from .kube import Kube, deployment_manifest, wait_for

HTTP_PORT = 8080
ADMIN_PORT = 9090
METRICS_PORT = 9091
TLS_PORT = 8443
BACKEND_PORT = 8000
IMAGE = "ghcr.io/zentinelproxy/zentinel:0.6.45"


def _on_process_node(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeSelector": {"type": "process"},
        "tolerations": [{**kubelet.TAINT, "operator": "Equal"}],
        "terminationGracePeriodSeconds": 2,
        **spec,
    }


def _deployment(name: str, replicas: int, pod_spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return deployment_manifest(name, replicas, _on_process_node(pod_spec), labels)


def backend_deployment(name: str = "api", replicas: int = 3) -> dict[str, Any]:
    """The test backend (``zentinel_devcluster.backend``), told how to answer by a pod annotation."""
    return _deployment(
        name,
        replicas,
        {
            "containers": [
                {
                    "name": "backend",
                    "image": f"{kubelet.BACKEND_IMAGE}:dev",
                    "ports": [{"name": "http", "containerPort": BACKEND_PORT}],
                    "readinessProbe": {"tcpSocket": {"port": BACKEND_PORT}, "periodSeconds": 1},
                }
            ]
        },
        {"app": name},
    )


def zentinel_deployment(
    name: str = "edge",
    replicas: int = 3,
    *,
    config_map: str = "edge-config",
    tls_secret: str | None = None,
) -> dict[str, Any]:
    """The real Zentinel with its KDL config mounted from ``config_map`` (and a TLS Secret)."""
    mounts = [{"name": "config", "mountPath": "/etc/zentinel"}]
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": config_map}}]
    if tls_secret:
        mounts.append({"name": "tls", "mountPath": "/etc/zentinel-tls", "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": tls_secret}})
    container = {
        "name": "zentinel",
        "image": IMAGE,
        "args": ["-c", "/etc/zentinel/zentinel.kdl"],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "admin", "containerPort": ADMIN_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": ADMIN_PORT}, "periodSeconds": 1},
        "volumeMounts": mounts,
    }
    return _deployment(name, replicas, {"containers": [container], "volumes": volumes}, {"app": name})


def config(
    targets: list[str],
    *,
    auto_reload: bool = False,
    rate_limit: dict[str, int] | None = None,
    tls: bool = False,
    extra_routes: str = "",
    health_check: bool = True,
) -> str:
    """A KDL v2 config real Zentinel 0.6.45 runs: traffic on :8080 to ``targets``, admin on :9090.

    With ``health_check`` the upstream has an active HTTP check on ``/healthz``: Zentinel then stops
    sending to targets that fail it (and answers 500 when none is left), and the operator probes the
    targets on that path (0.6.45 reports each one as ``unknown``)."""
    health = (
        "        health-check {\n"
        '            type "http" {\n                path "/healthz"\n'
        "                expected-status 200\n            }\n"
        "            interval-secs 2\n            timeout-secs 1\n            unhealthy-threshold 2\n        }\n"
        if health_check
        else ""
    )
    target_lines = "\n".join(f'        target "{t}" weight=1' for t in targets)
    policies = ""
    if rate_limit:
        policies = (
            "        policies {\n            rate-limit {\n"
            + "".join(f"                {k} {v}\n" for k, v in rate_limit.items())
            + "            }\n        }\n"
        )
    tls_listener = ""
    if tls:
        tls_listener = f"""    listener "https" {{
        address "0.0.0.0:{TLS_PORT}"
        protocol "https"
        tls {{
            cert-file "/etc/zentinel-tls/tls.crt"
            key-file "/etc/zentinel-tls/tls.key"
        }}
    }}
"""
    return f"""// Edge proxy on the process node: the real zentinel in front of the test backends.
schema-version "1.0"

system {{
    worker-threads 2
    max-connections 10000
    graceful-shutdown-timeout-secs 1
    auto-reload {"#true" if auto_reload else "#false"}
}}

listeners {{
    listener "http" {{
        address "0.0.0.0:{HTTP_PORT}"
        protocol "http"
    }}
    listener "admin" {{
        address "0.0.0.0:{ADMIN_PORT}"
        protocol "http"
    }}
{tls_listener}}}

observability {{
    metrics {{
        enabled #true
        address "0.0.0.0:{METRICS_PORT}"
        path "/metrics"
    }}
}}

routes {{
    route "health" {{
        priority 1000
        matches {{
            path "/health"
        }}
        service-type "builtin"
        builtin-handler "health"
    }}
    route "admin-upstreams" {{
        priority 1000
        matches {{
            path "/admin/upstreams"
        }}
        service-type "builtin"
        builtin-handler "upstreams"
    }}
    route "admin-config" {{
        priority 1000
        matches {{
            path "/admin/config"
        }}
        service-type "builtin"
        builtin-handler "config"
    }}
{extra_routes}    route "api" {{
        priority 10
        matches {{
            path-prefix "/"
        }}
        upstream "api"
{policies}    }}
}}

upstreams {{
    upstream "api" {{
{target_lines}
{health}    }}
}}

limits {{
    max-total-connections 10000
    max-connections-per-client 1000
}}
"""


def zentinel_object(
    name: str = "edge", *, reload_mode: str = "RollingRestart", tls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": name, "labels": {"tier": "edge"}},
        "spec": {
            "workload": {"name": name, "container": "zentinel"},
            "config": {"configMapName": f"{name}-config", "reloadMode": reload_mode},
            "admin": {"port": ADMIN_PORT, "metricsPort": METRICS_PORT},
            "tls": tls or [],
        },
    }


def paging_policy(receiver_url: str, **spec: Any) -> dict[str, Any]:
    """A policy for the ``tier: edge`` Zentinels paging one webhook receiver (``oncall``) at every severity."""
    return configs.edge_policy(
        receivers=[{"name": "oncall", "type": "Webhook", "url": receiver_url}],
        escalation={s: {"primary": ["oncall"]} for s in ("sev1", "sev2", "sev3", "sev4")},
        **spec,
    )


def ready_pods(kube: Kube, namespace: str, app: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    """``count`` pods of ``app`` Running and Ready (their real processes answer their probes)."""

    def probe() -> list[dict[str, Any]]:
        pods = [
            p
            for p in kube.list("pods", namespace, f"app={app}")
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", [])
            )
        ]
        return pods if len(pods) == count else []

    return wait_for(probe, timeout=timeout, interval=0.5, what=f"{count} Ready pods of {app}")


def pod_ips(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["status"]["podIP"] for p in pods)


def set_backend_mode(kube: Kube, namespace: str, pod: str, mode: str) -> None:
    """Tell one backend pod how to answer: ``ok``, ``error``, ``error:0.33``, ``slow:2``, ``refuse``."""
    kube.run("annotate", "pod", pod, "-n", namespace, f"{kubelet.BACKEND_MODE_ANNOTATION}={mode}", "--overwrite")


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One request; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def live_config(pod_ip: str) -> dict[str, Any]:
    """What the process runs, from its own ``/admin/config``."""
    status, body = get(f"http://{pod_ip}:{ADMIN_PORT}/admin/config")
    assert status == 200, body[:500]
    doc: dict[str, Any] = json.loads(body)
    return doc


class Traffic:
    """Requests to the Zentinel pods' listener from the bounded load generator, in one-second runs.

    Each run is :func:`zentinel_devcluster.loadgen.run` (loopback only, bounded rate and duration); the
    runs stop when :meth:`stop` is called or after ``max_seconds``, whichever comes first. Counts by
    status accumulate in :attr:`counts`.
    """

    def __init__(self, urls: Callable[[], list[str]], rps: float, *, max_seconds: float = 600) -> None:
        self.urls = urls
        self.rps = rps
        self.max_seconds = max_seconds
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from zentinel_devcluster import loadgen

        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            urls = self.urls()
            if not urls:
                self._stop.wait(0.5)
                continue
            try:
                summary = loadgen.run(urls, rate=self.rps, duration=1.0, concurrency=48, timeout=3.0)
            except Exception:  # a pod replaced mid-run: the next run takes the new IPs
                self._stop.wait(0.2)
                continue
            for key, value in summary.to_dict()["counts"].items():
                self.counts[str(key)] += int(value)

    def set_rate(self, rps: float) -> None:
        self.rps = rps

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
