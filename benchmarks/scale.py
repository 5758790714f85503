"""The operator at scale: CPU, RSS, API requests and detection latency for fleets of 1 to 1,000 Zentinels.

For each fleet size (``--sizes``) it starts its own control plane (``zentinel_devcluster``: etcd,
kube-apiserver, controller-manager, scheduler, kwok), creates N Zentinels, each over a Deployment of
3 kwok pods, and answers on every pod's loopback IP with a Zentinel admin emulator
(``tests/support/emulator.py``; all of them in one child process on one event loop, with a small steady
traffic of 20 requests/s per pod). Then for each metric source (``Scrape``, ``Prometheus``) and each event
pass setting (``--event-passes off,on``) it runs the operator as a real process
(``python -m zentinel_operator run``, its defaults otherwise: scan interval 15 s, leader election on), and for
each shard count (``--shards 1,2``) one such process per shard (``ZENTINEL_OPERATOR_SHARD_COUNT``/``_INDEX``,
each with a client certificate, and so an audited user, of its own), and measures, in total and per shard:

- the operator process's CPU (cores, ``utime + stime`` of ``/proc/<pid>/stat`` over the window) and RSS;
- API requests per minute by verb and resource: from the API server's audit log, filtered to the
  operator's own user (it runs with a client certificate of its own), and from the API server's
  ``apiserver_request_total`` over all clients minus the same window with the operator stopped
  (the metric has no user label; this API server serves only this benchmark);
- in a quiet window (``--window``) and in a window of faults;
- detection latency: a crash loop written to one pod of a random Zentinel (``support.crash``), and the
  5xx share of a random Zentinel's pods raised to 50 % in its emulators; the time from the injection to the
  ``ZentinelIncident``'s ADDED event on a watch.

A benchmark, not a test: nothing is asserted. It prints figures, writes JSON and PNG plots.

    .venv/bin/python benchmarks/scale.py --quick
    .venv/bin/python benchmarks/scale.py --sizes 1,100,1000 --out benchmarks/results
    .venv/bin/python benchmarks/scale.py --sizes 100 --shards 1,2 --out /tmp/shards   # one replica against two shards
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import kubernetes  # noqa: E402
from kubernetes import watch as kwatch  # noqa: E402

from integration.test_prometheus_source import PrometheusServer  # noqa: E402
from support import configs, crash  # noqa: E402
from support.emulator import EmulatorFleet  # noqa: E402
from support.kube import Kube, deployment, wait_for  # noqa: E402
from support.operator import OperatorProcess  # noqa: E402
from zentinel_devcluster import audit, tools  # noqa: E402
from zentinel_devcluster.cluster import NODE_NAME, Cluster  # noqa: E402
from zentinel_operator import config as operator_config  # noqa: E402
from zentinel_operator.core.shards import shard_of  # noqa: E402

NAMESPACE = "bench"
REPLICAS = 3
ADMIN_PORT = 9090
GROUP, VERSION = "zentinel.io", "v1alpha1"
RPS_PER_POD = 20
FAULT_SHARE = 0.5  # of answers 5xx: past the SEV2 (and SEV1) rung
PROMETHEUS_INTERVAL = "15s"  # scrape and evaluation: the common setting of issue 13
# Settings the test harness sets for speed; the benchmark runs the operator's own defaults instead.
TEST_ONLY_ENV = (
    "ZENTINEL_OPERATOR_SCAN_INTERVAL",
    "ZENTINEL_OPERATOR_LEASE_DURATION",
    "ZENTINEL_OPERATOR_LEASE_RENEW_DEADLINE",
    "ZENTINEL_OPERATOR_LEASE_RETRY_PERIOD",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(f"[scale {dt.datetime.now(dt.UTC):%H:%M:%S}] {text}", flush=True)


# ---------------------------------------------------------------------------- control plane


class BenchCluster(Cluster):
    """The dev cluster (whose API server keeps an audit log of the audited user, ``zentinel_devcluster.audit``,
    which the operator runs as here), with a controller-manager allowed 200 qps (its default 20 takes minutes to
    create 3,000 pods)."""

    def _spawn(self, name: str, args: Sequence[str], *, python: bool = False) -> None:
        args = list(args)
        if name == "kube-controller-manager":
            args += ["--kube-api-qps=200", "--kube-api-burst=400"]
        super()._spawn(name, args, python=python)

    def request_totals(self) -> dict[tuple[str, str], float]:
        """``apiserver_request_total`` summed by (verb, resource[/subresource]), all clients."""
        status, text = self._get("/metrics", timeout=30)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        totals: dict[tuple[str, str], float] = collections.defaultdict(float)
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, value = line[len("apiserver_request_total{") :].rsplit("} ", 1)
            labels = dict(
                part.split("=", 1) for part in labels_text.replace('"', "").split(",") if "=" in part
            )  # no label value here holds a comma
            resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            totals[(labels.get("verb", "?"), resource or "(non-resource)")] += float(value)
        return dict(totals)


def per_minute(counts: dict[tuple[str, str], float], seconds: float) -> dict[str, float]:
    return {f"{verb} {res}": round(n * 60 / seconds, 1) for (verb, res), n in sorted(counts.items()) if n}


def delta(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


# ---------------------------------------------------------------------------- process figures


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return round(values["VmRSS"], 1), round(values["VmHWM"], 1)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 3)


class Window:
    """CPU of some processes and the API server's counters (all clients, and the operator's audit) over a window.

    ``users``: audited users whose requests are also counted one by one (the shards of a sharded operator).
    """

    def __init__(self, cluster: BenchCluster, pids: dict[str, int], users: Sequence[str] = ()) -> None:
        self.cluster = cluster
        self.pids = pids
        self.users = users

    def __enter__(self) -> Window:
        self.totals = self.cluster.request_totals()
        self.audit_start = self.cluster.audit_log.stat().st_size
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started
        self.cpu_cores = {
            name: round((cpu_seconds(pid) - self.cpu[name]) / self.seconds, 3) for name, pid in self.pids.items()
        }
        self.memory = {name: memory_mib(pid) for name, pid in self.pids.items()}
        time.sleep(1)  # the last requests' audit lines and counters
        self.all_clients = delta(self.cluster.request_totals(), self.totals)
        end = self.cluster.audit_log.stat().st_size
        self.operator = audit.counts(self.cluster.audit_log, self.audit_start, end)
        self.by_user = {u: audit.counts(self.cluster.audit_log, self.audit_start, end, u) for u in self.users}

    def figures(self, baseline: dict[str, float] | None = None) -> dict[str, Any]:
        all_rate = per_minute(self.all_clients, self.seconds)
        out: dict[str, Any] = {
            "seconds": round(self.seconds, 1),
            "cpu_cores": self.cpu_cores,
            "rss_mib": {name: m[0] for name, m in self.memory.items()},
            "peak_rss_mib": {name: m[1] for name, m in self.memory.items()},
            "operator_requests_per_minute": per_minute(dict(self.operator.items()), self.seconds),
            "all_clients_requests_per_minute": all_rate,
        }
        if self.users:
            out["operator_requests_per_minute_by_shard"] = [
                per_minute(dict(self.by_user[u].items()), self.seconds) for u in self.users
            ]
        if baseline is not None:
            out["all_clients_minus_idle_per_minute"] = {
                k: round(v - baseline.get(k, 0.0), 1) for k, v in all_rate.items() if abs(v - baseline.get(k, 0.0)) >= 1
            }
        return out


# ---------------------------------------------------------------------------- the fleet


def zentinel(name: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Zentinel",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"tier": "edge"}},
        "spec": {
            "workload": {"name": name},
            "config": {"configMapName": "edge-config"},
            "admin": {"port": ADMIN_PORT},
            "metricsSource": source,
        },
    }


def names(size: int) -> list[str]:
    return [f"z{i:04d}" for i in range(size)]


class Applier:
    """Server-side apply through the API client, 8 objects in flight (one kubectl run of 250 objects took
    over 120 s on the loaded machine)."""

    APPLY = "application/apply-patch+yaml"  # JSON is YAML

    def __init__(self, client: Any) -> None:
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)

    def apply(self, doc: dict[str, Any]) -> None:
        name, ns = doc["metadata"]["name"], doc["metadata"]["namespace"]
        opts: dict[str, Any] = {"field_manager": "zentinel-scale-bench", "force": True, "_content_type": self.APPLY}
        if doc["kind"] == "Deployment":
            self.apps.patch_namespaced_deployment(name, ns, doc, **opts)
        elif doc["kind"] == "ConfigMap":
            self.core.patch_namespaced_config_map(name, ns, doc, **opts)
        else:
            self.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "zentinels", name, doc, **opts)

    def apply_all(self, docs: list[dict[str, Any]]) -> None:
        with ThreadPoolExecutor(8) as pool:
            for _ in pool.map(self.apply, docs):
                pass


def create_fleet(kube: Kube, applier: Applier, size: int) -> dict[str, Any]:
    """Deployments first (pods take longest), the shared ConfigMap; returns the running pods and timings."""
    started = time.monotonic()
    kube.run("create", "namespace", NAMESPACE)
    wait_for(lambda: kube.get("serviceaccount", "default", NAMESPACE), timeout=60, what="default ServiceAccount")
    cm = configs.configmap("edge-config")
    cm["metadata"]["namespace"] = NAMESPACE
    deployments = []
    for name in names(size):
        d = deployment(name, replicas=REPLICAS)
        d["metadata"]["namespace"] = NAMESPACE
        deployments.append(d)
    applier.apply_all([cm, *deployments])
    applied = time.monotonic()
    want = size * REPLICAS

    def running() -> list[Any]:
        pods = applier.core.list_namespaced_pod(NAMESPACE).items
        ok = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip and not p.metadata.deletion_timestamp]
        return ok if len(ok) == want else []

    pods = wait_for(running, timeout=1800, interval=3, what=f"{want} Running pods")
    return {
        "pods": pods,
        "apply_deployments_s": round(applied - started, 1),
        "pods_running_s": round(time.monotonic() - applied, 1),
    }


class Emulators:
    """A child process serving one emulator per pod IP (``--serve``), with steady traffic; faults on command."""

    def __init__(self, ips: list[str], log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            text=True,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self.command({"pods": ips}, timeout=600)

    def command(self, doc: dict[str, Any], timeout: float = 30) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(doc) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if line.strip() != "ok":
            raise RuntimeError(f"emulators answered {line!r} (exit {self.proc.poll()})")

    def error_share(self, ips: list[str], share: float) -> None:
        self.command({"share": dict.fromkeys(ips, share)})

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def serve() -> None:
    """Child process: emulators on the IPs of the first line, 20 requests/s per pod, error shares on command."""
    first = json.loads(sys.stdin.readline())
    fleet = EmulatorFleet((ip, ADMIN_PORT) for ip in first["pods"])
    setup = configs.upstream_health()
    for emu in fleet:
        setup(emu)
    fleet.start()
    by_ip = {emu.host: emu for emu in fleet}
    shares: dict[str, float] = {}
    lock = threading.Lock()

    def traffic() -> None:
        while True:
            time.sleep(1)
            with lock:
                current = dict(shares)
            for ip, emu in by_ip.items():
                bad = round(RPS_PER_POD * current.get(ip, 0.0))
                emu.add_requests("api", "200", RPS_PER_POD - bad, latency_seconds=0.02)
                if bad:
                    emu.add_requests("api", "500", bad, latency_seconds=0.05)

    threading.Thread(target=traffic, daemon=True).start()
    print("ok", flush=True)
    for line in sys.stdin:
        doc = json.loads(line)
        with lock:
            shares.update(doc.get("share", {}))
        print("ok", flush=True)


class BenchPrometheus(PrometheusServer):
    """The Prometheus of ``test_prometheus_source`` on the common 15 s scrape and evaluation interval."""

    def write_config(self, targets: dict[tuple[str, str], str]) -> None:
        super().write_config(targets)
        doc = json.loads(self.config.read_text())
        doc["global"] = {
            "scrape_interval": PROMETHEUS_INTERVAL,
            "scrape_timeout": "10s",
            "evaluation_interval": PROMETHEUS_INTERVAL,
        }
        self.config.write_text(json.dumps(doc, indent=2))


class BenchOperator(OperatorProcess):
    """The operator as a process, with its own defaults (not the tests' 1 s scan and short Lease), not verbose."""

    verbose = False

    def env(self) -> dict[str, str]:
        env = super().env()
        for key in TEST_ONLY_ENV:
            if key not in self.extra_env:
                env.pop(key, None)
        return env

    def passes(self) -> dict[str, float]:
        """zentinel_operator_passes_total by trigger, and pass_seconds' sum and count."""
        out: dict[str, float] = collections.defaultdict(float)
        for line in self.metrics().splitlines():
            if line.startswith("zentinel_operator_passes_total{"):
                trigger = line.split('trigger="', 1)[1].split('"', 1)[0]
                out[trigger] += float(line.rsplit(" ", 1)[1])
            elif line.startswith(("zentinel_operator_pass_seconds_sum", "zentinel_operator_pass_seconds_count")):
                out[line.split(" ", 1)[0].rsplit("_", 1)[1]] += float(line.rsplit(" ", 1)[1])
        return dict(out)


# ---------------------------------------------------------------------------- detection


class IncidentWatch:
    """A watch on the namespace's ZentinelIncidents: when each was first seen (ADDED), by Zentinel and category."""

    def __init__(self, custom: Any) -> None:
        self.custom = custom
        self.seen: dict[str, tuple[str, str, str, float]] = {}  # uid -> (name, zentinel, category, monotonic)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incident-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rv = None
        while not self._stop.is_set():
            w = kwatch.Watch()
            try:
                kwargs = {"resource_version": rv} if rv else {}
                for ev in w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    NAMESPACE,
                    "zentinelincidents",
                    timeout_seconds=60,
                    **kwargs,
                ):
                    now = time.monotonic()
                    obj = ev["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] == "ADDED":
                        with self._cond:
                            uid = obj["metadata"]["uid"]  # a name comes back after a delete; a uid does not
                            if uid not in self.seen:
                                spec = obj["spec"]
                                self.seen[uid] = (
                                    obj["metadata"]["name"],
                                    spec["zentinelRef"]["name"],
                                    spec["category"],
                                    now,
                                )
                                self._cond.notify_all()
                    if self._stop.is_set():
                        break
            except kubernetes.client.ApiException as e:
                if e.status == 410:
                    rv = None
                time.sleep(0.2)
            except Exception:  # a dropped connection: watch again from the last version
                time.sleep(0.2)

    def wait(self, zentinel: str, category: str, since: float, timeout: float) -> tuple[str, float] | None:
        """The first incident of ``zentinel``/``category`` seen after ``since``: (name, seconds after ``since``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, z, cat, at in self.seen.values():
                    if z == zentinel and cat == category and at >= since:
                        return name, round(at - since, 3)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def categories(self, start: float, seconds: float) -> dict[str, int]:
        """Incidents first seen in a window, by category (the injected faults' and any others)."""
        with self._cond:
            seen = list(self.seen.values())
        return dict(collections.Counter(cat for _, _, cat, at in seen if start <= at <= start + seconds))

    def stop(self) -> None:
        self._stop.set()


class Operators:
    """The operator processes of one configuration: one, or one per shard, each with an audited user of its own."""

    def __init__(self, ops: list[BenchOperator]) -> None:
        self.ops = ops

    @contextlib.contextmanager
    def running(self) -> Iterator[Operators]:
        try:
            for op in self.ops:
                op.start()
            yield self
        finally:
            for op in self.ops:
                with contextlib.suppress(Exception):  # stop the others too
                    op.stop()

    def pids(self) -> dict[str, int]:
        """``operator`` (one process) or ``shard-<i>``."""
        out = {}
        for i, op in enumerate(self.ops):
            assert op.proc is not None
            out["operator" if len(self.ops) == 1 else f"shard-{i}"] = op.proc.pid
        return out

    def passes(self) -> dict[str, float]:
        """Every process's passes, summed (each shard passes over its own Zentinels only)."""
        total: dict[str, float] = collections.defaultdict(float)
        for op in self.ops:
            for k, v in op.passes().items():
                total[k] += v
        return dict(total)

    def alive(self) -> bool:
        return all(op.proc is not None and op.proc.poll() is None for op in self.ops)

    def logs(self) -> str:
        return "".join(op.logs() for op in self.ops)


def by_shard(figures: dict[str, Any], shards: int) -> None:
    """A sharded window's ``operator`` figures: CPU and RSS summed over the shards (each shard's stay too)."""
    if shards == 1:
        return
    for key in ("cpu_cores", "rss_mib", "peak_rss_mib"):
        figures[key]["operator"] = round(sum(figures[key][f"shard-{i}"] for i in range(shards)), 3)


def warm_up(op: Operators, size: int, timeout: float) -> dict[str, Any]:
    """Until every Zentinel had two timer passes (a rate needs two scrapes), bounded by ``timeout``."""
    started = time.monotonic()

    def done() -> bool:
        with contextlib.suppress(OSError):
            return op.passes().get("timer", 0) >= 2 * size
        return False

    with contextlib.suppress(AssertionError):
        wait_for(done, timeout=timeout, interval=2, what="two passes per Zentinel")
    return {"warm_up_s": round(time.monotonic() - started, 1), "passes": op.passes()}


def pod_faults(
    bench: Bench,
    watch: IncidentWatch,
    count: int,
    rng: random.Random,
    timeout: float,
    after_recovery: Callable[[], float],
) -> list[dict[str, Any]]:
    """Crash loops in one pod of a random Zentinel, one after another; each recovered once detected.

    ``after_recovery``: the operator's passes so far (a fleet smaller than ``count`` waits for one more).
    """
    samples = []
    fleet = names(bench.size)
    chosen = rng.sample(fleet, min(count, len(fleet)))
    while len(chosen) < count:  # a small fleet: the same Zentinel again, once its last pass saw it recover
        chosen.append(rng.choice(fleet))
    for z in chosen:
        pod = rng.choice(bench.pods_of[z])
        name = pod["metadata"]["name"]
        restarts = bench.restarts[name] = bench.restarts.get(name, 0) + 4
        time.sleep(rng.uniform(0.5, 3.0))
        since = time.monotonic()
        crash.crash_loop(bench.client_kube, pod, restarts=restarts)
        seen = watch.wait(z, "ProcessCrash", since, timeout)
        samples.append({"zentinel": z, "pod": name, "seconds": seen[1] if seen else None})
        crash.recover(bench.client_kube, pod, restarts=restarts)
        if seen:
            with contextlib.suppress(kubernetes.client.ApiException):
                bench.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "zentinelincidents", seen[0])
        if bench.size < count:  # one pass on the recovered pod before the same Zentinel is crashed again
            passes = after_recovery()
            with contextlib.suppress(AssertionError):
                wait_for(lambda passes=passes: after_recovery() > passes, timeout=30, interval=0.5, what="a pass")
    return samples


def metric_faults(
    bench: Bench, watch: IncidentWatch, count: int, rng: random.Random, timeout: float
) -> list[dict[str, Any]]:
    """The 5xx share of every pod of ``count`` random Zentinels raised to 50 %, staggered over 5 s, at once."""
    chosen = rng.sample(names(bench.size), min(count, bench.size))
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(z: str, delay: float) -> None:
        time.sleep(delay)
        ips = [p["status"]["podIP"] for p in bench.pods_of[z]]
        since = time.monotonic()
        bench.emulators.error_share(ips, FAULT_SHARE)
        seen = watch.wait(z, "HighErrorRate", since, timeout)
        bench.emulators.error_share(ips, 0.0)
        with lock:
            results.append({"zentinel": z, "seconds": seen[1] if seen else None})

    threads = [threading.Thread(target=one, args=(z, rng.uniform(0, 5))) for z in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def latency_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    values = [s["seconds"] for s in samples if s["seconds"] is not None]
    return {
        "n": len(samples),
        "missed": len(samples) - len(values),
        "p50_s": percentile(values, 0.5),
        "p99_s": percentile(values, 0.99),
        "max_s": max(values) if values else None,
        "samples": samples,
    }


# ---------------------------------------------------------------------------- one fleet size


class Bench:
    def __init__(self, size: int, workdir: Path) -> None:
        self.size = size
        self.workdir = workdir
        self.restarts: dict[str, int] = {}

    def up(self) -> dict[str, Any]:
        started = time.monotonic()
        tools.ensure(["k8s", "etcd", "kwok"])
        self.cluster = BenchCluster(self.workdir / "cluster")
        self.cluster.up(log=False)
        self.kube = Kube(tools.binary("kubectl"), self.cluster.kubeconfig)
        self.kube.run("apply", "--server-side", "-f", str(REPO / "crds"))
        self.kube.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        # The kwok node says it holds 500 pods (zentinel_devcluster.cluster); a fleet of 1,000 needs 3,000.
        pods = str(max(500, self.size * REPLICAS + 100))
        capacity = {"status": {"capacity": {"pods": pods}, "allocatable": {"pods": pods}}}
        self.kube.run("patch", "node", NODE_NAME, "--subresource=status", "--type=merge", "-p", json.dumps(capacity))
        cluster_s = time.monotonic() - started
        client = kubernetes.config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
        client.configuration.connection_pool_maxsize = 16
        self.core = kubernetes.client.CoreV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.client_kube = crash.ClientKube(self.core)
        self.applier = Applier(client)
        fleet = create_fleet(self.kube, self.applier, self.size)
        pods = [client.sanitize_for_serialization(p) for p in fleet.pop("pods")]
        self.pods_of: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for p in pods:
            self.pods_of[p["metadata"]["labels"]["app"]].append(p)
        t = time.monotonic()
        self.emulators = Emulators([p["status"]["podIP"] for p in pods], self.workdir / "emulators.log")
        emulators_s = time.monotonic() - t
        self.targets = {(NAMESPACE, p["metadata"]["name"]): f"{p['status']['podIP']}:{ADMIN_PORT}" for p in pods}
        self.source: str | None = None
        self.prometheus: BenchPrometheus | None = None
        return {
            "cluster_s": round(cluster_s, 1),
            **fleet,
            "emulators_s": round(emulators_s, 1),
        }

    def start_prometheus(self) -> float:
        started = time.monotonic()
        tools.ensure(["prometheus"])
        workdir = self.workdir / "prometheus"
        workdir.mkdir(exist_ok=True)
        self.prometheus = BenchPrometheus(workdir)
        self.prometheus.start()
        self.prometheus.scrape(self.targets)
        want = len(self.targets)
        prom = self.prometheus
        wait_for(
            lambda: len(prom.query("count_over_time(zentinel_up[2m]) >= 2")) == want,
            timeout=300,
            interval=3,
            what=f"Prometheus scraping the {want} pods twice",
        )
        return round(time.monotonic() - started, 1)

    def set_source(self, source: str) -> float:
        started = time.monotonic()
        if source != self.source:
            self.applier.apply_all([zentinel(z, source) for z in names(self.size)])
            self.source = source
        return round(time.monotonic() - started, 1)

    def clear_incidents(self) -> None:
        self.kube.run("delete", "zinc", "--all", "-n", NAMESPACE, "--wait=false", check=False)
        wait_for(
            lambda: (
                not self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "zentinelincidents")["items"]
            ),
            timeout=120,
            what="no incidents left",
        )

    def idle(self, seconds: float) -> dict[str, Any]:
        pids = {"kube-apiserver": self.cluster.pids()["kube-apiserver"]}
        with Window(self.cluster, pids) as w:
            time.sleep(seconds)
        return w.figures()

    def run_config(
        self, source: str, events: bool, shards: int, args: argparse.Namespace, baseline: dict[str, float]
    ) -> dict[str, Any]:
        label = f"{source}, event passes {'on' if events else 'off'}" + (f", {shards} shards" if shards > 1 else "")
        say(f"size {self.size}: {label}")
        out: dict[str, Any] = {"source": source, "event_passes": events, "shards": shards}
        out["apply_source_s"] = self.set_source(source)
        self.clear_incidents()
        env = {"ZENTINEL_OPERATOR_EVENT_PASSES": "true" if events else "false"}
        env.update(kv.split("=", 1) for kv in args.operator_env)
        if source == "Prometheus" and self.prometheus is not None:
            env["ZENTINEL_OPERATOR_PROMETHEUS_URL"] = self.prometheus.url
        ops = []
        for i in range(shards):
            shard_env = dict(env)
            if shards > 1:
                shard_env |= {"ZENTINEL_OPERATOR_SHARD_COUNT": str(shards), "ZENTINEL_OPERATOR_SHARD_INDEX": str(i)}
            suffix = f"-shard-{i}" if shards > 1 else ""
            log_dir = self.workdir / f"operator-{source}-{'events' if events else 'timer'}{suffix}"
            log_dir.mkdir()
            ops.append(BenchOperator(self.cluster.audited_kubeconfigs[i], NAMESPACE, log_dir, shard_env))
        fleet = Operators(ops)
        users = audit.AUDITED_USERS[:shards] if shards > 1 else ()
        if shards > 1:
            out["zentinels_by_shard"] = [
                sum(1 for z in names(self.size) if shard_of(NAMESPACE, z, shards) == i) for i in range(shards)
            ]
        rng = random.Random(args.seed + self.size)  # noqa: S311 - which Zentinel, not a secret
        watch = IncidentWatch(self.custom)
        try:
            with fleet.running():
                pids = {
                    **fleet.pids(),
                    "kube-apiserver": self.cluster.pids()["kube-apiserver"],
                    "emulators": self.emulators.proc.pid,
                }
                out.update(warm_up(fleet, self.size, timeout=args.warm_up_timeout))
                say(f"  warm: {out['warm_up_s']} s, passes {out['passes']}")
                before = fleet.passes()
                with Window(self.cluster, pids, users) as steady:
                    time.sleep(args.window)
                out["steady"] = steady.figures(baseline)
                by_shard(out["steady"], shards)
                out["steady"]["passes"] = delta_passes(fleet.passes(), before)
                out["steady"]["incidents_opened"] = watch.categories(steady.started, steady.seconds)
                say(f"  steady: {brief(out['steady'])}")
                before = fleet.passes()
                with Window(self.cluster, pids, users) as faulty:
                    metric: list[dict[str, Any]] = []
                    worker = threading.Thread(
                        target=lambda: metric.extend(
                            metric_faults(self, watch, args.metric_faults, rng, args.metric_timeout)
                        )
                    )
                    if self.size > 1:
                        worker.start()
                    pod = pod_faults(
                        self, watch, args.pod_faults, rng, args.pod_timeout, lambda: fleet.passes().get("count", 0)
                    )
                    if self.size > 1:
                        worker.join()
                    else:  # one Zentinel: the metric fault after the crashes, not on top of one
                        metric.extend(metric_faults(self, watch, args.metric_faults, rng, args.metric_timeout))
                out["fault"] = faulty.figures(baseline)
                by_shard(out["fault"], shards)
                out["fault"]["passes"] = delta_passes(fleet.passes(), before)
                out["fault"]["incidents_opened"] = watch.categories(faulty.started, faulty.seconds)
                out["pod_fault_latency"] = latency_figures(pod)
                out["metric_fault_latency"] = latency_figures(metric)
                if shards > 1:
                    out["latency_by_shard"] = [
                        {
                            kind: latency_figures(
                                [x for x in samples if shard_of(NAMESPACE, x["zentinel"], shards) == i]
                            )
                            for kind, samples in (("pod_fault_latency", pod), ("metric_fault_latency", metric))
                        }
                        for i in range(shards)
                    ]
                say(f"  fault: {brief(out['fault'])}")
                say(f"  pod faults: {short(out['pod_fault_latency'])}")
                say(f"  metric faults: {short(out['metric_fault_latency'])}")
                out["operator_alive"] = fleet.alive()
        finally:
            watch.stop()
        log = fleet.logs()
        out["log_tracebacks"] = log.count("Traceback")
        out["log_errors"] = sum(1 for line in log.splitlines() if " ERROR " in line or "[ERROR" in line)
        return out

    def down(self) -> None:
        for stop in (
            lambda: self.prometheus and self.prometheus.stop(),
            lambda: self.emulators.stop(),  # noqa: PLW0108 - self.emulators may not exist yet
            lambda: self.cluster.down(log=False),
        ):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                say(f"teardown: {e}")


def delta_passes(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before.get(k, 0.0), 3) for k, v in after.items()}


