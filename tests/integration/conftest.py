"""Fixtures for tests against a real control plane on loopback.

The session starts its own cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok),
built once from Go modules and cached under ~/.cache/zentinel-operator/tools. Nothing here skips
for lack of a cluster: when it cannot start, the tests error with the reason.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kube import Kube, wait_for
from zentinel_devcluster import tools
from zentinel_devcluster.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tools.ensure(["k8s", "etcd", "kwok"])
    state = tmp_path_factory.mktemp("cluster")
    c = Cluster(state)
    c.up(log=True)
    version = c.status().get("serverVersion")
    print(f"\n[integration] kube-apiserver {version} at {c.server} (built from k8s.io/kubernetes)")
    try:
        yield c
    finally:
        c.down(log=True)


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    k = Kube(tools.binary("kubectl"), cluster.kubeconfig)
    k.run("apply", "--server-side", "-f", str(REPO / "crds"))
    for crd in ("zentinels", "zentinelincidents", "zentinelincidentpolicies"):
        k.run("wait", "--for=condition=Established", f"crd/{crd}.zentinel.io", "--timeout=60s")
    return k


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    kube.run("create", "namespace", name)
    wait_for(lambda: kube.get("serviceaccount", "default", name), timeout=30, what="default ServiceAccount")
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """The operator as a real process (``python -m zentinel_operator run``) against the cluster."""

    def __init__(self, kubeconfig: Path, namespace: str, log_dir: Path, extra_env: dict[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.metrics_port = free_port()
        self.probe_port = free_port()
        self.extra_env = extra_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "ZENTINEL_OPERATOR_NAMESPACES": self.namespace,
                "ZENTINEL_OPERATOR_METRICS_PORT": str(self.metrics_port),
                "ZENTINEL_OPERATOR_METRICS_ADDR": "127.0.0.1",
                "ZENTINEL_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{self.probe_port}/healthz",
                "ZENTINEL_OPERATOR_SCAN_INTERVAL": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.starts += 1
        out = self.log_file.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zentinel_operator", "run", "--verbose"],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_for(self._alive, timeout=60, what="operator liveness probe")

    def _alive(self) -> bool:
        import urllib.request

        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.probe_port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as a crashed or evicted pod."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Override in a test module to pass extra ZENTINEL_OPERATOR_* settings."""
    return {}


@pytest.fixture
def operator(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp_path, operator_env)
    op.start()
    try:
        yield op
    finally:
        op.stop()
        rep: Any = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(f"\n--- operator log ({op.log_file}) ---\n{op.logs()[-6000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def wait_seconds(seconds: float) -> None:
    time.sleep(seconds)
