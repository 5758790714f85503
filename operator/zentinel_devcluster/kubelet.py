"""The process kubelet: pods bound for the process node run as real local processes.

kwok plays the kubelet for every pod on its node and only writes status. Pods scheduled to
:data:`NODE_NAME` (they tolerate :data:`TAINT` and select ``type: process``) are run here the way a
kubelet runs their containers:

- a container whose image is Zentinel's (``.../zentinel:TAG``) runs the real ``zentinel`` binary built
  from crates.io with the container's ``args``; one whose image is :data:`BACKEND_IMAGE` runs the small
  HTTP backend (:mod:`.backend`), told by the pod annotation :data:`BACKEND_MODE_ANNOTATION` how to
  answer (``ok``, ``error``, ``error:0.33``, ``slow:2``, ``refuse``);
- ConfigMap and Secret volumes are written to a per-pod directory before the containers start and
  refreshed every ``sync_seconds`` (kubelet-like delay), atomically (write + rename), so Zentinel's
  ``auto-reload`` picks a changed ConfigMap up and a rotated Secret reaches the files;
- each pod has its own loopback pod IP. Processes cannot share one port on ``0.0.0.0``, so the one
  liberty this kubelet takes: in the files of ConfigMap volumes and in container arguments,
  ``0.0.0.0:``/``[::]:`` become ``<pod IP>:`` and each volume's ``mountPath`` becomes the pod's local
  directory for it. A network namespace per pod would spare that rewrite but needs root, routes and
  a bridge on every machine that runs the demo; the rewrite needs nothing and Zentinel's own
  ``/admin/config`` shows the pod IP it really listens on;
- pod status follows the processes: Running, Ready from the readiness probe (``httpGet`` or
  ``tcpSocket``; no probe: ready while running), an exit increments ``restartCount`` and sets
  ``lastState.terminated`` (exit code, reason, finishedAt, the log tail as message) and
  ``CrashLoopBackOff`` for the back-off (base doubling to a cap: 10 s to 5 min as the kubelet does;
  shorter under a setting in tests); deleting a pod stops its processes (SIGTERM, then SIGKILL after
  the grace period) and removes it; a rolling restart starts new processes;
- traffic stays on this machine: a ConfigMap volume whose Zentinel config names an upstream target off
  loopback is not written (:func:`off_machine_targets`), so no real Zentinel starts on it or reloads it;
- ``kubectl logs`` (current and ``--previous``) is answered by this kubelet's HTTPS server, which the
  API server reaches at the node's ``daemonEndpoints``.

Run by :class:`zentinel_devcluster.cluster.Cluster` as the ``process-kubelet`` component.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.server
import ipaddress
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

NODE_NAME = "process-node-0"
NODE_LABELS = {"type": "process", "zentinel.dev/node": "process"}
TAINT = {"key": "zentinel.dev/process", "value": "true", "effect": "NoSchedule"}
BACKEND_IMAGE = "zentinel.dev/backend"
BACKEND_MODE_ANNOTATION = "backend.zentinel.dev/mode"
ZENTINEL_IMAGE = re.compile(r"(^|/)zentinel(:[\w.-]+)?$")
LOG_TAIL_BYTES = 2048
MAX_LOG_BYTES = 8 * 1024 * 1024  # per container run; older output is dropped like a rotated log

log = logging.getLogger("process-kubelet")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Settings:
    node: str = NODE_NAME
    cidr: str = "127.192.0.0/20"
    state_dir: Path = Path("/tmp/process-kubelet")  # noqa: S108 - overridden by the cluster
    port: int = 10250
    cert: Path | None = None
    key: Path | None = None
    zentinel: Path | None = None
    sync_seconds: float = 5.0  # ConfigMap/Secret refresh (kubelet: about a minute)
    backoff_base: float = 10.0  # CrashLoopBackOff: kubelet's 10 s doubling
    backoff_cap: float = 300.0  # to 5 min
    max_grace: float = 10.0  # cap on terminationGracePeriodSeconds, so a test never waits 30 s a pod


def backoff_delay(crashes: int, base: float, cap: float) -> float:
    """The wait before restart number ``crashes`` (1 = the first restart after the first exit)."""
    return float(min(cap, base * 2 ** max(0, crashes - 1)))


def exit_reason(code: int) -> str:
    return "Completed" if code == 0 else "Error"


def rewrite(text: str, pod_ip: str, mounts: dict[str, Path]) -> str:
    """The process's copy of a config or an argument: listen on the pod IP, read mounts locally."""
    text = re.sub(r"(?<![\w.])(0\.0\.0\.0|\[::\]):(\d+)", lambda m: f"{pod_ip}:{m.group(2)}", text)
    if mounts:
        paths = sorted(mounts, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(p.rstrip("/")) for p in paths) + r"(?=/|\"|'|\s|$)")
        text = pattern.sub(lambda m: str(mounts[_mount_key(mounts, m.group(0))]), text)
    return text


