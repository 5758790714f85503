"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (playing the kubelet), all built from Go modules by :mod:`.tools`.

TLS is on, clients authenticate with certificates, and authorization is ``Node,RBAC``, so the
RBAC rules the chart ships are really exercised. Pods scheduled to the kwok node get IPs from a
loopback range (a /20 of ``127.128.0.0/10`` per cluster): a process a test binds to a pod's IP is
reachable at that IP, as the operator reaches real pods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from . import audit, kubelet, tools
from .pki import CA, service_account_keypair

NODE_NAME = "kwok-node-0"
# Pod IPs are loopback addresses. Each cluster takes its own /20 of 127.128.0.0/10, chosen when it
# starts (see choose_pod_cidr) and kept in its state file, so that clusters running side by side never
# hand out the same pod IP.
POD_RANGE_BASE = (127, 128)
POD_RANGES = 64 * 16  # /20s in 127.128.0.0/10
SERVICE_CIDR = "10.96.0.0/16"
LOOPBACK = "127.0.0.1"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "process-kubelet")
# The process node's pod IPs: a /20 of 127.192.0.0/10, at the same offset as the kwok node's range.
PROCESS_RANGE_SHIFT = 64


class ClusterError(RuntimeError):
    """Something a person must fix (a taken port, a missing binary); the message says what."""


