"""Detection latency: from an injected runbook fault to a notification at a local webhook receiver.

A benchmark, not a test: nothing is asserted; the figures are printed and written as JSON (and PNG
plots with matplotlib, the ``bench`` extra). It brings up the local control plane as the integration
tests do (etcd, kube-apiserver, controller-manager, scheduler, the process kubelet running the real
``zentinel`` and the test backends as local processes on loopback pod IPs), and runs side by side:

- this operator with its defaults (``scanInterval`` 15 s, event passes on) and tuned for speed
  (``scanInterval`` 2 s, event passes on, 0.1 s debounce), each a real ``zentinel-operator`` process
  paging a webhook receiver;
- Prometheus + Alertmanager (both built from their Go modules) with common settings (scrape 15 s,
  evaluation 15 s, ``for: 1m``, group_wait 30 s) and aggressive ones (5 s, 5 s, no ``for``,
  group_wait 0), scraping every Zentinel pod through Kubernetes service discovery, Alertmanager's
  webhook_config pointing at the same receiver.

Each round gives every fault two Zentinels of its own (one watched by each operator; both Prometheus
setups scrape both), each in a fresh namespace: a crash loop (a config Zentinel refuses, rolled
out), both backends answering 30 % 500s (the 5xx share past SEV2's 10 %), every backend refusing, a
bad config under auto-reload (rejected, the old one keeps serving) and a certificate 2 days from
expiry. The faults but the 5xx share are injected with ``scripts/demo_real.py``'s code. A round's faults run
concurrently, so one round takes about as long as its slowest system (common settings: minutes).

    .venv/bin/python benchmarks/detection_latency.py                 # 3 rounds, 16-17 minutes here
    .venv/bin/python benchmarks/detection_latency.py --repeats 1 --out /tmp/lat   # a short look

Needs ``scripts/setup --bench`` (Alertmanager and matplotlib) and the real Zentinel. Traffic is the
bounded loopback load generator (20 requests/s per Zentinel while a round runs); every address is in
127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]

import demo_real  # noqa: E402 - after the path set-up above

from support import configs, realpods  # noqa: E402
from support.certs import leaf, tls_secret  # noqa: E402
from support.kube import Kube, wait_for  # noqa: E402
from support.operator import OperatorProcess, free_port  # noqa: E402
from support.receivers import Receivers  # noqa: E402
from zentinel_devcluster import tools  # noqa: E402
from zentinel_devcluster.cluster import Cluster  # noqa: E402
from zentinel_devcluster.pki import CA  # noqa: E402
from zentinel_operator.signals import prometheus as promsource  # noqa: E402

ERROR_SHARE = "error:0.3"  # the backends' mode for the `errors` fault (see Edge.inject)
# fault -> (scripts/demo_real.py's fault name (for `errors`: the backends' mode), the operator's
# incident categories that count, the Prometheus alert that counts; None: no rule can see it)
FAULTS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "crash": ("crash", ("ProcessCrash",), "ZentinelDown"),
    "errors": (ERROR_SHARE, ("HighErrorRate",), "ZentinelHighErrorRate"),
    "refuse": ("dead-backend", ("HighErrorRate", "UpstreamFailure"), "ZentinelHighErrorRate"),
    "bad-config": ("bad-config", ("ConfigError",), None),
    "cert": ("cert", ("CertificateExpiring",), None),
}
OPERATORS: dict[str, dict[str, str]] = {
    "operator-default": {"ZENTINEL_OPERATOR_SCAN_INTERVAL": "15"},
    "operator-tuned": {
        "ZENTINEL_OPERATOR_SCAN_INTERVAL": "2",
        "ZENTINEL_OPERATOR_EVENT_PASSES": "true",
        "ZENTINEL_OPERATOR_EVENT_DEBOUNCE": "0.1",
    },
}


@dataclasses.dataclass(frozen=True)
class PromSetting:
    name: str
    scrape: int  # seconds; evaluation every as many
    for_: str  # the alert rules' `for:`
    group_wait: str
    window: int  # seconds of history behind each rate (4 scrapes)


PROM_SETTINGS = (
    PromSetting("prometheus-common", 15, "1m", "30s", 60),
    PromSetting("prometheus-aggressive", 5, "0s", "0s", 20),
)
SYSTEMS = [*OPERATORS, *(s.name for s in PROM_SETTINGS)]
RPS = 20.0
SHORT = {"operator-default": "opd", "operator-tuned": "opt"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- Prometheus + Alertmanager


def alert_rules(s: PromSetting) -> dict[str, Any]:
    """Rules on Zentinel's own series with the runbook's thresholds (and the chart's labels and style).

    The 5xx share is the operator's own (its Prometheus source's queries, :func:`build_queries`):
    ``zentinel_requests_total{status=~"5.."}`` plus Zentinel's own ``proxy_error_50[234]``, over all
    requests plus those; SEV2 at more than 10 %. A process that is down is a failed scrape (``up == 0``,
    no kube-state-metrics here). Zentinel 0.6.45 exports no series about a rejected reload or a
    certificate's expiry, so no rule can see those two faults.
    """
    q = promsource.build_queries(s.window)

    def by_ns(name: str) -> str:
        return f"sum by (namespace) ({q[name]})"

    requests = by_ns(promsource.REQUESTS)
    proxy = f"({by_ns(promsource.PROXY_ERRORS)} or {requests} * 0)"
    errors = f"({by_ns(promsource.ERRORS)} or {requests} * 0)"
    share = f"({errors} + {proxy}) / ({requests} + {proxy})"
    for_ = {"for": s.for_} if s.for_ != "0s" else {}
    return {
        "groups": [
            {
                "name": "zentinel.runbook",
                "rules": [
                    {
                        "alert": "ZentinelDown",
                        "expr": 'up{job="zentinel"} == 0',
                        **for_,
                        "labels": {"severity": "critical"},
                        "annotations": {"summary": "Zentinel pod {{ $labels.namespace }}/{{ $labels.pod }} is down."},
                    },
                    {
                        "alert": "ZentinelHighErrorRate",
                        "expr": f"{share} > 0.10",
                        **for_,
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "5xx share of {{ $labels.namespace }}: {{ $value | humanizePercentage }}."
                        },
                    },
                ],
            }
        ]
    }


@dataclasses.dataclass
class Daemon:
    """One long-running binary (Prometheus, Alertmanager) in its own process group, logging to a file."""

    name: str
    args: list[str]
    ready_url: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def of(cls, binary: str, setting: str, workdir: Path, port: int, *flags: str) -> Daemon:
        """``binary`` (Prometheus or Alertmanager) on ``workdir/<binary>.yml``, on loopback ``port``, started."""
        args = [
            str(tools.binary(binary)),
            f"--config.file={workdir / f'{binary}.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            *flags,
        ]
        return cls(f"{setting}-{binary}", args, f"http://127.0.0.1:{port}/-/ready", workdir).start()

    def start(self) -> Daemon:
        out = (self.workdir / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            self.args, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        wait_for(self._ready, timeout=60, what=f"{self.name} ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log_text = (self.workdir / f"{self.name}.log").read_text(errors="replace")
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{log_text[-3000:]}")
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as r:  # noqa: S310 - a loopback URL built here
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def check(*cmd: str) -> None:
    """Run a config checker (promtool, amtool); a refusal stops the benchmark with its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stdout}{proc.stderr}")


