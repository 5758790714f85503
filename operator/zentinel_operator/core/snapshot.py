"""Typed snapshots of what the operator sees of one Zentinel, and the findings triage makes of them.

The signal layer (``zentinel_operator.signals``) fills these from pods, metrics, ``/admin/upstreams``,
certificates, the config and logs; :mod:`.triage` turns one into findings without any I/O. Every
field that could not be observed is ``None`` ("unknown"), never a made-up zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping

from ..models.common import Category, Severity, Source
from .liveconfig import LiveConfig
from .zconfig import HealthCheck


@dataclasses.dataclass(frozen=True)
class ContainerSignal:
    name: str
    ready: bool
    running: bool
    restart_count: int
    waiting_reason: str | None = None  # CrashLoopBackOff, CreateContainerConfigError, ...
    waiting_message: str | None = None
    last_terminated_reason: str | None = None  # OOMKilled, Error, Completed
    last_exit_code: int | None = None
    last_terminated_message: str | None = None

    @property
    def crash_looping(self) -> bool:
        return self.waiting_reason == "CrashLoopBackOff"

    @property
    def oom_killed(self) -> bool:
        """OOMKilled, or exit 137 where Kubernetes gives no other reason. Exit 137 with reason ``Error``
        is a SIGKILL from elsewhere (a liveness probe, a grace period running out): raising the memory
        limit would not help, so it is not counted as memory exhaustion."""
        if self.last_terminated_reason == "OOMKilled":
            return True
        return self.last_exit_code == 137 and self.last_terminated_reason is None


@dataclasses.dataclass(frozen=True)
class PodSignal:
    name: str
    ip: str | None
    phase: str
    ready: bool
    deleting: bool = False
    container: ContainerSignal | None = None
    restart_growth: int = 0  # restarts since the previous pass
    config_revision: str | None = None  # revision the pod template was rolled with, where known
    ready_since: dt.datetime | None = None  # when its Ready condition last turned True (None: not Ready, or unknown)
    tls_rolled: str | None = None  # the certificate annotation of the pod template it was made from (names.ANN_TLS)

    def loads_current_certificates(self, workload: WorkloadSignal) -> bool:
        """Made from the pod template that loads the certificates the Deployment now rolls for (a rotation's):
        an older pod is on its way out and still serves the certificate it started with."""
        return self.tls_rolled == workload.tls_rolled

    def settled(self, now: dt.datetime, settle: dt.timedelta) -> bool:
        """Ready for at least ``settle`` at ``now``. A pod of a crash loop is often Ready for a moment before it
        fails again: one glance at it proves nothing. A pod Ready since an unknown time counts as settled."""
        if not self.ready:
            return False
        return self.ready_since is None or now - self.ready_since >= settle

    @property
    def troubled(self) -> bool:
        """Not Ready, restarting since the previous pass, or crash-looping: the pods whose logs a pass
        reads. (Triage sorts pods more finely, with thresholds; an evidence bundle's "pods affected"
        counts any restart ever, see :func:`.evidence.pods_affected`.)"""
        c = self.container
        return not self.ready or self.restart_growth > 0 or (c is not None and c.crash_looping)

    @property
    def process_running(self) -> bool:
        """The runbook's "Is the proxy process running?" for this pod."""
        if self.phase != "Running" or self.deleting:
            return False
        return self.container is None or self.container.running


@dataclasses.dataclass(frozen=True)
class WorkloadSignal:
    exists: bool
    desired: int = 0
    updated: int = 0
    available: int = 0
    replicas: int = 0  # pods of every ReplicaSet, old and new (status.replicas)
    # A rollout is under way: the controller has not caught up with the spec, or old and new pods coexist.
    rolling_out: bool = False
    max_unavailable: int = 1
    max_surge: int = 1
    memory_limit_bytes: int | None = None
    generation: int | None = None
    observed_generation: int | None = None
    tls_rolled: str | None = None  # the pod template's certificate annotation (names.ANN_TLS), set by a rotation

    @property
    def rollout_complete(self) -> bool:
        """The controller saw the latest spec and every desired pod is updated and available, with no
        old pod left."""
        return (
            self.exists
            and (self.observed_generation or 0) >= (self.generation or 0)
            and self.updated == self.desired
            and self.available == self.desired
            and self.replicas == self.desired
        )


@dataclasses.dataclass(frozen=True)
class RouteSignal:
    route: str
    requests: float  # in the interval
    errors: float  # 5xx answers plus Zentinel's own proxy errors, in the interval

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class MetricsSignal:
    """Rates over the interval between two passes, summed over every pod that answered."""

    available: bool
    error: str | None = None  # why metrics are unavailable, for a person
    pods_scraped: int = 0
    pods_failed: int = 0
    interval_seconds: float | None = None  # None on the first pass: no rates yet
    requests: float | None = None
    errors: float | None = None
    routes: tuple[RouteSignal, ...] = ()
    latency_p99_seconds: float | None = None
    open_connections: float | None = None
    memory_bytes: float | None = None  # the largest pod's zentinel_memory_usage_bytes
    circuit_breakers_open: int | None = None  # None: not exported or flat zero (unknown)
    requests_per_second: float | None = None
    baseline_requests_per_second: float | None = None  # slow moving average, for spikes
    proxy_errors: dict[str, float] = dataclasses.field(default_factory=dict)  # "502" -> count
    version: str | None = None  # zentinel_build_info{version}

    @property
    def error_rate(self) -> float | None:
        if self.requests is None or self.errors is None:
            return None
        return self.errors / self.requests if self.requests > 0 else 0.0


class TargetStatus(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class TargetSignal:
    upstream: str
    address: str
    status: TargetStatus
    failure_rate: float | None = None
    last_error: str | None = None


@dataclasses.dataclass(frozen=True)
class UpstreamsSignal:
    available: bool
    error: str | None = None
    targets: tuple[TargetSignal, ...] = ()

    def upstream_ids(self) -> list[str]:
        return sorted({t.upstream for t in self.targets})

    def targets_of(self, upstream: str) -> list[TargetSignal]:
        return [t for t in self.targets if t.upstream == upstream]


@dataclasses.dataclass(frozen=True)
class CertificateSignal:
    name: str  # the Zentinel's tls[].name
    secret: str
    present: bool
    error: str | None = None  # malformed, missing keys, ...
    not_after: dt.datetime | None = None
    days_left: float | None = None
    key_matches: bool | None = None
    chain_valid: bool | None = None
    chain_error: str | None = None
    sans: tuple[str, ...] = ()
    served_matches: bool | None = None  # a handshake against a pod served this certificate
    fingerprint: str | None = None  # sha256 of the leaf in the Secret

    def at(self, now: dt.datetime) -> CertificateSignal:
        """The same certificate judged at ``now``: the days left counted again (a read reused by a later pass)."""
        if self.not_after is None:
            return self
        return dataclasses.replace(self, days_left=days_until(self.not_after, now))


def days_until(moment: dt.datetime, now: dt.datetime) -> float:
    """Days (fractional) from ``now`` to ``moment``; negative once it has passed."""
    return (moment - now).total_seconds() / 86400.0


@dataclasses.dataclass(frozen=True)
class ConfigSignal:
    present: bool
    revision: str | None = None
    valid: bool = True
    errors: tuple[str, ...] = ()
    changed_at: dt.datetime | None = None
    last_known_good: str | None = None
    # upstream id -> its HTTP health check, for probing targets no pod can judge (see signals.upstreams)
    health_checks: Mapping[str, HealthCheck] = dataclasses.field(default_factory=dict)


class LogCause(enum.StrEnum):
    CONFIG_ERROR = "config_error"
    CONFIG_REJECTED = "config_rejected"  # a reload refused a bad file; the old config keeps serving
    ADDRESS_IN_USE = "address_in_use"
    CERTIFICATE_ERROR = "certificate_error"
    OUT_OF_MEMORY = "out_of_memory"


@dataclasses.dataclass(frozen=True)
class LogMatch:
    pod: str
    container: str
    previous: bool
    cause: LogCause
    line: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
    namespace: str
    zentinel: str
    observed_at: dt.datetime
    workload: WorkloadSignal
    pods: tuple[PodSignal, ...] = ()
    metrics: MetricsSignal | None = None
    upstreams: UpstreamsSignal | None = None
    certificates: tuple[CertificateSignal, ...] = ()
    config: ConfigSignal | None = None
    logs: tuple[LogMatch, ...] = ()
    # Each running pod's /admin/config, read while a config change awaits verification (else empty).
    live_configs: tuple[LiveConfig, ...] = ()
    # When metrics, upstreams, handshakes and live configs were read from the pods: observed_at for a full pass,
    # the last full pass's time for an event pass (which reuses them); None: never read yet.
    endpoints_at: dt.datetime | None = None

    def oom_killed(self, pod: PodSignal) -> bool:
        """The one rule for "this pod ran out of memory": its container says so
        (:attr:`ContainerSignal.oom_killed`), or its logs report running out of memory."""
        if pod.container is None:
            return False
        if pod.container.oom_killed:
            return True
        return any(m.pod == pod.name and m.cause == LogCause.OUT_OF_MEMORY for m in self.logs)


@dataclasses.dataclass(frozen=True)
class Finding:
    category: Category
    severity: Severity
    summary: str
    evidence: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()  # pods, targets, routes or certificates concerned
    config_caused: bool = False  # a hint for remediation: the trouble follows a config change
    # Who saw it: the operator's own signals, or Alertmanager (notify.intake). An incident created for a finding
    # takes its source, and an Alertmanager incident then resolves on what Alertmanager says.
    source: Source = Source.OPERATOR
