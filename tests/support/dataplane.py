"""Zentinel admin emulators bound to the loopback IPs of a Deployment's kwok pods.

The operator scrapes ``http://<pod IP>:9090/metrics`` and ``/admin/upstreams`` exactly as it
would in a real cluster; here the pod IPs are loopback addresses, so an emulator bound to each
one answers as that pod.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .emulator import EmulatorLoop, ZentinelEmulator
from .kube import Kube


class Dataplane:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        selector: str,
        *,
        port: int = 9090,
        setup: Callable[[ZentinelEmulator], None] | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.selector = selector
        self.port = port
        self.setup = setup
        self.loop = EmulatorLoop("dataplane")
        self.emulators: dict[str, ZentinelEmulator] = {}  # pod name -> emulator
        self._lock = threading.Lock()
        self._traffic: dict[str, Any] = {"rps": 0.0, "error_share": 0.0, "routes": ("api",), "status": "503"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = False

    def _pods(self) -> dict[str, str]:
        pods = self.kube.list("pods", self.namespace, self.selector)
        return {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in pods
            if p.get("status", {}).get("podIP")
            and p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }

    def sync(self) -> dict[str, ZentinelEmulator]:
        """An emulator for every running pod; stop those whose pod is gone."""
        pods = self._pods()
        with self._lock:
            if self.closed:
                return {}
            for name in list(self.emulators):
                if name not in pods:
                    self.emulators.pop(name).stop()
            for name, ip in pods.items():
                if name not in self.emulators:
                    emu = ZentinelEmulator(ip, self.port, loop=self.loop)
                    if self.setup:
                        self.setup(emu)
                    emu.start()
                    self.emulators[name] = emu
            return dict(self.emulators)

    def each(self, fn: Callable[[ZentinelEmulator], None]) -> None:
        with self._lock:
            for emu in self.emulators.values():
                fn(emu)

    def traffic(
        self, *, rps: float, error_share: float, routes: tuple[str, ...] = ("api",), error_status: str = "500"
    ) -> None:
        """Keep ``rps`` requests per second per pod flowing, ``error_share`` of them answered ``error_status``."""
        self._traffic = {"rps": rps, "error_share": error_share, "routes": routes, "status": error_status}
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dataplane-traffic", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        tick = 0.25
        while not self._stop.wait(tick):
            t = self._traffic
            per_route = t["rps"] * tick / max(1, len(t["routes"]))
            errors = per_route * t["error_share"]
            with self._lock:
                for emu in self.emulators.values():
                    for route in t["routes"]:
                        ok = round(per_route - errors)
                        bad = round(errors)
                        if ok:
                            emu.add_requests(route, "200", ok, latency_seconds=0.02)
                        if bad:
                            emu.add_requests(route, t["status"], bad, latency_seconds=0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self.closed = True
            for emu in self.emulators.values():
                try:
                    emu.stop()
                except Exception as e:  # keep stopping the others
                    print(f"dataplane: could not stop {emu.host}:{emu.port}: {e}")
            self.emulators.clear()
        self.loop.close()
