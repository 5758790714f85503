"""One active replica: leader election on a ``coordination.k8s.io/v1`` Lease, as client-go does it.

A replica starts kopf only once it holds the Lease; until then it is a standby that answers its
liveness probe and nothing else (no watches, no passes, no writes). The active renews the Lease every
``retry_period``; when it cannot renew for ``renew_deadline`` it exits at once (the pod restarts as a
standby), before the Lease can expire for the others (``renew_deadline < lease_duration``). A standby
takes the Lease only after it has seen the same record unchanged for ``lease_duration`` by its own
clock (never by comparing the holder's timestamps with its own: clocks differ), and the take is an
update at the observed resourceVersion, so two standbys cannot both win. On a graceful stop the
active releases the Lease, so a rolling update hands over without waiting for expiry.

There is no fencing token the API server could check: the guard against a paused-then-resumed active
is :func:`ensure_active`, called before every action, which refuses once the last renewal is older
than ``renew_deadline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import http.server
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import k8s

log = logging.getLogger(__name__)


class NotActiveError(RuntimeError):
    """This replica no longer holds the Lease: it must not act."""


@dataclasses.dataclass(frozen=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def identity() -> str:
    """The pod's name (downward API ``POD_NAME``) or the host's, and a random part: unique per process."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _micro(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, config: LeaseConfig, *, api: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._api = api
        self.clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.last_renew: float | None = None
        self._stop = threading.Event()

    def api(self) -> Any:
        if self._api is None:
            import kubernetes

            self._api = kubernetes.client.CoordinationV1Api(k8s.api_client())
        return self._api

    # ------------------------------------------------------------------------- one attempt
    def _read(self) -> dict[str, Any] | None:
        try:
            resp = self.api().read_namespaced_lease(self.config.name, self.config.namespace, _preload_content=False)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        lease: dict[str, Any] = json.loads(resp.data)
        return lease

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro(dt.datetime.now(dt.UTC))
        prev = previous or {}
        mine = prev.get("holderIdentity") == self.config.identity
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
            "acquireTime": prev.get("acquireTime") if mine and prev.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": int(prev.get("leaseTransitions") or 0) + (0 if mine or not prev else 1),
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease; True when this replica holds it now."""
        cfg = self.config
        now = self.clock()
        try:
            lease = self._read()
            if lease is None:
                body: dict[str, Any] = {
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                    "spec": self._spec(None),
                }
                self.api().create_namespaced_lease(cfg.namespace, body, field_manager=k8s.FIELD_MANAGER)
                self.last_renew = now
                return True
            spec = lease.get("spec") or {}
            record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseDurationSeconds"))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            holder = spec.get("holderIdentity")
            duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
            if holder and holder != cfg.identity and now < self._observed_at + duration:
                return False  # someone else's, and alive as far as this replica has seen
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": cfg.name,
                    "namespace": cfg.namespace,
                    "resourceVersion": lease["metadata"]["resourceVersion"],
                },
                "spec": self._spec(spec),
            }
            self.api().replace_namespaced_lease(cfg.name, cfg.namespace, body, field_manager=k8s.FIELD_MANAGER)
        except ApiException as e:
            if e.status != 409:  # 409: another replica wrote first; the next attempt reads it
                log.warning("lease %s/%s: %s", cfg.namespace, cfg.name, k8s.describe_error(e))
            return False
        except Exception as e:  # the API server unreachable: not renewed this time
            log.warning("lease %s/%s: %s", cfg.namespace, cfg.name, k8s.describe_error(e))
            return False
        self.last_renew = now
        return True

    # ---------------------------------------------------------------------------- the loops
    def acquire(self) -> None:
        """Block until this replica holds the Lease."""
        log.info(
            "standby: waiting for lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity
        )
        while not self.try_acquire_or_renew():
            time.sleep(self.config.retry_period)
        log.warning("active: acquired lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity)

    def holds(self) -> bool:
        return self.last_renew is not None and self.clock() - self.last_renew < self.config.renew_deadline

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in a background thread; call ``on_lost`` once the renew deadline passes without a renewal."""

        def run() -> None:
            while not self._stop.wait(self.config.retry_period):
                self.try_acquire_or_renew()
                if not self.holds():
                    log.error("lost lease %s/%s: stopping so a standby can take over", *self._where())
                    on_lost()
                    return

        thread = threading.Thread(target=run, name="lease renewal", daemon=True)
        thread.start()
        return thread

    def _where(self) -> tuple[str, str]:
        return self.config.namespace, self.config.name

    def release(self) -> None:
        """On a graceful stop: give the Lease up, so a standby takes it at its next attempt."""
        self._stop.set()
        with contextlib.suppress(Exception):
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
            body = {**lease, "spec": spec}
            self.api().replace_namespaced_lease(
                self.config.name, self.config.namespace, body, field_manager=k8s.FIELD_MANAGER
            )
            log.info("released lease %s/%s", *self._where())
        self.last_renew = None


ACTIVE_LABEL = "zentinel.io/active"


def label_own_pod(active: bool) -> None:
    """In a pod (downward API ``POD_NAME``/``POD_NAMESPACE``): mark it the active replica, or not.

    The chart's Services select the label, so the webhook and the alert intake reach the active only. Cleared
    when a replica starts: a container restarted after losing the Lease keeps its pod, and so its labels.
    """
    name, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
    if not name or not namespace:
        return
    patch = {"metadata": {"labels": {ACTIVE_LABEL: "true" if active else None}}}
    try:
        k8s.core().patch_namespaced_pod(name, namespace, patch)
    except Exception as e:  # the Services then miss this replica (active) or keep it (standby: refused, retried)
        log.warning("could not label pod %s/%s %s=%s: %s", namespace, name, ACTIVE_LABEL, active, k8s.describe_error(e))


CURRENT: LeaderElector | None = None  # set by __main__ when leader election is on


def ensure_active() -> None:
    """Before an action: refuse when leader election is on and this replica's hold has lapsed."""
    if CURRENT is not None and not CURRENT.holds():
        raise NotActiveError(f"this replica no longer holds lease {CURRENT.config.namespace}/{CURRENT.config.name}")


@contextlib.contextmanager
def standby_probe(endpoint: str | None) -> Iterator[None]:
    """Answer the liveness endpoint while waiting for the Lease (kopf serves it once this replica is active)."""
    if not endpoint:
        yield
        return
    url = urllib.parse.urlsplit(endpoint)
    path = url.path or "/"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path.split("?")[0] == path else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"standby": true}' if code == 200 else b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), Handler)  # noqa: S104
    thread = threading.Thread(target=server.serve_forever, name="standby probe", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
