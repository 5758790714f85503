"""The operator's own /metrics: build info, process metrics, open incidents with their Zentinel and
acknowledgement, notifications by Zentinel; and the JSON log format."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib.metadata import version

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zentinel_operator import config
from zentinel_operator import operator_metrics as metrics


def samples(registry: CollectorRegistry, name: str) -> list[tuple[dict[str, str], float]]:
    text = generate_latest(registry).decode()
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_build_info_names_the_operator_python_and_kopf() -> None:
    ((labels, value),) = samples(metrics.REGISTRY, "zentinel_operator_build_info")
    assert value == 1
    assert labels == {
        "version": version("zentinel-incident-operator"),
        "python": platform.python_version(),
        "kopf": version("kopf"),
    }


def test_process_and_platform_metrics_are_served() -> None:
    rss = metrics.REGISTRY.get_sample_value("process_resident_memory_bytes")
    assert rss is not None and rss > 0
    assert metrics.REGISTRY.get_sample_value("process_start_time_seconds")
    assert samples(metrics.REGISTRY, "python_info")[0][0]["version"] == platform.python_version()


def incident(
    severity: str = "SEV1", acked: bool = False, level: str | None = None, resolved: bool = False
) -> tuple[dict[str, object], dict[str, object]]:
    status: dict[str, object] = {"severity": severity, "state": "Triggered"}
    if acked:
        status["acknowledgedAt"] = "2026-01-01T00:00:00Z"
    if level:
        status["escalationLevel"] = level
    if resolved:
        status["resolvedAt"] = "2026-01-01T01:00:00Z"
    return status, {"zentinelRef": {"name": "edge"}, "category": "ServiceDown"}


def test_each_open_incident_is_a_series_that_says_whether_it_is_acknowledged() -> None:
    registry = CollectorRegistry()
    open_ = metrics.OpenIncidents()
    registry.register(open_)
    open_.update("shop", "edge-servicedown", *incident())
    open_.update("shop", "edge-tls", *incident("SEV3", acked=True, level="secondary"))
    open_.update("shop", "old", *incident(resolved=True))
    got = samples(registry, "zentinel_operator_incident_open")
    assert sorted((labels["incident"], labels["acknowledged"], labels["escalation_level"]) for labels, _ in got) == [
        ("edge-servicedown", "false", "none"),
        ("edge-tls", "true", "secondary"),
    ]
    assert {k: v for k, v in got[0][0].items() if k != "incident"} == {
        "zentinel_namespace": "shop",
        "zentinel": "edge",
        "severity": "SEV1",
        "category": "ServiceDown",
        "acknowledged": "false",
        "escalation_level": "none",
    }
    assert all(value == 1 for _, value in got)
    assert open_.counts()["SEV1"] == 1 and open_.counts()["SEV3"] == 1

    # Acknowledging moves the incident to acknowledged="true" (an alert on "false" resolves).
    open_.update("shop", "edge-servicedown", *incident(acked=True))
    assert {labels["acknowledged"] for labels, _ in samples(registry, "zentinel_operator_incident_open")} == {"true"}
    open_.forget("shop", "edge-servicedown")
    open_.update("shop", "edge-tls", *incident(resolved=True))
    assert samples(registry, "zentinel_operator_incident_open") == []
    assert sum(open_.counts().values()) == 0


def test_notifications_are_counted_by_zentinel() -> None:
    metrics.NOTIFICATIONS.labels("shop", "edge", "Slack", "failed").inc()
    value = metrics.REGISTRY.get_sample_value(
        "zentinel_operator_notifications_total",
        {"zentinel_namespace": "shop", "zentinel": "edge", "type": "Slack", "result": "failed"},
    )
    assert value is not None and value >= 1


def test_log_format_setting() -> None:
    assert config.load({}).log_format == "full"
    assert config.load({"ZENTINEL_OPERATOR_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SystemExit) as e:
        config.load({"ZENTINEL_OPERATOR_LOG_FORMAT": "yaml"})
    assert "ZENTINEL_OPERATOR_LOG_FORMAT" in str(e.value)


def test_json_log_format_writes_one_json_object_a_line() -> None:
    """kopf's JSON formatter, configured the way ``zentinel-operator run --log-format json`` does."""
    code = (
        "import logging, kopf\n"
        "from zentinel_operator.__main__ import log_format\n"
        "kopf.configure(log_format=log_format('json'))\n"
        "logging.getLogger('kopf.objects').warning('incident %s opened', 'edge-servicedown')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    record = json.loads(lines[-1])
    assert record["message"] == "incident edge-servicedown opened"
    assert record["severity"] == "warn" and record["timestamp"].startswith("20"), record