def _mount_key(mounts: dict[str, Path], matched: str) -> str:
    return next(k for k in mounts if k.rstrip("/") == matched)


def off_machine_targets(text: str) -> list[str]:
    """Upstream targets of a Zentinel config that are not on loopback (``upstream/address``).

    Traffic stays on this machine: a real Zentinel here never runs a config that would send requests
    to ``10.x``, ``192.168.x`` or a public address. Host names other than ``localhost`` count as off
    the machine too (nobody here can say where they resolve)."""
    from zentinel_operator.core.zconfig import check_config

    out = []
    for upstream, addresses in sorted(check_config(text).upstreams.items()):
        for address in addresses:
            host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                out.append(f"{upstream}/{address}")
    return out


def tail_text(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


# ------------------------------------------------------------------------------------ containers


class Container:
    """One container of a pod: its process, restarts, back-off and readiness."""

    def __init__(self, pod: PodRuntime, spec: dict[str, Any]) -> None:
        self.pod = pod
        self.spec = spec
        self.name: str = spec["name"]
        self.image: str = spec.get("image", "")
        self.proc: subprocess.Popen[bytes] | None = None
        self.restart_count = 0
        self.crashes = 0  # consecutive, for the back-off
        self.started_at: str | None = None
        self.last_terminated: dict[str, Any] | None = None
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.ready = False
        self.probe_ok = 0
        self.probe_fail = 0
        self.stopping = threading.Event()
        # Held while a process is spawned and while stop() reads it: a stop between the loop's check
        # and the spawn would otherwise leave a process nobody stops, holding the pod IP's ports.
        self.spawn_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"{pod.key}/{self.name}", daemon=True)

    @property
    def log_dir(self) -> Path:
        return self.pod.dir / "logs" / self.name

    def log_file(self, restart: int) -> Path:
        return self.log_dir / f"{restart}.log"

    def command(self) -> list[str]:
        """What runs for this container; ``CreateContainerError`` when nothing here can run its image."""
        s = self.pod.settings
        image = self.image.split("@")[0]
        mounts = self.pod.mounts_for(self.spec)
        args = [rewrite(a, self.pod.ip, mounts) for a in self.spec.get("args") or []]
        if ZENTINEL_IMAGE.search(image):
            if s.zentinel is None or not s.zentinel.exists():
                raise RuntimeError("the zentinel binary is not built here: run `scripts/cluster build-zentinel`")
            cmd = [rewrite(c, self.pod.ip, mounts) for c in self.spec.get("command") or []][1:]
            return [str(s.zentinel), *cmd, *args]
        if image.split(":")[0] == BACKEND_IMAGE:
            ports = self.spec.get("ports") or [{"containerPort": 8000}]
            port = int(ports[0]["containerPort"])
            return [
                sys.executable,
                "-m",
                "zentinel_devcluster.backend",
                "--listen",
                f"{self.pod.ip}:{port}",
                "--mode-file",
                str(self.pod.mode_file),
                "--name",
                self.pod.name,
                *args,
            ]
        raise RuntimeError(
            f"image {self.image!r} cannot run on {s.node}: it runs Zentinel images (…/zentinel:TAG) and {BACKEND_IMAGE}"
        )

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.pod.dir),
            "RUST_LOG": "info",
            "NO_COLOR": "1",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
        }
        for item in self.spec.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif (item.get("valueFrom") or {}).get("fieldRef"):
                field = item["valueFrom"]["fieldRef"]["fieldPath"]
                env[item["name"]] = {"status.podIP": self.pod.ip, "metadata.name": self.pod.name}.get(
                    field, self.pod.namespace if field == "metadata.namespace" else ""
                )
        return env

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                cmd = self.command()
            except RuntimeError as e:
                self.waiting = ("CreateContainerError", str(e))
                self.pod.changed()
                self.stopping.wait(5)
                continue
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out_path = self.log_file(self.restart_count)
            with self.spawn_lock, out_path.open("wb") as out:
                if self.stopping.is_set():
                    return
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.pod.dir,
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            started = time.monotonic()
            self.started_at = now()
            self.waiting = None
            self.probe_ok = self.probe_fail = 0
            self.ready = self.spec.get("readinessProbe") is None
            log.info("%s/%s started pid %d: %s", self.pod.key, self.name, self.proc.pid, " ".join(cmd))
            self.pod.changed()
            code = self.proc.wait()
            code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as a container runtime says
            finished = now()
            self.ready = False
            if self.stopping.is_set():
                return
            self.last_terminated = {
                "exitCode": code,
                "reason": exit_reason(code),
                "message": tail_text(out_path),
                "startedAt": self.started_at,
                "finishedAt": finished,
                "containerID": f"process://{self.proc.pid}",
            }
            ran = time.monotonic() - started
            self.crashes = 1 if ran > 2 * self.pod.settings.backoff_cap else self.crashes + 1
            delay = backoff_delay(self.crashes, self.pod.settings.backoff_base, self.pod.settings.backoff_cap)
            self.restart_count += 1
            self.waiting = (
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={self.name} pod={self.pod.name}_{self.pod.namespace}",
            )
            log.info("%s/%s exited %d after %.1fs; restart in %gs", self.pod.key, self.name, code, ran, delay)
            self.pod.changed()
            self.stopping.wait(delay)

    def stop(self, grace: float) -> None:
        with self.spawn_lock:
            self.stopping.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.thread.join(2)

    def probe(self) -> None:
        """One readiness probe, counted against the probe's thresholds."""
        spec = self.spec.get("readinessProbe")
        proc = self.proc
        running = proc is not None and proc.poll() is None and self.waiting is None
        if not running:
            self.ready = False
            return
        if spec is None:
            self.ready = True
            return
        ok = _probe_once(spec, self.pod.ip, self.spec.get("ports") or [])
        if ok:
            self.probe_ok, self.probe_fail = self.probe_ok + 1, 0
            if self.probe_ok >= int(spec.get("successThreshold", 1)):
                self.ready = True
        else:
            self.probe_ok, self.probe_fail = 0, self.probe_fail + 1
            if self.probe_fail >= int(spec.get("failureThreshold", 3)):
                self.ready = False

    def status(self) -> dict[str, Any]:
        pid = self.proc.pid if self.proc is not None else 0
        st: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"process://{self.image}",
            "containerID": f"process://{pid}",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.waiting is None,
        }
        if self.waiting is not None:
            reason, message = self.waiting
            st["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        else:
            st["state"] = {"running": {"startedAt": self.started_at}}
        if self.last_terminated is not None:
            st["lastState"] = {"terminated": self.last_terminated}
        return st


def _port(value: Any, ports: list[dict[str, Any]]) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    return int(next(p["containerPort"] for p in ports if p.get("name") == value))


def _probe_once(spec: dict[str, Any], ip: str, ports: list[dict[str, Any]]) -> bool:
    import socket
    import urllib.request

    timeout = float(spec.get("timeoutSeconds", 1))
    try:
        if "httpGet" in spec:
            get = spec["httpGet"]
            url = f"http://{ip}:{_port(get['port'], ports)}{get.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return 200 <= int(r.status) < 400
        if "tcpSocket" in spec:
            with socket.create_connection((ip, _port(spec["tcpSocket"]["port"], ports)), timeout=timeout):
                return True
    except (OSError, ValueError, StopIteration):
        return False
    return True


# ------------------------------------------------------------------------------------------ pods


class PodRuntime:
    """One pod: its directory, IP, volumes, containers and the status written for it."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any], ip: str) -> None:
        self.kubelet = kubelet
        self.settings = kubelet.settings
        meta = pod["metadata"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.key = f"{self.namespace}/{self.name}"
        self.spec: dict[str, Any] = pod["spec"]
        self.ip = ip
        self.dir = self.settings.state_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.mode_file = self.dir / "backend-mode"
        self.start_time = now()
        self.volume_versions: dict[str, str] = {}
        self.volumes_ready = False
        self.volume_error = ""
        self.containers = [Container(self, c) for c in self.spec.get("containers") or []]
        self.last_status: dict[str, Any] | None = None
        self.dirty = threading.Event()
        self.set_mode(meta)

    def volume_dir(self, volume: str) -> Path:
        return self.dir / "volumes" / volume

    def mounts_for(self, container: dict[str, Any]) -> dict[str, Path]:
        """mountPath -> local path, for every mount of every container (a config names other containers' files)."""
        mounts: dict[str, Path] = {}
        for c in self.spec.get("containers") or []:
            for m in c.get("volumeMounts") or []:
                local = self.volume_dir(m["name"])
                if m.get("subPath"):
                    local = local / m["subPath"]
                mounts.setdefault(m["mountPath"], local)
        return mounts

    def set_mode(self, meta: dict[str, Any]) -> None:
        mode = (meta.get("annotations") or {}).get(BACKEND_MODE_ANNOTATION, "ok")
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.mode_file.exists() or self.mode_file.read_text() != mode:
            _atomic_write(self.mode_file, mode.encode())

    def changed(self) -> None:
        self.dirty.set()
        self.kubelet.wake.set()

    # ----------------------------------------------------------------- volumes
    def sync_volumes(self, api: Any) -> bool:
        """Write every ConfigMap/Secret volume whose object changed; False while one is missing."""
        from kubernetes.client.exceptions import ApiException

        mounts = self.mounts_for({})
        problems = []
        for vol in self.spec.get("volumes") or []:
            name = vol["name"]
            if "configMap" in vol:
                ref, kind = vol["configMap"], "ConfigMap"
            elif "secret" in vol:
                ref, kind = vol["secret"], "Secret"
            elif "emptyDir" in vol:
                self.volume_dir(name).mkdir(parents=True, exist_ok=True)
                continue
            else:
                continue
            obj_name = ref.get("name") or ref.get("secretName")
            try:
                if kind == "ConfigMap":
                    obj = api.read_namespaced_config_map(obj_name, self.namespace)
                    files = {k: v.encode() for k, v in (obj.data or {}).items()}
                    files.update({k: _b64(v) for k, v in (obj.binary_data or {}).items()})
                else:
                    obj = api.read_namespaced_secret(obj_name, self.namespace)
                    files = {k: _b64(v) for k, v in (obj.data or {}).items()}
            except ApiException as e:
                if e.status == 404 and ref.get("optional"):
                    continue
                problems.append(f'{kind.lower()} "{obj_name}" not found' if e.status == 404 else str(e.reason))
                continue
            version = obj.metadata.resource_version
            if self.volume_versions.get(name) == version:
                continue
            items = ref.get("items")
            if items:
                files = {i.get("path", i["key"]): files[i["key"]] for i in items if i["key"] in files}
            target = self.volume_dir(name)
            target.mkdir(parents=True, exist_ok=True)
            unsafe = [
                f"{key}: {', '.join(off)}"
                for key, content in files.items()
                if kind == "ConfigMap"
                and key.endswith(".kdl")
                and (off := off_machine_targets(content.decode(errors="replace")))
            ]
            if unsafe:  # not written: an auto-reloading Zentinel would send traffic off the machine
                problems.append(f"{kind} {obj_name} names upstream targets off this machine ({'; '.join(unsafe)})")
                continue
            for key, content in files.items():
                if kind == "ConfigMap":
                    with contextlib.suppress(UnicodeDecodeError):
                        content = rewrite(content.decode(), self.ip, mounts).encode()  # noqa: PLW2901 - the copy a process reads
                path = target / key
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists() or path.read_bytes() != content:
                    _atomic_write(path, content)
            for stale in target.iterdir():
                if stale.is_file() and stale.name not in files and not stale.name.startswith(".."):
                    stale.unlink()
            self.volume_versions[name] = version
            log.info("%s: volume %s from %s %s (resourceVersion %s)", self.key, name, kind, obj_name, version)
        if problems and "; ".join(problems) != self.volume_error:
            log.warning("%s: volumes: %s", self.key, "; ".join(problems))
        self.volume_error = "; ".join(problems)
        return not problems

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        for c in self.containers:
            c.thread.start()

    def stop(self) -> None:
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        grace = min(grace, self.settings.max_grace)
        threads = [threading.Thread(target=c.stop, args=(grace,)) for c in self.containers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(grace + 10)

    def status(self) -> dict[str, Any]:
        started = self.volumes_ready and any(c.started_at for c in self.containers)
        containers = [c.status() for c in self.containers]
        if not self.volumes_ready:
            for st in containers:
                waiting = {
                    "reason": "ContainerCreating",
                    **({"message": self.volume_error} if self.volume_error else {}),
                }
                st["state"] = {"waiting": waiting}
        ready = started and all(st["ready"] for st in containers)
        value = "True" if ready else "False"
        conditions = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": value, **({} if ready else {"reason": "ContainersNotReady"})},
            {"type": "Ready", "status": value, **({} if ready else {"reason": "ContainersNotReady"})},
        ]
        return {
            "phase": "Running" if started else "Pending",
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "conditions": conditions,
            "containerStatuses": containers,
        }


def _b64(value: str) -> bytes:
    import base64

    return base64.b64decode(value)


def _atomic_write(path: Path, content: bytes) -> None:
    tmp = path.with_name(f"..{path.name}.tmp")
    tmp.write_bytes(content)
    tmp.replace(path)


def _with_transition_times(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """lastTransitionTime on each condition, moved only when its status flips."""
    before = {c["type"]: c for c in (old or {}).get("conditions", [])}
    for c in new["conditions"]:
        prev = before.get(c["type"])
        c["lastTransitionTime"] = prev["lastTransitionTime"] if prev and prev["status"] == c["status"] else now()
    return new


def _comparable(status: dict[str, Any] | None) -> Any:
    if status is None:
        return None
    copy = json.loads(json.dumps(status))
    for c in copy.get("conditions", []):
        c.pop("lastTransitionTime", None)
    return copy


# ---------------------------------------------------------------------------------------- kubelet


class Kubelet:
    def __init__(self, settings: Settings, kubeconfig: Path) -> None:
        from kubernetes import client, config

        self.settings = settings
        # The client's objects are used as plain data here (sanitized to dicts): Any keeps it that way.
        self.api_client: Any = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.core: Any = client.CoreV1Api(self.api_client)
        self.pods: dict[str, PodRuntime] = {}  # uid -> runtime
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.terminating: set[str] = set()
        self.ready_since = now()
        net = ipaddress.ip_network(settings.cidr)
        self.free_ips = [str(ip) for ip in list(net.hosts())[1:]]

    # -------------------------------------------------------------------- node
    def node_status(self) -> dict[str, Any]:
        stamp = now()
        return {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "process kubelet is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": self.ready_since,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "localhost"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.settings.port}},
            "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "process-kubelet",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "process://local",
                "osImage": "local processes",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }

    def register(self) -> None:
        from kubernetes.client.exceptions import ApiException

        s = self.settings
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": s.node, "labels": {"kubernetes.io/hostname": s.node, **NODE_LABELS}},
            "spec": {"podCIDR": s.cidr, "podCIDRs": [s.cidr], "taints": [TAINT]},
        }
        try:
            self.core.create_node(node)
        except ApiException as e:
            if e.status != 409:
                raise
        self.core.patch_node_status(s.node, {"status": self.node_status()})
        log.info("node %s registered (pod CIDR %s, logs on 127.0.0.1:%d)", s.node, s.cidr, s.port)

    def heartbeat(self) -> None:
        while not self.stopping.wait(5):
            try:
                self.core.patch_node_status(self.settings.node, {"status": self.node_status()})
            except Exception as e:
                log.warning("heartbeat failed: %s", e)

    # -------------------------------------------------------------------- pods
    def watch_pods(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        selector = f"spec.nodeName={self.settings.node}"
        while not self.stopping.is_set():
            try:
                listed = self.core.list_pod_for_all_namespaces(field_selector=selector)
                seen = set()
                for pod in listed.items:
                    seen.add(pod.metadata.uid)
                    self.on_pod(self.api_client.sanitize_for_serialization(pod))
                with self.lock:
                    for uid in [u for u in self.pods if u not in seen]:
                        self.forget(uid)
                w: Any = watch.Watch()  # type: ignore[no-untyped-call]
                for event in w.stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=300,
                ):
                    if self.stopping.is_set():
                        return
                    pod = self.api_client.sanitize_for_serialization(event["object"])
                    if event["type"] == "DELETED":
                        with self.lock:
                            self.forget(pod["metadata"]["uid"])
                    else:
                        self.on_pod(pod)
            except ApiException as e:
                if e.status != 410:
                    log.warning("pod watch: %s; relisting", e.reason)
                    self.stopping.wait(1)
            except Exception as e:
                log.warning("pod watch: %s; relisting", e)
                self.stopping.wait(1)

    def on_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            rt = self.pods.get(uid)
            if meta.get("deletionTimestamp"):
                if rt is not None and uid not in self.terminating:
                    self.terminating.add(uid)
                    threading.Thread(target=self.terminate, args=(rt,), daemon=True).start()
                elif rt is None:
                    self.delete_now(meta)
                return
            if rt is None:
                ip = self.allocate_ip()
                if ip is None:
                    log.error("no pod IP left in %s for %s", self.settings.cidr, meta["name"])
                    return
                rt = PodRuntime(self, pod, ip)
                self.pods[uid] = rt
                log.info("%s: admitted with IP %s", rt.key, rt.ip)
                rt.changed()
            else:
                rt.set_mode(meta)

    def terminate(self, rt: PodRuntime) -> None:
        log.info("%s: deleting (stopping its processes)", rt.key)
        rt.stop()
        self.delete_now({"name": rt.name, "namespace": rt.namespace, "uid": rt.uid})
        with self.lock:
            self.forget(rt.uid)

    def delete_now(self, meta: dict[str, Any]) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        body = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body=body)
        except ApiException as e:
            if e.status not in (404, 409):
                log.warning("deleting %s/%s: %s", meta["namespace"], meta["name"], e.reason)

    def forget(self, uid: str) -> None:
        rt = self.pods.pop(uid, None)
        self.terminating.discard(uid)
        if rt is None:
            return
        if any(c.proc is not None and c.proc.poll() is None for c in rt.containers):
            rt.stop()
        self.free_ips.append(rt.ip)  # reused last, as host-local IPAM allocates round-robin

    def allocate_ip(self) -> str | None:
        """The next free pod IP on which nothing listens (a process that outlived its pod keeps its ports)."""
        busy = listening_ips()
        for _ in range(len(self.free_ips)):
            ip = self.free_ips.pop(0)
            if ip not in busy:
                return ip
            log.warning("pod IP %s is still listened on by a process no pod owns: skipped", ip)
            self.free_ips.append(ip)
        return None

    # ------------------------------------------------------------------- loops
    def sync_loop(self) -> None:
        """Volumes (every ``sync_seconds``; at once for a pod not started), probes, status writes."""
        last_volumes = 0.0
        last_probe: dict[tuple[str, str], float] = {}
        while not self.stopping.is_set():
            self.wake.wait(0.25)
            self.wake.clear()
            with self.lock:
                pods = [p for p in self.pods.values() if p.uid not in self.terminating]
            refresh = time.monotonic() - last_volumes >= self.settings.sync_seconds
            if refresh:
                last_volumes = time.monotonic()
            for rt in pods:
                try:
                    self.sync_pod(rt, refresh, last_probe)
                except Exception as e:
                    log.warning("%s: %s", rt.key, e)

    def sync_pod(self, rt: PodRuntime, refresh: bool, last_probe: dict[tuple[str, str], float]) -> None:
        from kubernetes.client.exceptions import ApiException

        if not rt.volumes_ready or refresh:
            ok = rt.sync_volumes(self.core)
            if ok and not rt.volumes_ready:
                rt.volumes_ready = True
                rt.start()
            elif not ok:
                rt.changed()
        for c in rt.containers:
            spec = c.spec.get("readinessProbe") or {}
            period = float(spec.get("periodSeconds", 10))
            key = (rt.uid, c.name)
            due = last_probe.get(key, 0.0) + period <= time.monotonic()
            initial = float(spec.get("initialDelaySeconds", 0))
            if c.proc is not None and (due or not spec) and time.monotonic() - _started_monotonic(c) >= initial:
                before = c.ready
                c.probe()
                last_probe[key] = time.monotonic()
                if c.ready != before:
                    rt.changed()
        status = rt.status()
        if _comparable(status) == _comparable(rt.last_status):
            return
        status = _with_transition_times(status, rt.last_status)
        try:
            self.core.patch_namespaced_pod_status(rt.name, rt.namespace, {"status": status})
            rt.last_status = status
        except ApiException as e:
            if e.status == 404:
                with self.lock:
                    self.forget(rt.uid)
            else:
                log.warning("%s: status write: %s", rt.key, e.reason)

    def run(self) -> None:
        self.register()
        server = LogServer(self)
        threads = [
            threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True),
            threading.Thread(target=self.watch_pods, name="pods", daemon=True),
            threading.Thread(target=self.sync_loop, name="sync", daemon=True),
            threading.Thread(target=server.serve_forever, name="logs", daemon=True),
        ]
        for t in threads:
            t.start()
        self.stopping.wait()
        server.shutdown()
        with self.lock:
            pods = list(self.pods.values())
        for rt in pods:
            rt.stop()
        log.info("stopped (%d pods' processes ended)", len(pods))

    def find(self, namespace: str, name: str) -> PodRuntime | None:
        with self.lock:
            return next((p for p in self.pods.values() if p.namespace == namespace and p.name == name), None)