def start_prometheus_stack(s: PromSetting, cluster: Cluster, receivers: Receivers, work: Path) -> list[Daemon]:
    d = work / s.name
    d.mkdir(parents=True)
    am_port, prom_port = free_port(), free_port()
    am_config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "namespace"],
            "group_wait": s.group_wait,
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": receivers.url(f"/{s.name}")}]}],
    }
    (d / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    (d / "rules.yml").write_text(yaml.safe_dump(alert_rules(s), width=1000))
    prom_config = {
        "global": {
            "scrape_interval": f"{s.scrape}s",
            "evaluation_interval": f"{s.scrape}s",
            "scrape_timeout": f"{min(s.scrape - 1, 10)}s",
        },
        "rule_files": [str(d / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": "zentinel",
                "metrics_path": "/metrics",
                "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(cluster.kubeconfig)}],
                "relabel_configs": [
                    {
                        "source_labels": [
                            "__meta_kubernetes_pod_label_app",
                            "__meta_kubernetes_pod_container_port_name",
                        ],
                        "regex": "edge;metrics",
                        "action": "keep",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            }
        ],
    }
    (d / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    promtool = str(tools.binary("promtool"))
    check(promtool, "check", "rules", str(d / "rules.yml"))
    check(promtool, "check", "config", str(d / "prometheus.yml"))
    check(str(tools.binary("amtool")), "check-config", str(d / "alertmanager.yml"))
    am = Daemon.of("alertmanager", s.name, d, am_port, "--storage.path=am-data", "--cluster.listen-address=")
    prom = Daemon.of("prometheus", s.name, d, prom_port, "--storage.tsdb.path=data")
    return [am, prom]


# ----------------------------------------------------------------------------- the Zentinels


@dataclasses.dataclass
class Edge:
    """One Zentinel (1 real ``zentinel`` pod, 2 backend pods) in its own namespace, for one fault."""

    kube: Kube
    namespace: str
    fault: str
    operator: str
    traffic: realpods.Traffic | None = None
    injected: float | None = None  # time.monotonic() right before the fault's first write
    _ips: tuple[float, list[str]] = (0.0, [])

    def urls(self) -> list[str]:
        at, ips = self._ips
        if time.monotonic() - at > 10:  # the load generator asks every second; kubectl every 10 s at most
            pods = self.kube.list("pods", self.namespace, "app=edge")
            ips = sorted(
                p["status"]["podIP"]
                for p in pods
                if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")
            )
            self._ips = (time.monotonic(), ips)
        return [f"http://{ip}:{realpods.HTTP_PORT}/api/x" for ip in ips]

    def set_up(self, receiver_url: str) -> None:
        kube, ns = self.kube, self.namespace
        kube.run("create", "namespace", ns)
        wait_for(lambda: kube.get("serviceaccount", "default", ns), timeout=30, what="default ServiceAccount")
        # The runbook's thresholds, every severity paging the webhook, remediation off (detection only).
        kube.apply(realpods.paging_policy(receiver_url, remediation={"defaultMode": "Off"}), ns)
        kube.apply(realpods.backend_deployment("api", replicas=2), ns)
        backends = realpods.ready_pods(kube, ns, "api", 2)
        targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in realpods.pod_ips(backends)]
        tls = self.fault == "cert"
        # No active health check: Zentinel keeps sending to a failing backend, so the 5xx share stays.
        text = realpods.config(targets, auto_reload=self.fault == "bad-config", tls=tls, health_check=False)
        kube.apply(configs.configmap("edge-config", text), ns)
        tls_refs = None
        if tls:
            ca = CA.create("detection-latency CA")
            kube.apply(tls_secret("edge-ca", *ca.pem()), ns)
            kube.apply(tls_secret("edge-tls", *leaf(ca, [demo_real.SAN], days=60)), ns)
            tls_refs = [
                {"name": "public", "secretName": "edge-tls", "port": realpods.TLS_PORT, "serverName": demo_real.SAN}
            ]
        kube.apply(realpods.zentinel_deployment("edge", 1, tls_secret="edge-tls" if tls else None), ns)
        realpods.ready_pods(kube, ns, "edge", 1, timeout=120)
        reload_mode = "AutoReload" if self.fault == "bad-config" else "RollingRestart"
        kube.apply(realpods.zentinel_object("edge", reload_mode=reload_mode, tls=tls_refs), ns)
        self.traffic = realpods.Traffic(self.urls, RPS, max_seconds=900)

    def watched(self) -> bool:
        """The operator's pass has seen the pod (an incident of another kind, such as the TrafficSpike of
        traffic starting from nothing, may be open: only the fault's own categories are counted)."""
        status = self.kube.status("zen", "edge", self.namespace)
        return bool(status.get("summary", {}).get("pods") == "1/1")

    def inject(self, state: Path) -> None:
        self.injected = time.monotonic()
        if self.fault == "errors":
            # Not the demo's `errors` (one backend answering only 500s): Zentinel stops sending to that
            # backend within seconds (measured: 5 of 968 answers were 500s over the next 25 s), a burst
            # the operator's short interval catches and a 20 s or 1 m rate() does not. Every backend
            # answering 30 % 500s (never two in a row) holds the 5xx share at 30 %, past SEV2's 10 %.
            for pod in demo_real.backends(self.kube, self.namespace):
                realpods.set_backend_mode(self.kube, self.namespace, pod, ERROR_SHARE)
            return
        demo_real.fault(self.kube, state, FAULTS[self.fault][0], self.namespace)

    def tear_down(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        self.kube.run("delete", "namespace", self.namespace, "--wait=false", check=False)


def namespace(round_: int, operator: str, fault: str) -> str:
    return f"lat{round_}-{SHORT[operator]}-{fault}"


# ----------------------------------------------------------------------------- measuring


def first_notification(receivers: Receivers, system: str, edge: Edge) -> float | None:
    """Seconds from the injection to the first notification of the fault's kind about ``edge``."""
    assert edge.injected is not None
    _, categories, alert = FAULTS[edge.fault]
    for r in receivers.got(f"/{system}"):
        if r.at < edge.injected:
            continue
        try:
            body = r.json
        except ValueError:
            continue
        if system.startswith("operator"):
            # The operator's webhook payload (core/notify_payloads.webhook_payload) names the incident's
            # namespace and category.
            incident = body.get("incident") or {}
            if incident.get("namespace") == edge.namespace and incident.get("category") in categories:
                return round(float(r.at - edge.injected), 3)
        else:
            for a in body.get("alerts", []):
                labels = a.get("labels", {})
                if labels.get("namespace") == edge.namespace and labels.get("alertname") == alert:
                    return round(float(r.at - edge.injected), 3)
    return None


def expected(system: str, edge: Edge) -> bool:
    """Whether ``system`` is meant to notify about ``edge``'s fault (an operator only of its own edges)."""
    if system.startswith("operator"):
        return system == edge.operator
    return FAULTS[edge.fault][2] is not None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of a few samples is their maximum)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


class LoadSampler:
    """The 1-minute load average every 10 s while the run lasts (the machine is shared)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(10):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        s = self.samples or [os.getloadavg()[0]]
        return {"min": min(s), "mean": round(statistics.mean(s), 2), "max": max(s)}


def operator_figures(op: OperatorProcess) -> dict[str, float]:
    """The operator's own counters so far (its /metrics): passes by trigger, pass seconds, CPU seconds."""
    wanted = (
        "zentinel_operator_passes_total",
        "zentinel_operator_pass_seconds_sum",
        "zentinel_operator_pass_seconds_count",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    )
    out: dict[str, float] = {}
    try:
        text = op.metrics()
    except OSError as e:
        log(f"operator metrics unreadable: {e}")
        return {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.split("{")[0] in wanted:
            out[name] = float(value)
    return out


def versions() -> dict[str, str]:
    def first_line(*cmd: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unknown"

    return {
        "python": platform.python_version(),
        "zentinel": first_line(str(tools.zentinel_binary()), "--version"),
        "prometheus": first_line(str(tools.binary("prometheus")), "--version"),
        "alertmanager": first_line(str(tools.binary("alertmanager")), "--version"),
        "kubernetes": tools.K8S_VERSION,
    }


# ----------------------------------------------------------------------------- the run


@contextlib.contextmanager
def control_plane(work: Path) -> Iterator[tuple[Cluster, Kube]]:
    # The process kubelet as the integration tests run it (conftest.py): volumes synced every second,
    # CrashLoopBackOff from 1 s doubling to 8 s.
    os.environ.setdefault("ZENTINEL_KUBELET_SYNC_SECONDS", "1")
    os.environ.setdefault("ZENTINEL_KUBELET_BACKOFF", "1,8")
    os.environ.setdefault("ZENTINEL_KUBELET_MAX_GRACE", "3")
    cluster = Cluster(work / "cluster")
    cluster.up(log=True)
    try:
        kube = Kube(tools.binary("kubectl"), cluster.kubeconfig)
        kube.run("apply", "--server-side", "-f", str(REPO / "crds"))
        kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        yield cluster, kube
    finally:
        cluster.down(log=True)


def run_round(
    round_: int, kube: Kube, receivers: Receivers, state: Path, *, warmup: float, timeout: float
) -> list[dict[str, Any]]:
    edges = [Edge(kube, namespace(round_, op, f), f, op) for op in OPERATORS for f in FAULTS]
    log(f"round {round_}: setting up {len(edges)} Zentinels")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda e: e.set_up(receivers.url(f"/{e.operator}")), edges))
    try:
        wait_for(lambda: all(e.watched() for e in edges), timeout=120, interval=2, what="every Zentinel watched")
        # Long enough for the common setting's rate() window to hold samples from before the fault.
        log(f"round {round_}: all watched; {warmup:.0f}s of fault-free traffic")
        time.sleep(warmup)
        with concurrent.futures.ThreadPoolExecutor(5) as pool:  # each edge's clock starts at its own write
            list(pool.map(lambda e: e.inject(state), edges))
        log(f"round {round_}: injected {len(edges)} faults; waiting up to {timeout:.0f}s for the notifications")
        deadline = time.monotonic() + timeout

        def pending() -> list[tuple[str, str]]:
            return [
                (s, e.namespace)
                for e in edges
                for s in SYSTEMS
                if expected(s, e) and first_notification(receivers, s, e) is None
            ]

        while pending() and time.monotonic() < deadline:
            time.sleep(1)
        rows = []
        for e in edges:
            for s in SYSTEMS:
                if not expected(s, e) and not (s.startswith("prometheus") and FAULTS[e.fault][2] is None):
                    continue
                seconds = first_notification(receivers, s, e)
                rows.append(
                    {"round": round_, "fault": e.fault, "namespace": e.namespace, "system": s, "seconds": seconds}
                )
        missed = [(s, ns) for s, ns in pending()]
        log(f"round {round_}: done; {len(missed)} expected notifications missing: {missed}")
        return rows
    finally:
        for e in edges:
            e.tear_down()


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fault in FAULTS:
        per: dict[str, Any] = {}
        for s in SYSTEMS:
            mine = [r for r in rows if r["fault"] == fault and r["system"] == s]
            if not mine:
                continue
            got = [r["seconds"] for r in mine if r["seconds"] is not None]
            per[s] = {
                "no_rule": s.startswith("prometheus") and FAULTS[fault][2] is None,
                "samples": len(mine),
                "notified": len(got),
                "p50": round(statistics.median(got), 2) if got else None,
                "p99": round(percentile(got, 99), 2) if got else None,
            }
        ratios: dict[str, float | None] = {}
        for q in ("p50", "p99"):
            for op in OPERATORS:
                for prom in (p.name for p in PROM_SETTINGS):
                    a, b = per.get(op, {}).get(q), per.get(prom, {}).get(q)
                    ratios[f"{prom} {q} / {op} {q}"] = round(b / a, 1) if a and b else None
        per["ratios"] = ratios
        out[fault] = per
    return out


def table(summary: dict[str, dict[str, Any]]) -> str:
    """Markdown: p50 / p99 seconds per fault and system, then the ratios (BENCHMARKS.md's tables)."""

    def cell(f: str, s: str) -> str:
        x = summary[f].get(s) or {}
        if x.get("no_rule"):
            return "no rule can see it"
        if not x.get("notified"):
            return f"none of {x.get('samples', 0)}"
        missed = f" ({x['samples'] - x['notified']} missed)" if x["notified"] < x["samples"] else ""
        return f"{x['p50']:.1f} / {x['p99']:.1f} (n={x['notified']}){missed}"

    lines = ["| fault | " + " | ".join(SYSTEMS) + " |", "|---" * (len(SYSTEMS) + 1) + "|"]
    lines += [f"| {f} | " + " | ".join(cell(f, s) for s in SYSTEMS) + " |" for f in FAULTS]
    names = list(next(iter(summary.values()))["ratios"])
    lines += ["", "| fault | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for f in FAULTS:
        ratios = summary[f]["ratios"]
        lines.append(f"| {f} | " + " | ".join("-" if ratios[n] is None else f"{ratios[n]}x" for n in names) + " |")
    return "\n".join(lines)


def plot(summary: dict[str, dict[str, Any]], rows: list[dict[str, Any]], out: Path) -> list[str]:
    """Two PNGs in ``out``: p50 bars with p99 whiskers per fault and system, and every sample."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing (pip install -e '.[bench]'): no plots")
        return []
    faults = list(FAULTS)
    width = 0.2
    written = []

    def save(fig: Any, ax: Any, title: str, ylabel: str, name: str) -> None:
        ax.set_xticks(range(len(faults)), faults)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(10, 5))
    for i, s in enumerate(SYSTEMS):
        nan = float("nan")  # no sample: no bar (log scale)
        p50 = [float(summary[f].get(s, {}).get("p50") or nan) for f in faults]
        p99 = [float(summary[f].get(s, {}).get("p99") or nan) for f in faults]
        xs = [x + (i - 1.5) * width for x in range(len(faults))]
        ax.bar(xs, p50, width, label=f"{s} (p50; whisker p99)")
        up = [b - a for a, b in zip(p50, p99, strict=True)]
        ax.errorbar(xs, p50, yerr=[[0.0] * len(p50), up], fmt="none", ecolor="black", capsize=3)
        for x, f in zip(xs, faults, strict=True):
            if summary[f].get(s, {}).get("no_rule"):
                ax.text(x, 1.1, "no rule can see it", ha="center", va="bottom", fontsize=7, rotation=90)
            elif summary[f].get(s, {}).get("notified") == 0:
                ax.text(x, 1.1, "none arrived", ha="center", va="bottom", fontsize=7, rotation=90)
    title = "Detection latency per fault (real Zentinel 0.6.45 pods, local control plane)"
    save(fig, ax, title, "seconds from injection to webhook notification", "detection_latency.png")

    fig, ax = plt.subplots(figsize=(10, 5))
    for i, s in enumerate(SYSTEMS):
        for j, f in enumerate(faults):
            ys = [r["seconds"] for r in rows if r["system"] == s and r["fault"] == f and r["seconds"] is not None]
            ax.scatter([j + (i - 1.5) * width] * len(ys), ys, s=14, color=f"C{i}", label=s if j == 0 else None)
    save(fig, ax, "Every sample", "seconds", "detection_latency_samples.png")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each injects every fault twice (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="JSON and PNGs go here")
    parser.add_argument("--warmup", type=float, default=45, help="seconds of traffic before each round's faults")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a round waits for its notifications")
    parser.add_argument("--logs", type=Path, default=None, help="keep the operators' logs in this directory")
    parser.add_argument(
        "--replot", type=Path, default=None, help="only summarise, plot and tabulate this results JSON's samples again"
    )
    args = parser.parse_args(argv)
    if args.replot:  # the summary again from the samples, the plots and the tables
        doc = json.loads(args.replot.read_text())
        doc["summary"] = summarise(doc["samples"])
        doc["plots"] = plot(doc["summary"], doc["samples"], args.replot.parent)
        args.replot.write_text(json.dumps(doc, indent=2))
        print(table(doc["summary"]))
        return 0
    tools.ensure(["k8s", "etcd", "kwok", "prometheus", "alertmanager"])
    if not tools.zentinel_binary().exists():
        raise SystemExit("the real zentinel is not built: scripts/cluster build-zentinel")
    args.out.mkdir(parents=True, exist_ok=True)
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    load = LoadSampler()
    daemons: list[Daemon] = []
    operators: list[OperatorProcess] = []
    rows: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="detection-latency-") as tmp, control_plane(Path(tmp)) as (cluster, kube):
        work = Path(tmp)
        receivers = Receivers().start()
        try:
            for s in PROM_SETTINGS:
                daemons += start_prometheus_stack(s, cluster, receivers, work)
            for name, env in OPERATORS.items():
                namespaces = [namespace(r, name, f) for r in range(args.repeats) for f in FAULTS]
                logs = work / name
                logs.mkdir()
                op = OperatorProcess(
                    cluster.kubeconfig,
                    namespaces[0],
                    logs,
                    {
                        **env,
                        "ZENTINEL_OPERATOR_NAMESPACES": ",".join(namespaces),
                        "ZENTINEL_OPERATOR_LEADER_ELECTION": "false",
                    },
                )
                op.start()
                operators.append(op)
            log(f"operators {', '.join(OPERATORS)} and {', '.join(s.name for s in PROM_SETTINGS)} running")
            for r in range(args.repeats):
                rows += run_round(r, kube, receivers, work, warmup=args.warmup, timeout=args.timeout)
                rounds.append(
                    {
                        "round": r,
                        "load_average_1m_at_end": os.getloadavg()[0],
                        "operators_so_far": {
                            name: operator_figures(op) for name, op in zip(OPERATORS, operators, strict=True)
                        },
                    }
                )
                (args.out / "detection_latency.partial.json").write_text(json.dumps(rows, indent=1))
        finally:
            for op in operators:
                op.stop()
                if args.logs:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    (args.logs / f"{op.log_dir.name}.log").write_text(op.logs())
            for d in reversed(daemons):
                d.stop()
            receivers.stop()
    summary = summarise(rows)
    doc = {
        "benchmark": "detection_latency",
        "started": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started),
        "repeats": args.repeats,
        "warmup_seconds": args.warmup,
        "rps_per_zentinel": RPS,
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_during_run": load.stop(),
            "versions": versions(),
        },
        "systems": {
            **{k: {"env": v} for k, v in OPERATORS.items()},
            **{s.name: dataclasses.asdict(s) for s in PROM_SETTINGS},
        },
        "prometheus_rules": alert_rules(PROM_SETTINGS[0]),
        "not_visible_to_prometheus": [f for f, (_, _, alert) in FAULTS.items() if alert is None],
        "summary": summary,
        "rounds": rounds,
        "samples": rows,
    }
    doc["plots"] = plot(summary, rows, args.out)
    (args.out / "detection_latency.json").write_text(json.dumps(doc, indent=2))
    (args.out / "detection_latency.partial.json").unlink(missing_ok=True)
    print(json.dumps(summary, indent=2))
    print(table(summary))
    log(f"wrote {args.out / 'detection_latency.json'} ({doc['wall_seconds']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
