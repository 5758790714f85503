"""The operator's own Prometheus metrics, registered once in a dedicated registry.

Open incidents by severity are computed from the incidents the operator watches (a custom
collector over a map kept current by the incident watch), so the gauge is right after a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.lifecycle import MetricNote
from .models.common import Severity

REGISTRY = CollectorRegistry(auto_describe=True)

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
    "Notification deliveries, by receiver type and result.",
    ["type", "result"],
    registry=REGISTRY,
)
PASS_ERRORS = Counter(
    "zentinel_operator_pass_errors_total",
    "Passes over a Zentinel that ended in an error (kopf retries them).",
    registry=REGISTRY,
)
PASS_SECONDS = Histogram(
    "zentinel_operator_pass_seconds",
    "Duration of one observe-assess-record pass for one Zentinel.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


class OpenIncidents(Collector):
    """``zentinel_operator_open_incidents{severity}`` from the watched incidents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], str] = {}

    def update(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        key = (namespace, name)
        with self._lock:
            if status and not status.get("resolvedAt") and status.get("severity"):
                self._open[key] = str(status["severity"])
            else:
                self._open.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._open.pop((namespace, name), None)

    def counts(self) -> dict[str, int]:
        with self._lock:
            values = list(self._open.values())
        return {s.value: values.count(s.value) for s in Severity}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "zentinel_operator_open_incidents", "Open incidents by severity.", labels=["severity"]
        )
        for severity, count in self.counts().items():
            family.add_metric([severity], count)
        yield family


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