def default_state_dir() -> Path:
    env = os.environ.get("ZENTINEL_CLUSTER_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "zentinel-operator" / "cluster" / "default"


class PortTakenError(ClusterError):
    """A binary could not bind a port chosen for it: another process took it in the meantime."""

    def __init__(self, process: str, message: str) -> None:
        super().__init__(message)
        self.process = process


# Attempts of ``Cluster.up`` when a chosen port is taken before the binary binds it.
PORT_ATTEMPTS = 3


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each socket stays bound until all are chosen, so none repeats.

    Another process can still take one between here and the binary binding it; ``Cluster.up``
    retries with fresh ports when that happens.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((LOOPBACK, 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _procs_mentioning(marker: str) -> list[int]:
    """PIDs whose command line mentions ``marker`` (used to find strays on ``down``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@dataclasses.dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    kwok: int
    process_kubelet: int = 0

    @classmethod
    def choose(cls, apiserver: int | None = None) -> Ports:
        if apiserver is not None and _port_taken(apiserver):
            raise ClusterError(
                f"port {apiserver} on {LOOPBACK} is already in use; free it or pick another with "
                "--apiserver-port (or leave it out to use a free port)"
            )
        etcd_client, etcd_peer, free_apiserver, kwok, process_kubelet = _free_ports(5)
        return cls(
            etcd_client=etcd_client,
            etcd_peer=etcd_peer,
            apiserver=apiserver or free_apiserver,
            kwok=kwok,
            process_kubelet=process_kubelet,
        )


def pod_range(index: int) -> str:
    """The ``index``-th /20 of 127.128.0.0/10 (0 <= index < :data:`POD_RANGES`)."""
    second = POD_RANGE_BASE[1] + (index // 16) % 64
    third = (index % 16) * 16
    return f"{POD_RANGE_BASE[0]}.{second}.{third}.0/20"


def pod_cidr_for(state_dir: Path) -> str:
    """The range a state directory prefers (``ZENTINEL_CLUSTER_POD_CIDR`` if set)."""
    env = os.environ.get("ZENTINEL_CLUSTER_POD_CIDR")
    if env:
        return env
    digest = hashlib.sha256(str(state_dir).encode()).digest()
    return pod_range(digest[0] % 64 * 16 + digest[1] % 16)


def choose_pod_cidr(preferred: str, listening: Iterable[ipaddress.IPv4Address], *, start: int | None = None) -> str:
    """A kwok range in which nothing listens, nor in its process range; ``preferred`` when it is free.

    The preferred range comes from the state directory's path, and that path recurs: two sessions in
    separate containers sharing the host's loopback, or a process left over by a session that was
    killed, hold pod IPs of the very range a new session would pick, and its first pod's bind fails
    with "address already in use". The walk then starts at ``start`` (random unless given), so that two
    sessions starting at the same moment do not both take the next free range.
    """
    taken = list(listening)

    def free(cidr: str) -> bool:
        nets = (ipaddress.ip_network(cidr), ipaddress.ip_network(process_cidr_for(cidr)))
        return not any(ip in net for ip in taken for net in nets)

    if os.environ.get("ZENTINEL_CLUSTER_POD_CIDR") or free(preferred):
        return preferred
    first = secrets.randbelow(POD_RANGES) if start is None else start
    for i in range(POD_RANGES):
        cidr = pod_range((first + i) % POD_RANGES)
        if free(cidr):
            return cidr
    raise ClusterError("every pod range of 127.128.0.0/10 has a process listening in it")


def loopback_listeners() -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses something listens on (TCP, from ``/proc/net/tcp``; empty where there is none)."""
    out: list[ipaddress.IPv4Address] = []
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
            addr = fields[1].split(":")[0]
            out.append(ipaddress.IPv4Address(bytes.fromhex(addr)[::-1]))
    return out


def process_cidr_for(pod_cidr: str) -> str:
    """The process node's range: the kwok range moved up by :data:`PROCESS_RANGE_SHIFT` in the second octet."""
    first, second, rest = pod_cidr.split(".", 2)
    return f"{first}.{(int(second) + PROCESS_RANGE_SHIFT) % 256}.{rest}"


class Cluster:
    """One local control plane whose files live in ``state_dir``."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.pki = self.state_dir / "pki"
        self.logs = self.state_dir / "logs"
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.developer_kubeconfig = self.state_dir / "kubeconfig-developer"
        # The user whose every request the API server writes to ``audit_log`` (see ``audit``).
        self.audited_kubeconfig = self.state_dir / "kubeconfig-audited"
        # One per audited user (the first is ``audited_kubeconfig``): several operator processes told apart.
        self.audited_kubeconfigs = [
            self.audited_kubeconfig,
            *(self.state_dir / f"kubeconfig-audited-{i}" for i in range(1, len(audit.AUDITED_USERS))),
        ]
        self.audit_log = self.logs / "audit.log"
        self.state_file = self.state_dir / "state.json"
        self.pods_dir = self.state_dir / "process-pods"

    # ------------------------------------------------------------------ state
    def _read_state(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_state(self, state: dict[str, object]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))

    @property
    def pod_cidr(self) -> str:
        """The kwok node's pod range: the one this cluster was started with, else the one it prefers."""
        cidr = (self._read_state() or {}).get("podCIDR")
        return cidr if isinstance(cidr, str) else pod_cidr_for(self.state_dir)

    @property
    def process_cidr(self) -> str:
        return process_cidr_for(self.pod_cidr)

    @property
    def server(self) -> str:
        state = self._read_state() or {}
        ports = state.get("ports")
        assert isinstance(ports, dict)
        return f"https://{LOOPBACK}:{ports['apiserver']}"

    def pids(self) -> dict[str, int]:
        state = self._read_state() or {}
        pids = state.get("pids", {})
        assert isinstance(pids, dict)
        return {str(k): int(v) for k, v in pids.items()}

    # ----------------------------------------------------------------- checks
    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _get(self, path: str, timeout: float = 3.0) -> tuple[int, str]:
        req = urllib.request.Request(self.server + path)  # noqa: S310 - https to our own loopback apiserver
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=timeout) as resp:  # noqa: S310
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode(errors="replace")

    def is_up(self) -> bool:
        pids = self.pids()
        if not pids or not all(_pid_alive(p) for p in pids.values()):
            return False
        try:
            status, _ = self._get("/readyz")
        except (OSError, AssertionError, ssl.SSLError):
            return False
        return status == 200

    # ---------------------------------------------------------------- kubectl
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(tools.binary("kubectl")), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    # --------------------------------------------------------------------- up
    def up(self, *, apiserver_port: int | None = None, timeout: float = 120.0, log: bool = True) -> None:
        say = _say if log else _quiet
        if self.is_up():
            say(f"already up at {self.server} (kubeconfig {self.kubeconfig})")
            return
        if self._read_state() is not None:
            say("found a partial or stopped cluster; cleaning it up first")
            self.down(log=log)
        missing = [
            b
            for b in (
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kwok",
                "kubectl",
            )
            if not _binary_exists(b)
        ]
        if missing:
            raise ClusterError(
                f"missing binaries: {', '.join(missing)}; build them with `scripts/cluster build` "
                f"(cache: {tools.cache_root()})"
            )
        # A port the user asked for stays; the chosen ones are chosen again.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start(Ports.choose(apiserver_port), say, timeout)
                return
            except PortTakenError as e:
                if attempt == PORT_ATTEMPTS:
                    raise
                say(f"{e.process} lost a port to another process after it was chosen; retrying with fresh ports")

    def _start(self, ports: Ports, say: Callable[[str], None], timeout: float) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.pki, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        cidr = choose_pod_cidr(pod_cidr_for(self.state_dir), loopback_listeners())
        state = {"ports": dataclasses.asdict(ports), "pids": {}, "started": time.time(), "podCIDR": cidr}
        self._write_state(state)
        started = time.monotonic()
        try:
            self._make_pki()
            self._write_kubeconfigs(ports)
            say(f"starting etcd on {LOOPBACK}:{ports.etcd_client}")
            self._start_etcd(ports)
            self._wait(lambda: _http_ok(f"http://{LOOPBACK}:{ports.etcd_client}/health"), "etcd", timeout)
            say(f"starting kube-apiserver on https://{LOOPBACK}:{ports.apiserver}")
            self._start_apiserver(ports)
            self._wait(self._ready_quiet, "kube-apiserver", timeout)
            say("starting kube-controller-manager, kube-scheduler and kwok")
            self._start_controller_manager()
            self._start_scheduler()
            self._create_node()
            self._start_kwok(ports)
            self._start_process_kubelet(ports)
            self._wait(self._node_ready, f"node {NODE_NAME} Ready (kwok)", timeout)
            self._wait(
                lambda: self._node_ready(kubelet.NODE_NAME, [kubelet.TAINT]), f"node {kubelet.NODE_NAME}", timeout
            )
            self._wait(self._default_sa_exists, "default ServiceAccount (controller-manager)", timeout)
        except BaseException:
            self.down(log=False, keep_logs=True)
            raise
        say(f"up in {time.monotonic() - started:.1f}s: server {self.server}")
        say(f"export KUBECONFIG={self.kubeconfig}")

    def _ready_quiet(self) -> bool:
        try:
            return self._get("/readyz")[0] == 200
        except (OSError, ssl.SSLError):
            return False

    def _node_ready(self, name: str = NODE_NAME, taints: list[dict[str, str]] | None = None) -> bool:
        """Ready, and the node-lifecycle controller has lifted the not-ready taint (pods can schedule)."""
        proc = self.kubectl("get", "node", name, "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        node = json.loads(proc.stdout)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in node.get("status", {}).get("conditions", [])
        )
        left = [{k: t.get(k) for k in ("key", "value", "effect")} for t in node.get("spec", {}).get("taints") or []]
        return ready and left == (taints or [])

    def _default_sa_exists(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0

    def _wait(self, probe: object, what: str, timeout: float) -> None:
        assert callable(probe)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_processes()
            if probe():
                return
            time.sleep(0.3)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.logs}")

    def _check_processes(self) -> None:
        for name, pid in self.pids().items():
            if not _pid_alive(pid):
                log_file = self.logs / f"{name}.log"
                tail = _tail(log_file)
                if "address already in use" in tail:
                    raise PortTakenError(
                        name,
                        f"{name} exited during start-up (a port it wanted is already in use; run "
                        f"`scripts/cluster down` or free it); last lines of {log_file}:\n{tail}",
                    )
                raise ClusterError(f"{name} exited during start-up; last lines of {log_file}:\n{tail}")

    # ------------------------------------------------------------------- pki
    def _make_pki(self) -> None:
        ca = CA.create("zentinel-devcluster-ca")
        ca.save(self.pki / "ca.crt", self.pki / "ca.key")
        ca.issue_to(
            self.pki,
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=(LOOPBACK, "10.96.0.1"),
            server=True,
        )
        ca.issue_to(
            self.pki,
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            organizations=("system:masters",),
            client=True,
        )
        ca.issue_to(self.pki, "admin", "zentinel-admin", organizations=("system:masters",), client=True)
        ca.issue_to(self.pki, "developer", "developer", client=True)
        for i, user in enumerate(audit.AUDITED_USERS):
            name = "audited" if i == 0 else f"audited-{i}"
            ca.issue_to(self.pki, name, user, organizations=("system:masters",), client=True)
        ca.issue_to(self.pki, "controller-manager", "system:kube-controller-manager", client=True)
        ca.issue_to(self.pki, "scheduler", "system:kube-scheduler", client=True)
        # kwok updates node and pod status for every node it manages: it acts as the kubelet.
        ca.issue_to(self.pki, "kwok", "kwok", organizations=("system:masters",), client=True)
        ca.issue_to(self.pki, "process-kubelet", "process-kubelet", organizations=("system:masters",), client=True)
        ca.issue_to(
            self.pki,
            "process-kubelet-serving",
            kubelet.NODE_NAME,
            ip_addresses=(LOOPBACK,),
            dns_names=("localhost",),
            server=True,
        )
        ca.issue_to(
            self.pki,
            "kwok-serving",
            NODE_NAME,
            ip_addresses=(LOOPBACK,),
            dns_names=("localhost",),
            server=True,
        )
        service_account_keypair(self.pki)

    def _kubeconfig_text(self, server: str, user: str) -> str:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "zentinel-dev",
                    "cluster": {"server": server, "certificate-authority": str(self.pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate": str(self.pki / f"{user}.crt"),
                        "client-key": str(self.pki / f"{user}.key"),
                    },
                }
            ],
            "contexts": [{"name": f"{user}@zentinel-dev", "context": {"cluster": "zentinel-dev", "user": user}}],
            "current-context": f"{user}@zentinel-dev",
        }
        return json.dumps(cfg, indent=2)

    def _write_kubeconfigs(self, ports: Ports) -> None:
        server = f"https://{LOOPBACK}:{ports.apiserver}"
        self.kubeconfig.write_text(self._kubeconfig_text(server, "admin"))
        self.developer_kubeconfig.write_text(self._kubeconfig_text(server, "developer"))
        for i, path in enumerate(self.audited_kubeconfigs):
            path.write_text(self._kubeconfig_text(server, "audited" if i == 0 else f"audited-{i}"))
        for user in ("controller-manager", "scheduler", "kwok", "process-kubelet"):
            (self.state_dir / f"{user}.kubeconfig").write_text(self._kubeconfig_text(server, user))
        for p in (self.kubeconfig, self.developer_kubeconfig, *self.audited_kubeconfigs):
            p.chmod(0o600)

    # -------------------------------------------------------------- processes
    def _spawn(self, name: str, args: Sequence[str], *, python: bool = False) -> None:
        log_file = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, *args] if python else [str(tools.binary(args[0])), *args[1:]],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state_dir,
        )
        log_file.close()
        state = self._read_state() or {}
        pids = state.setdefault("pids", {})
        assert isinstance(pids, dict)
        pids[name] = proc.pid
        self._write_state(state)

    def _start_etcd(self, ports: Ports) -> None:
        data = self.state_dir / "etcd-data"
        peer = f"http://{LOOPBACK}:{ports.etcd_peer}"
        client = f"http://{LOOPBACK}:{ports.etcd_client}"
        self._spawn(
            "etcd",
            [
                "etcd",
                "--name=zentinel-dev",
                f"--data-dir={data}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=zentinel-dev={peer}",
                "--unsafe-no-fsync",  # a throwaway test store: speed over durability
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self, ports: Ports) -> None:
        p = self.pki
        audit_policy = self.state_dir / "audit-policy.json"
        audit_policy.write_text(json.dumps(audit.policy()))
        self._spawn(
            "kube-apiserver",
            [
                "kube-apiserver",
                f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={ports.apiserver}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={p / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # Loopback cannot be advertised in the `kubernetes` Service endpoints; nothing in-cluster needs them.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
                "--v=1",
            ],
        )

    def _start_controller_manager(self) -> None:
        p = self.pki
        kc = self.state_dir / "controller-manager.kubeconfig"
        self._spawn(
            "kube-controller-manager",
            [
                "kube-controller-manager",
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--bind-address={LOOPBACK}",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # No cloud, no volumes, no node IPAM (kwok's node carries its podCIDR).
                "--controllers=*,-nodeipam,-persistentvolume-binder,-attachdetach,"
                "-persistentvolume-expander,-ephemeral-volume",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        kc = self.state_dir / "scheduler.kubeconfig"
        self._spawn(
            "kube-scheduler",
            [
                "kube-scheduler",
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--bind-address={LOOPBACK}",
                "--secure-port=0",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _create_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(node))

    def _start_kwok(self, ports: Ports) -> None:
        p = self.pki
        stages = tools.kwok_stages()
        for crd in tools.kwok_crds():
            self.kubectl("apply", "--server-side", "-f", str(crd))
        if not stages:
            raise ClusterError("kwok stage configs are missing from the tool cache; run `scripts/cluster build`")
        self._spawn(
            "kwok",
            [
                "kwok",
                f"--kubeconfig={self.state_dir / 'kwok.kubeconfig'}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={self.pod_cidr}",
                f"--node-ip={LOOPBACK}",
                f"--node-port={ports.kwok}",
                f"--server-address={LOOPBACK}:{ports.kwok}",
                f"--tls-cert-file={p / 'kwok-serving.crt'}",
                f"--tls-private-key-file={p / 'kwok-serving.key'}",
                "--node-lease-duration-seconds=40",
                "--enable-crds=Logs",
                *[f"--config={s}" for s in stages],
            ],
        )

    def _start_process_kubelet(self, ports: Ports) -> None:
        """Pods bound for the process node run as local processes (:mod:`.kubelet`)."""
        p = self.pki
        binary = tools.zentinel_binary()
        self._spawn(
            "process-kubelet",
            [
                "-m",
                "zentinel_devcluster.kubelet",
                f"--kubeconfig={self.state_dir / 'process-kubelet.kubeconfig'}",
                f"--state-dir={self.pods_dir}",
                f"--cidr={self.process_cidr}",
                f"--port={ports.process_kubelet}",
                f"--tls-cert-file={p / 'process-kubelet-serving.crt'}",
                f"--tls-private-key-file={p / 'process-kubelet-serving.key'}",
                *([f"--zentinel={binary}"] if binary.exists() else []),
            ],
            python=True,
        )

    # ------------------------------------------------------------------- down
    def down(self, *, log: bool = True, keep_logs: bool = False) -> None:
        say = _say if log else _quiet
        pids = self.pids()
        for name in reversed(COMPONENTS):
            pid = pids.get(name)
            if pid is not None and _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
        _wait_gone(list(pids.values()), 10.0)
        strays = [p for p in pids.values() if _pid_alive(p)]
        strays += [p for p in _procs_mentioning(str(self.state_dir)) if p not in strays]
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(strays, 5.0)
        left = [p for p in strays if _pid_alive(p)]
        if left:
            raise ClusterError(f"processes {left} did not stop")
        if self.state_dir.exists():
            for child in self.state_dir.iterdir():
                if keep_logs and child == self.logs:
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        say(f"down ({len(pids)} processes stopped, {self.state_dir} cleaned)")

    # ------------------------------------------------------------------ faults
    def restart_apiserver(self, *, down_for: float = 0.0, timeout: float = 120.0) -> None:
        """Stop kube-apiserver (SIGTERM, SIGKILL after 5 s); ``down_for`` seconds later start it on its port.

        Clients see refused connections, then watches that must be started again; a watch resumed
        from a resourceVersion older than the new watch cache is answered ``410 Gone``.
        """
        state = self._read_state() or {}
        ports = state.get("ports")
        if not isinstance(ports, dict):
            raise ClusterError("the cluster is not up")
        pid = self.pids()["kube-apiserver"]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        _wait_gone([pid], 5.0)
        if _pid_alive(pid):  # still draining its long-running requests (watches): end it as a crash would
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone([pid], 10.0)
        if _pid_alive(pid):
            raise ClusterError(f"kube-apiserver (pid {pid}) did not stop")
        time.sleep(down_for)
        self._start_apiserver(Ports(**ports))
        self._wait(self._ready_quiet, "kube-apiserver after the restart", timeout)

    @contextlib.contextmanager
    def paused(self, component: str) -> Iterator[None]:
        """SIGSTOP one component (``etcd``, ``kwok``...) for the duration of the block, then SIGCONT it."""
        pid = self.pids()[component]
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    # ----------------------------------------------------------------- status
    def status(self) -> dict[str, object]:
        pids = self.pids()
        result: dict[str, object] = {
            "stateDir": str(self.state_dir),
            "components": {
                name: {"pid": pids.get(name), "alive": bool(pids.get(name)) and _pid_alive(pids[name])}
                for name in COMPONENTS
            },
            "up": self.is_up(),
        }
        if result["up"]:
            result["server"] = self.server
            result["kubeconfig"] = str(self.kubeconfig)
            _, body = self._get("/version")
            result["serverVersion"] = json.loads(body).get("gitVersion")
        return result

    def env(self) -> dict[str, str]:
        paths = sorted(
            {
                str(tools.binary(b).parent)
                for b in ("kubectl", "kube-apiserver", "etcd", "kwok", "helm")
                if _binary_exists(b)
            }
        )
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": os.pathsep.join([*paths, os.environ.get("PATH", "")]),
        }


def _say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def _quiet(message: str) -> None:
    pass


def _binary_exists(name: str) -> bool:
    try:
        return tools.binary(name).exists()
    except tools.ToolError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback etcd
            return int(resp.status) == 200
    except OSError:
        return False


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.1)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running(state_dir: Path) -> Iterator[Cluster]:
    """A cluster for the duration of a ``with`` block (used by the pytest session fixture)."""
    cluster = Cluster(state_dir)
    cluster.up(log=True)
    try:
        yield cluster
    finally:
        cluster.down(log=True)
