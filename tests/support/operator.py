"""The operator as a real process (``python -m zentinel_operator run``) for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .kube import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Something accepts connections on ``port`` on loopback (a server the operator starts once active)."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class OperatorProcess:
    """The operator as a real process (``python -m zentinel_operator run``) against the cluster."""

    # kopf's debug log (``--verbose``) for tests; a benchmark turns it off, as the chart's default does.
    verbose = True

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
                # Leader election on a Lease in the test's namespace, on short timings: a process started
                # after a SIGKILL waits out the dead one's Lease (6 s) before it runs.
                "ZENTINEL_OPERATOR_LEASE_DURATION": "6",
                "ZENTINEL_OPERATOR_LEASE_RENEW_DEADLINE": "4",
                "ZENTINEL_OPERATOR_LEASE_RETRY_PERIOD": "0.5",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.starts += 1
        out = self.log_file.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zentinel_operator", "run", *(["--verbose"] if self.verbose else [])],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_for(self._alive, timeout=60, what="operator liveness probe")

    def _alive(self) -> bool:
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

    def current_log(self) -> str:
        """The log of the running (or last) process only."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())


def print_logs_if_failed(request: Any, procs: dict[str, OperatorProcess], tail: int = 6000) -> bool:
    """After a failed test, the last lines of each operator process's log (``request``: the fixture's).

    Returns whether the test failed, for a fixture with more to show.
    """
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and bool(rep.failed)
    if failed:
        for label, op in procs.items():
            print(f"\n--- {label} log ({op.log_file}) ---\n{op.logs()[-tail:]}")
    return failed


@contextlib.contextmanager
def running(op: OperatorProcess, request: Any) -> Iterator[OperatorProcess]:
    """``op`` started, then stopped, with its log printed when the test (``request``'s) failed."""
    op.start()
    try:
        yield op
    finally:
        op.stop()
        print_logs_if_failed(request, {"operator": op})
