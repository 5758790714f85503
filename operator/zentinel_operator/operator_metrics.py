"""The operator's own Prometheus metrics, registered once in a dedicated registry.

Open incidents are computed from the incidents the operator watches (a custom collector over a map
kept current by the incident watch), so the gauges are right after a restart:
``zentinel_operator_open_incidents{severity}`` counts them, and
``zentinel_operator_incident_open{zentinel_namespace, zentinel, incident, severity, category,
acknowledged, escalation_level} 1`` has one series per open incident, so alerts can name the
Zentinel and stop paging once someone acknowledges. (``zentinel_namespace``, not ``namespace``:
Prometheus sets ``namespace`` to the operator's own namespace from the scrape target.)

``zentinel_operator_build_info{version, python, kopf} 1`` and the standard ``process_*`` and
``python_info`` series come from the same registry.
"""

from __future__ import annotations

import importlib.metadata
import platform
import threading
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.lifecycle import MetricNote
from .models.common import Severity

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO = Gauge(
    "zentinel_operator_build_info",
    "Always 1; the labels say which operator, Python and kopf run.",
    ["version", "python", "kopf"],
    registry=REGISTRY,
)
BUILD_INFO.labels(_version("zentinel-incident-operator"), platform.python_version(), _version("kopf")).set(1)

_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)

INCIDENTS_OPENED = Counter(
    "zentinel_operator_incidents_opened_total",
    "Incidents opened, by category and severity at detection.",
    ["category", "severity"],
    registry=REGISTRY,
)
INCIDENTS_REOPENED = Counter(
    "zentinel_operator_incidents_reopened_total",
    "Resolved incidents reopened because the signal came back (flapping).",
    ["category", "severity"],
    registry=REGISTRY,
)
ACKNOWLEDGE_SECONDS = Histogram(
    "zentinel_operator_acknowledge_seconds",
    "Time from detection to acknowledgement (MTTA).",
    ["severity"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
RESOLVE_SECONDS = Histogram(
    "zentinel_operator_resolve_seconds",
    "Time from detection to resolution (MTTR).",
    ["severity"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
ESCALATIONS = Counter(
    "zentinel_operator_escalations_total",
    "Escalations beyond the primary, by level and severity.",
    ["level", "severity"],
    registry=REGISTRY,
)
REMEDIATIONS = Counter(
    "zentinel_operator_remediations_total",
    "Remediation actions, by action and result.",
    ["action", "result"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "zentinel_operator_notifications_total",
    "Notification deliveries, by the Zentinel the incident is about, receiver type and result"
    " (delivered, retrying, failed).",
    ["zentinel_namespace", "zentinel", "type", "result"],
    registry=REGISTRY,
)
PASS_ERRORS = Counter(
    "zentinel_operator_pass_errors_total",
    "Passes over a Zentinel that ended in an error (kopf retries them).",
    registry=REGISTRY,
)
PASSES = Counter(
    "zentinel_operator_passes_total",
    "Passes over a Zentinel, by what started them: timer (every scan interval, the metrics' cadence) or event"
    " (a change to its pods, Deployment, ConfigMap or TLS Secrets).",
    ["trigger"],
    registry=REGISTRY,
)
PASS_SECONDS = Histogram(
    "zentinel_operator_pass_seconds",
    "Duration of one observe-assess-record pass for one Zentinel.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


INCIDENT_LABELS = (
    "zentinel_namespace",
    "zentinel",
    "incident",
    "severity",
    "category",
    "acknowledged",
    "escalation_level",
)


class OpenIncident(NamedTuple):
    zentinel: str
    severity: str
    category: str
    acknowledged: bool
    escalation_level: str


class OpenIncidents(Collector):
    """``zentinel_operator_open_incidents{severity}`` and ``zentinel_operator_incident_open{...}``
    from the watched incidents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], OpenIncident] = {}

    def update(
        self, namespace: str, name: str, status: Mapping[str, Any] | None, spec: Mapping[str, Any] | None = None
    ) -> None:
        key = (namespace, name)
        spec = spec or {}
        with self._lock:
            if status and not status.get("resolvedAt") and status.get("severity"):
                self._open[key] = OpenIncident(
                    zentinel=str((spec.get("zentinelRef") or {}).get("name") or ""),
                    severity=str(status["severity"]),
                    category=str(spec.get("category") or ""),
                    acknowledged=bool(status.get("acknowledgedAt")),
                    escalation_level=str(status.get("escalationLevel") or "none"),
                )
            else:
                self._open.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._open.pop((namespace, name), None)

    def _snapshot(self) -> dict[tuple[str, str], OpenIncident]:
        with self._lock:
            return dict(self._open)

    def counts(self) -> dict[str, int]:
        values = [i.severity for i in self._snapshot().values()]
        return {s.value: values.count(s.value) for s in Severity}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "zentinel_operator_open_incidents", "Open incidents by severity.", labels=["severity"]
        )
        for severity, count in self.counts().items():
            family.add_metric([severity], count)
        yield family
        each = GaugeMetricFamily(
            "zentinel_operator_incident_open",
            "1 for each open incident: its Zentinel, severity, category, whether it is acknowledged and"
            " its escalation level (none before any escalation).",
            labels=list(INCIDENT_LABELS),
        )
        for (namespace, name), i in sorted(self._snapshot().items()):
            each.add_metric(
                [namespace, i.zentinel, name, i.severity, i.category, str(i.acknowledged).lower(), i.escalation_level],
                1,
            )
        yield each


OPEN_INCIDENTS = OpenIncidents()
REGISTRY.register(OPEN_INCIDENTS)


def observe(notes: list[MetricNote]) -> None:
    for note in notes:
        sev = note.severity.value
        if note.name == "opened":
            INCIDENTS_OPENED.labels(note.category.value, sev).inc()
        elif note.name == "reopened":
            INCIDENTS_REOPENED.labels(note.category.value, sev).inc()
        elif note.name == "acknowledged" and note.seconds is not None:
            ACKNOWLEDGE_SECONDS.labels(sev).observe(note.seconds)
        elif note.name == "resolved" and note.seconds is not None:
            RESOLVE_SECONDS.labels(sev).observe(note.seconds)
        elif note.name == "escalated":
            ESCALATIONS.labels(note.level or "unknown", sev).inc()


def serve(port: int, addr: str) -> None:
    if port:
        start_http_server(port, addr=addr, registry=REGISTRY)
