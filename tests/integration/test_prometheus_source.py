"""``metricsSource: Prometheus`` end to end: a real Prometheus (built from github.com/prometheus/prometheus)
scrapes emulated Zentinel pods on their kwok pod IPs, and the operator reads their signals from
Prometheus' HTTP API instead of scraping ``/metrics`` itself.

The Zentinels here point ``admin.metricsPort`` at a port where nothing listens: a per-pod scrape
could not read a single page, so every figure the operator reports came through Prometheus.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import configs
from support.dataplane import Dataplane
from support.kube import Kube, deployment, running_pods, wait_for
from support.operator import OperatorProcess, free_port
from zentinel_devcluster import tools
from zentinel_operator.signals.gather import gather
from zentinel_operator.signals.prometheus import build_queries

# Until gather() is handed the operator's PrometheusSource, a Zentinel's metricsSource is not acted on.
WIRED = "prometheus" in inspect.signature(gather).parameters
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not WIRED, reason="signals.gather.gather() takes no PrometheusSource yet (wiring pending)"),
]

NO_METRICS_PORT = 9999  # nothing listens there: the operator's own scrape of /metrics would fail
WINDOW_SECONDS = 10  # increase() range: ten of Prometheus' 1s scrape intervals


class PrometheusServer:
    """A real Prometheus on loopback with a generated config (static targets, reloaded on demand)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.log_file = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_config({})

    def write_config(self, targets: dict[tuple[str, str], str]) -> None:
        """``targets``: ``(namespace, pod) -> "ip:port"``, each scraped with its namespace and pod labels."""
        static = [
            {"targets": [address], "labels": {"namespace": ns, "pod": pod}}
            for (ns, pod), address in sorted(targets.items())
        ]
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "zentinel", "metrics_path": "/metrics", "static_configs": static}],
        }
        self.config.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def start(self) -> None:
        binary = tools.binary("prometheus")
        out = self.log_file.open("wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_for(self._ready, timeout=60, what="Prometheus /-/ready")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def scrape(self, targets: dict[tuple[str, str], str]) -> None:
        """Scrape exactly these targets from now on (config rewritten, then ``POST /-/reload``)."""
        self.write_config(targets)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def api_queries_served(self) -> float:
        """Prometheus' own count of ``/api/v1/query`` requests (from its ``/metrics``)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    tools.ensure(["prometheus"])
    return tools.binary("prometheus")


@pytest.fixture
def prometheus(prometheus_binary: Path, tmp_path: Path) -> Iterator[PrometheusServer]:
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    server = PrometheusServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def operator_env(prometheus: PrometheusServer) -> dict[str, str]:
    return {
        "ZENTINEL_OPERATOR_PROMETHEUS_URL": prometheus.url,
        "ZENTINEL_OPERATOR_PROMETHEUS_WINDOW": str(WINDOW_SECONDS),
    }


def policy() -> dict[str, Any]:
    return configs.edge_policy(lifecycle={"resolveAfter": "3s", "reopenWindow": "10m"})


def zentinel(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": name, "labels": {"tier": "edge"}},
        "spec": {
            "workload": {"name": name},
            "config": {"configMapName": "edge-config"},
            "admin": {"port": 9090, "metricsPort": NO_METRICS_PORT},
            "metricsSource": "Prometheus",
        },
    }


def start_dataplane(kube: Kube, namespace: str, name: str, replicas: int, dataplanes: list[Any]) -> Dataplane:
    kube.apply(deployment(name, replicas=replicas), namespace)
    running_pods(kube, namespace, f"app={name}", replicas)
    dp = Dataplane(kube, namespace, f"app={name}")
    dataplanes.append(dp)
    dp.sync()
    return dp


def pod_targets(kube: Kube, namespace: str, selector: str) -> dict[tuple[str, str], str]:
    return {
        (namespace, p["metadata"]["name"]): f"{p['status']['podIP']}:9090"
        for p in running_pods(kube, namespace, selector, len(kube.list("pods", namespace, selector)))
    }


def open_incidents(kube: Kube, namespace: str, zentinel: str) -> dict[str, dict[str, Any]]:
    return {
        i["spec"]["category"]: i
        for i in kube.list("zentinelincidents", namespace)
        if i["spec"]["zentinelRef"]["name"] == zentinel
        and (i.get("status") or {}).get("state")  # created, status not written yet: not seen yet
        and not i["status"].get("resolvedAt")
    }


def summary(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.status("zen", name, namespace).get("summary") or {})


def test_high_error_rate_is_detected_from_prometheus_data(
    kube: Kube,
    namespace: str,
    prometheus: PrometheusServer,
    operator: OperatorProcess,
    dataplanes: list[Any],
) -> None:
    kube.apply(policy(), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    noisy = start_dataplane(kube, namespace, "edge", 3, dataplanes)
    quiet = start_dataplane(kube, namespace, "quiet", 2, dataplanes)
    noisy.traffic(rps=400, error_share=0.2)
    quiet.traffic(rps=100, error_share=0.0)
    targets = {**pod_targets(kube, namespace, "app=edge"), **pod_targets(kube, namespace, "app=quiet")}
    prometheus.scrape(targets)
    # Three scrapes of each pod, so that the operator's first pass (evaluated at its second, rounded
    # down) already finds every pod in Prometheus.
    wait_for(
        lambda: len(prometheus.query(f'count_over_time(zentinel_up{{namespace="{namespace}"}}[1m]) >= 3')) == 5,
        timeout=30,
        what="Prometheus scraping the 5 emulated pods",
    )
    kube.apply(zentinel("edge"), namespace)
    kube.apply(zentinel("quiet"), namespace)

    inc = wait_for(
        lambda: open_incidents(kube, namespace, "edge").get("HighErrorRate"),
        timeout=90,
        what="HighErrorRate on edge, from Prometheus data",
    )
    assert inc is not None
    assert inc["status"]["severity"] == "SEV2"  # 20 % of answers are 5xx: above the 10 % rung
    evidence = " ".join(inc["status"]["findings"][0]["evidence"])
    assert "api" in evidence
    # The Zentinel's status is written at the end of the pass that opened the incident.
    rate = wait_for(
        lambda: (r := summary(kube, namespace, "edge").get("errorRate", "")).endswith("%") and r,
        timeout=30,
        what="the edge Zentinel's error rate in its status",
    )
    assert 15.0 <= float(rate[:-1]) <= 25.0, rate
    # The quiet Zentinel reads its own pods out of the same batch: healthy, no incident.
    wait_for(
        lambda: summary(kube, namespace, "quiet").get("errorRate") == "0.00%",
        timeout=30,
        what="the quiet Zentinel's error rate",
    )
    assert summary(kube, namespace, "quiet")["pods"] == "2/2"
    assert "HighErrorRate" not in open_incidents(kube, namespace, "quiet")
    assert "MetricsUnavailable" not in open_incidents(kube, namespace, "edge")

    # Two Zentinels, one pass a second each: still one batch of queries a second, not one per Zentinel.
    before, started = prometheus.api_queries_served(), time.monotonic()
    time.sleep(6)
    served, seconds = prometheus.api_queries_served() - before, time.monotonic() - started
    per_batch = len(build_queries(WINDOW_SECONDS))
    assert served <= per_batch * (seconds + 2), f"{served} queries in {seconds:.1f}s"
    assert served >= per_batch, f"{served} queries in {seconds:.1f}s"

    # Prometheus gone: the metrics are unavailable, said so, and nothing crashes.
    prometheus.stop()
    gone = wait_for(
        lambda: open_incidents(kube, namespace, "quiet").get("MetricsUnavailable"),
        timeout=60,
        what="MetricsUnavailable once Prometheus is gone",
    )
    assert gone is not None
    assert f"Prometheus at {prometheus.url}" in " ".join(gone["status"]["findings"][0]["evidence"])
    # The status is written at the end of the pass that opened the incident, a moment after it.
    wait_for(
        lambda: summary(kube, namespace, "quiet").get("errorRate") == "unavailable",
        timeout=30,
        what="the quiet Zentinel's error rate said to be unavailable",
    )
    assert operator.proc is not None and operator.proc.poll() is None
    assert "Traceback" not in operator.logs()