def writes(rates: dict[str, float]) -> float:
    return round(sum(v for k, v in rates.items() if k.split(" ", 1)[0] in ("create", "update", "patch", "delete")), 1)


def reads(rates: dict[str, float]) -> float:
    return round(sum(v for k, v in rates.items() if k.split(" ", 1)[0] in ("get", "list")), 1)


def brief(w: dict[str, Any]) -> str:
    ops = w["operator_requests_per_minute"]
    return (
        f"operator {w['cpu_cores'].get('operator')} cores, {w['rss_mib'].get('operator')} MiB; "
        f"its requests/min: {writes(ops)} writes, {reads(ops)} reads ({ops})"
    )


def short(lat: dict[str, Any]) -> str:
    return f"n={lat['n']} missed={lat['missed']} p50={lat['p50_s']} s p99={lat['p99_s']} s"


# ---------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def config_key(c: dict[str, Any]) -> tuple[str, bool, int]:
    return c["source"], c["event_passes"], c.get("shards", 1)


def label_of(key: tuple[str, bool, int]) -> str:
    source, events, shards = key
    return f"{source}, events {'on' if events else 'off'}" + (f", {shards} shards (sum)" if shards > 1 else "")


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results["sizes"])
    configs_seen = sorted({config_key(c) for s in results["sizes"].values() for c in s.get("configs", [])})

    def series(key: tuple[str, bool, int], get: Callable[[dict[str, Any]], Any]) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for size in sizes:
            for c in results["sizes"][str(size)].get("configs", []):
                if config_key(c) == key and get(c) is not None:
                    xs.append(size)
                    ys.append(get(c))
        return xs, ys

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, kind, title in (
        (axes[0], "pod_fault_latency", "crash loop written to a pod"),
        (axes[1], "metric_fault_latency", "5xx share raised to 50 %"),
    ):
        for key in configs_seen:
            for q, style in (("p50_s", "-o"), ("p99_s", "--x")):
                xs, ys = series(key, lambda c, kind=kind, q=q: c[kind][q])
                ax.plot(xs, ys, style, label=f"{label_of(key)} {q[:3]}")
        ax.set_xscale("log")
        ax.set_xlabel("Zentinels (x 3 pods)")
        ax.set_ylabel("seconds to ZentinelIncident")
        ax.set_title(f"Detection latency: {title}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "scale-latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in configs_seen:
        for phase, style in (("steady", "-o"), ("fault", "--x")):
            xs, ys = series(key, lambda c, phase=phase: c[phase]["cpu_cores"]["operator"])
            axes[0].plot(xs, ys, style, label=f"{label_of(key)} {phase}")
            xs, ys = series(key, lambda c, phase=phase: c[phase]["rss_mib"]["operator"])
            axes[1].plot(xs, ys, style, label=f"{label_of(key)} {phase}")
    for ax, ylabel, target in ((axes[0], "operator CPU (cores)", 1.0), (axes[1], "operator RSS (MiB)", 300.0)):
        ax.axhline(target, color="red", linewidth=0.8, linestyle=":", label="issue 13 target")
        ax.set_xscale("log")
        ax.set_xlabel("Zentinels (x 3 pods)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("Operator CPU vs fleet size")
    axes[1].set_title("Operator RSS vs fleet size")
    fig.tight_layout()
    paths.append(out / "scale-cpu.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def head(*cells: str) -> list[str]:
    """A blank line, a Markdown table's header row (``cells`` joined) and its rule."""
    header = "".join(cells)
    return ["", header, "|" + "---|" * (header.count("|") - 1)]


def report(results: dict[str, Any]) -> str:
    """The figures of a run's JSON as Markdown tables (for BENCHMARKS.md)."""
    sizes = sorted(results["sizes"], key=int)
    out = head(
        "| Zentinels | pods | cluster up (s) | Deployments applied (s) | pods Running (s) | emulators (s) "
        "| Prometheus scraping all (s) | load avg before |"
    )[1:]
    for size in sizes:
        e = results["sizes"][size]
        st = e.get("setup", {})
        out.append(
            f"| {size} | {int(size) * REPLICAS} | {st.get('cluster_s')} | {st.get('apply_deployments_s')} "
            f"| {st.get('pods_running_s')} | {st.get('emulators_s')} | {st.get('prometheus_s', '-')} "
            f"| {' '.join(f'{x:.2f}' for x in e.get('load_average_before', []))} |"
        )

    def rows() -> Iterator[tuple[str, dict[str, Any], str]]:
        for size in sizes:
            for c in results["sizes"][size].get("configs", []):
                yield size, c, label_of(config_key(c))

    def mean_pass(w: dict[str, Any]) -> str:
        p = w.get("passes", {})
        return f"{p['sum'] / p['count']:.3f}" if p.get("count") else "-"

    out += head(
        "| Zentinels | operator | CPU steady (cores) | CPU fault (cores) | RSS steady (MiB) | peak RSS (MiB) "
        "| passes/min steady (timer+event) | mean pass (s) | kube-apiserver CPU steady (cores) "
        "| emulators CPU steady (cores) | incidents opened, steady window |"
    )
    for size, c, label in rows():
        s, f = c["steady"], c["fault"]
        per_min = 60 / s["seconds"]
        passes = s.get("passes", {})
        out.append(
            f"| {size} | {label} | {s['cpu_cores']['operator']} | {f['cpu_cores']['operator']} "
            f"| {s['rss_mib']['operator']} | {f['peak_rss_mib']['operator']} "
            f"| {passes.get('timer', 0) * per_min:.0f}+{passes.get('event', 0) * per_min:.0f} | {mean_pass(s)} "
            f"| {s['cpu_cores']['kube-apiserver']} | {s['cpu_cores'].get('emulators', '-')} "
            f"| {', '.join(f'{k} {v}' for k, v in s.get('incidents_opened', {}).items()) or '-'} |"
        )
    for phase in ("steady", "fault"):
        out += head(
            f"| Zentinels | operator | {phase}: writes/min | reads/min | watches opened/min "
            "| the operator's requests per minute (audit log, its user) |"
        )
        for size, c, label in rows():
            ops = c[phase]["operator_requests_per_minute"]
            watches = sum(v for k, v in ops.items() if k.startswith("watch "))
            detail = ", ".join(f"{k} {v:g}" for k, v in ops.items())
            out.append(f"| {size} | {label} | {writes(ops)} | {reads(ops)} | {watches:g} | {detail} |")
    out += head(
        "| Zentinels | operator | steady: all clients minus idle (apiserver_request_total, per minute, WATCH left out) "
        "| fault: all clients minus idle |"
    )
    for size, c, label in rows():
        cells = []
        for phase in ("steady", "fault"):
            rates = c[phase].get("all_clients_minus_idle_per_minute", {})
            # WATCH is counted when a watch ends, any client's: the controllers' watches ending in the window.
            shown = {k: v for k, v in rates.items() if not k.startswith("WATCH ")}
            cells.append(", ".join(f"{k} {v:g}" for k, v in shown.items()) or "0")
        out.append(f"| {size} | {label} | {cells[0]} | {cells[1]} |")
    out += head(
        "| Zentinels | operator | crash loop: n | p50 (s) | p99 (s) | max (s) | missed "
        "| 5xx share: n | p50 (s) | p99 (s) | max (s) | missed |"
    )
    for size, c, label in rows():
        p, m = c["pod_fault_latency"], c["metric_fault_latency"]
        out.append(
            f"| {size} | {label} | {p['n']} | {p['p50_s']} | {p['p99_s']} | {p['max_s']} | {p['missed']} "
            f"| {m['n']} | {m['p50_s']} | {m['p99_s']} | {m['max_s']} | {m['missed']} |"
        )
    failed = [(size, c) for size in sizes for c in results["sizes"][size].get("failed_configs", [])]
    if failed:
        out += head("| Zentinels | operator | failed with |")
        out += [f"| {size} | {label_of(config_key(c))} | `{c['error'][:300]}` |" for size, c in failed]
    sharded = [(size, c, label) for size, c, label in rows() if c.get("shards", 1) > 1]
    if sharded:
        out += head(
            "| Zentinels | operator | shard | Zentinels in it | CPU steady (cores) | RSS steady (MiB) "
            "| peak RSS (MiB) | steady: its requests/min (audit log, its user) | fault: writes/min | reads/min "
            "| crash loop: n, p50 / p99 (s) | 5xx share: n, p50 / p99 (s) |"
        )
        for size, c, label in sharded:
            for i in range(c["shards"]):
                s, f = c["steady"], c["fault"]
                steady_ops = s["operator_requests_per_minute_by_shard"][i]
                fault_ops = f["operator_requests_per_minute_by_shard"][i]
                lat = c["latency_by_shard"][i]
                p, m = lat["pod_fault_latency"], lat["metric_fault_latency"]
                out.append(
                    f"| {size} | {label} | {i} | {c['zentinels_by_shard'][i]} | {s['cpu_cores'][f'shard-{i}']} "
                    f"| {s['rss_mib'][f'shard-{i}']} | {f['peak_rss_mib'][f'shard-{i}']} "
                    f"| {', '.join(f'{k} {v:g}' for k, v in steady_ops.items()) or '0'} "
                    f"| {writes(fault_ops)} | {reads(fault_ops)} "
                    f"| {p['n']}, {p['p50_s']} / {p['p99_s']} | {m['n']}, {m['p50_s']} / {m['p99_s']} |"
                )
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="1,100,1000", help="fleet sizes, comma-separated (Zentinels of 3 pods)")
    p.add_argument("--sources", default="Scrape,Prometheus", help="metricsSource values to run")
    p.add_argument(
        "--event-passes",
        default="off,on",
        help="ZENTINEL_OPERATOR_EVENT_PASSES settings to run: off, on, or both (the operator's default is "
        "recorded in the JSON)",
    )
    p.add_argument(
        "--shards",
        default="1",
        help="shard counts to run each configuration with, comma-separated; above 1 only for fleets of more than "
        "one Zentinel (one operator process per shard, each its own audited user)",
    )
    p.add_argument(
        "--shard-sources",
        default=None,
        help="the metric sources that shard counts above 1 run with, comma-separated (default: every --sources)",
    )
    p.add_argument("--window", type=float, default=60, help="seconds of the quiet window")
    p.add_argument("--idle-window", type=float, default=30, help="seconds of the window without the operator")
    p.add_argument("--pod-faults", type=int, default=10, help="crash loops injected per run, one after another")
    p.add_argument("--metric-faults", type=int, default=3, help="Zentinels whose 5xx share is raised per run")
    p.add_argument("--pod-timeout", type=float, default=60, help="seconds a crash may take to be detected")
    p.add_argument("--metric-timeout", type=float, default=120, help="seconds a 5xx rise may take to be detected")
    p.add_argument("--warm-up-timeout", type=float, default=180, help="seconds to wait for two passes per Zentinel")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an operator setting to add (e.g. ZENTINEL_OPERATOR_LEADER_ELECTION=false); may be repeated",
    )
    p.add_argument("--quick", action="store_true", help="sizes 1,10, a 20 s window, 3 crashes, 1 metric fault")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="directory for JSON and PNGs")
    p.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="print the JSON of runs as Markdown tables (sizes merged, a later file's size winning) and plot them "
        "into --out; nothing is run",
    )
    p.add_argument("--keep-logs", type=Path, default=None, help="copy the operators' logs into this directory")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the emulator child process
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.window, args.idle_window, args.pod_faults, args.metric_faults = "1,10", 20, 15, 3, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve()
        return
    if args.report:
        merged: dict[str, Any] = {"sizes": {}}
        for path in args.report:
            run = json.loads(path.read_text())
            merged["sizes"].update({k: v for k, v in run["sizes"].items() if v.get("configs")})
        print(report(merged), end="")
        args.out.mkdir(parents=True, exist_ok=True)
        for png in plot(merged, args.out):
            print(f"wrote {png}", file=sys.stderr)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    events = [{"off": False, "on": True}[e.strip()] for e in args.event_passes.split(",") if e.strip()]
    shard_counts = [int(n) for n in args.shards.split(",") if n.strip()]
    shard_sources = sources if args.shard_sources is None else [s.strip() for s in args.shard_sources.split(",")]
    if any(not 1 <= n <= len(audit.AUDITED_USERS) for n in shard_counts):
        sys.exit(f"--shards: each count must be 1 to {len(audit.AUDITED_USERS)} (one audited user per shard)")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "scale.json"
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "operator_defaults": {
            k: v
            for k, v in operator_config.load({}).model_dump().items()
            if k in ("scan_interval", "event_passes", "event_debounce", "event_concurrency", "prometheus_window")
        },
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("serve",)}
        | {"rps_per_pod": RPS_PER_POD, "fault_share": FAULT_SHARE, "prometheus_interval": PROMETHEUS_INTERVAL},
        "sizes": {},
    }
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"zentinel-scale-{size}-") as tmp:
            bench = Bench(size, Path(tmp))
            entry: dict[str, Any] = {"load_average_before": os.getloadavg()}
            results["sizes"][str(size)] = entry
            try:
                say(f"size {size}: creating the cluster and {size} x {REPLICAS} pods")
                entry["setup"] = bench.up()
                say(f"  setup {entry['setup']}")
                if "Prometheus" in sources:
                    entry["setup"]["prometheus_s"] = bench.start_prometheus()
                bench.set_source(sources[0])
                entry["idle"] = bench.idle(args.idle_window)
                baseline = entry["idle"]["all_clients_requests_per_minute"]
                say(f"  idle (no operator): {baseline}")
                entry["configs"] = []
                for source in sources:
                    for ev in events:
                        for shards in shard_counts:
                            if shards > 1 and (size == 1 or source not in shard_sources):
                                continue  # one Zentinel: every shard but one would be idle
                            try:
                                entry["configs"].append(bench.run_config(source, ev, shards, args, baseline))
                            except Exception as e:  # this configuration only: the next one runs on the same fleet
                                failed = {"source": source, "event_passes": ev, "shards": shards}
                                entry.setdefault("failed_configs", []).append(failed | {"error": f"{e!r}"[:2000]})
                                say(f"size {size}: {label_of(config_key(failed))} failed: {e!r}"[:2000])
                            json_path.write_text(json.dumps(results, indent=2, default=str))
            except Exception as e:
                entry["error"] = f"{type(e).__name__}: {e}"
                say(f"size {size} failed: {entry['error']}")
                keep = Path(tempfile.gettempdir()) / f"zentinel-scale-failed-{size}"
                with contextlib.suppress(Exception):
                    subprocess.run(["cp", "-r", tmp, str(keep)], check=False, timeout=120)
            finally:
                entry["load_average_after"] = os.getloadavg()
                bench.down()
                if args.keep_logs:  # the operators' logs of this size, before the directory goes
                    keep_dir = args.keep_logs / f"size-{size}"
                    keep_dir.mkdir(parents=True, exist_ok=True)
                    for log_dir in Path(tmp).glob("operator-*"):
                        shutil.copytree(log_dir, keep_dir / log_dir.name, dirs_exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2, default=str))
    results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    json_path.write_text(json.dumps(results, indent=2, default=str))
    for path in plot(results, args.out):
        say(f"wrote {path}")
    say(f"wrote {json_path}")
    print(report(results))


if __name__ == "__main__":
    main()