def listening_ips(table: Path = Path("/proc/net/tcp")) -> set[str]:
    """IPv4 addresses with a listening TCP socket, read from the kernel's table (empty where there is none)."""
    try:
        rows = table.read_text().splitlines()[1:]
    except OSError:
        return set()
    found = set()
    for row in rows:
        fields = row.split()
        if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
            addr = fields[1].split(":")[0]
            found.add(str(ipaddress.IPv4Address(int(addr, 16).to_bytes(4, "little"))))
    return found


def _started_monotonic(c: Container) -> float:
    if c.started_at is None:
        return time.monotonic()
    started = dt.datetime.strptime(c.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return time.monotonic() - (dt.datetime.now(dt.UTC) - started).total_seconds()


# --------------------------------------------------------------------------------------- logs


class LogServer(http.server.ThreadingHTTPServer):
    """``/containerLogs/{namespace}/{pod}/{container}``: what the API server asks a kubelet for."""

    daemon_threads = True

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        super().__init__(("127.0.0.1", kubelet.settings.port), LogHandler)
        s = kubelet.settings
        if s.cert is not None and s.key is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(s.cert), str(s.key))
            self.socket = ctx.wrap_socket(self.socket, server_side=True)


class LogHandler(http.server.BaseHTTPRequestHandler):
    server: LogServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = urllib.parse.parse_qs(url.query)
        if len(parts) != 4 or parts[0] != "containerLogs":
            self.send_error(404, "only /containerLogs/{namespace}/{pod}/{container} is served here")
            return
        _, namespace, name, container = parts
        rt = self.server.kubelet.find(namespace, name)
        c = next((c for c in rt.containers if c.name == container), None) if rt else None
        if rt is None or c is None:
            self.send_error(404, f"container {container} of pod {namespace}/{name} is not on this node")
            return
        previous = query.get("previous", ["false"])[0] == "true"
        restart = c.restart_count - 1 if previous else c.restart_count
        if previous and restart < 0:
            self.send_error(400, f'previous terminated container "{container}" in pod "{name}" not found')
            return
        path = c.log_file(restart)
        data = path.read_bytes()[-MAX_LOG_BYTES:] if path.exists() else b""
        tail = query.get("tailLines")
        if tail:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(tail[0]) :]) if int(tail[0]) > 0 else b""
        follow = query.get("follow", ["false"])[0] == "true" and not previous
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if not follow:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if follow:
            self._follow(c, path, len(path.read_bytes()) if path.exists() else 0, restart)

    def _follow(self, c: Container, path: Path, offset: int, restart: int) -> None:
        with contextlib.suppress(OSError):
            while c.restart_count == restart and not c.stopping.is_set():
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    offset += len(chunk)
                time.sleep(0.2)


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zentinel_devcluster.kubelet", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--node", default=NODE_NAME)
    p.add_argument("--cidr", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-cert-file", type=Path)
    p.add_argument("--tls-private-key-file", type=Path)
    p.add_argument("--zentinel", type=Path, help="the real zentinel binary")
    p.add_argument("--sync-seconds", type=float, default=float(os.environ.get("ZENTINEL_KUBELET_SYNC_SECONDS", "5")))
    p.add_argument(
        "--backoff",
        default=os.environ.get("ZENTINEL_KUBELET_BACKOFF", "10,300"),
        help="CrashLoopBackOff base,cap in seconds (kubelet: 10,300)",
    )
    p.add_argument("--max-grace", type=float, default=float(os.environ.get("ZENTINEL_KUBELET_MAX_GRACE", "10")))
    a = p.parse_args(argv)
    base, cap = (float(x) for x in a.backoff.split(","))
    settings = Settings(
        node=a.node,
        cidr=a.cidr,
        state_dir=a.state_dir,
        port=a.port,
        cert=a.tls_cert_file,
        key=a.tls_private_key_file,
        zentinel=a.zentinel,
        sync_seconds=a.sync_seconds,
        backoff_base=base,
        backoff_cap=cap,
        max_grace=a.max_grace,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    kubelet = Kubelet(settings, a.kubeconfig)
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stopping.set())
    kubelet.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
