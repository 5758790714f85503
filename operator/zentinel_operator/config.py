"""Operator settings, read once from ``ZENTINEL_OPERATOR_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from .core.shards import Shard

PREFIX = "ZENTINEL_OPERATOR_"


class Settings(BaseModel):
    namespaces: list[str] = Field(default_factory=list, description="Namespaces to watch; empty: all.")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Operator's own /metrics (0: off).")
    metrics_addr: str = Field(default="0.0.0.0", description="Address of the metrics server.")  # noqa: S104
    liveness_endpoint: str | None = Field(default="http://0.0.0.0:8081/healthz", description="kopf's probe server.")
    scan_interval: float = Field(default=15.0, gt=0, description="Seconds between signal passes per Zentinel.")
    watch_timeout: int = Field(default=300, ge=1, description="Seconds the API server keeps one watch open.")
    event_passes: bool = Field(
        default=True,
        description="Start a Zentinel's pass at once when its pods, Deployment, ConfigMap or TLS Secrets change.",
    )
    event_debounce: float = Field(
        default=0.5, ge=0, le=60, description="Seconds one burst of changes is gathered into one event pass."
    )
    event_concurrency: int = Field(default=4, ge=1, description="Event passes running at once, over all Zentinels.")
    reads_resync: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a quiet Zentinel's timer passes reuse what they read from the API server while no "
        "watch event concerns it (0: read every pass; with event passes only).",
    )
    scrape_timeout: float = Field(default=3.0, gt=0, description="Seconds per admin-endpoint request.")
    scrape_concurrency: int = Field(default=32, ge=1, description="Admin-endpoint requests in flight at most.")
    scrape_max_bytes: int = Field(default=8_000_000, ge=1024, description="Largest metrics page read.")
    prometheus_url: str | None = Field(
        default=None, description="Prometheus for Zentinels with metricsSource Prometheus."
    )
    prometheus_window: float = Field(default=60.0, gt=0, description="Seconds of history behind each rate.")
    prometheus_pod_label: str = Field(default="pod", description="Label naming the pod in Zentinel's series.")
    prometheus_namespace_label: str = Field(default="namespace", description="Label naming the namespace.")
    webhook_enabled: bool = Field(default=False, description="Serve the admission webhook.")
    webhook_addr: str = Field(default="0.0.0.0", description="Address the webhook listens on.")  # noqa: S104
    webhook_port: int = Field(default=9443, description="Port the webhook listens on.")
    webhook_host: str | None = Field(default=None, description="Host the API server reaches the webhook at.")
    webhook_cert_dir: Path | None = Field(default=None, description="tls.crt/tls.key (and ca.crt) from the chart.")
    webhook_managed: bool = Field(default=True, description="Let the operator create its webhook configuration.")
    alert_intake_port: int = Field(default=0, ge=0, le=65535, description="Alertmanager webhook intake (0: off).")
    alert_intake_addr: str = Field(default="0.0.0.0", description="Address of the intake.")  # noqa: S104
    alert_intake_token_file: Path | None = Field(default=None, description="File holding the intake's bearer token.")
    alert_intake_max_bytes: int = Field(default=1_000_000, description="Largest payload the intake accepts.")
    alert_intake_pagerduty_secret_file: Path | None = Field(
        default=None,
        description="File with PagerDuty webhook (v3) signing secrets, one a line: POST /api/v1/pagerduty.",
    )
    alert_intake_slack_secret_file: Path | None = Field(
        default=None, description="File with Slack app signing secrets, one a line: POST /api/v1/slack/interactions."
    )
    kopf_prefix: str = Field(default="operator.zentinel.io", description="Prefix of kopf's annotations.")
    log_format: Literal["full", "plain", "json"] = Field(
        default="full", description="kopf's log format: full (timestamped text), plain (message only), json."
    )
    pod_namespace: str | None = Field(
        default=None,
        description=(
            "The operator's own namespace (the chart sets it from the downward API): where the receivers' "
            "Secrets of a ZentinelClusterIncidentPolicy are read. Empty: the service account's namespace, else "
            "the Lease's."
        ),
    )
    leader_election: bool = Field(default=True, description="One active replica, elected on a Lease.")
    lease_name: str = Field(default="zentinel-incident-operator", description="Name of the Lease.")
    lease_namespace: str | None = Field(
        default=None, description="Namespace of the Lease; empty: the pod's, else the first watched, else default."
    )
    lease_duration: float = Field(default=15.0, gt=0, description="Seconds a standby waits on an unrenewed Lease.")
    lease_renew_deadline: float = Field(default=10.0, gt=0, description="Seconds the active may fail to renew.")
    lease_retry_period: float = Field(default=2.0, gt=0, description="Seconds between two renewals or attempts.")
    shard_count: int = Field(
        default=1, ge=1, description="Shards the Zentinels are spread over (by a hash of namespace/name); 1: none."
    )
    shard_index: int = Field(default=0, ge=0, description="The shard this operator serves, 0 to shard_count - 1.")

    @model_validator(mode="after")
    def _lease_timings(self) -> Settings:
        if not self.lease_retry_period < self.lease_renew_deadline < self.lease_duration:
            raise ValueError(
                "need lease_retry_period < lease_renew_deadline < lease_duration (the active stops before "
                f"the Lease can expire), got {self.lease_retry_period} / {self.lease_renew_deadline} / "
                f"{self.lease_duration}"
            )
        return self

    @model_validator(mode="after")
    def _shard_in_range(self) -> Settings:
        if self.shard_index >= self.shard_count:
            raise ValueError(
                f"need {PREFIX}SHARD_INDEX < {PREFIX}SHARD_COUNT (shards are numbered from 0), got "
                f"{self.shard_index} / {self.shard_count}"
            )
        return self

    def shard(self) -> Shard:
        return Shard(self.shard_index, self.shard_count)

    def lease(self) -> str:
        """The Lease this operator's replicas elect their active on: one per shard."""
        return f"{self.lease_name}-shard-{self.shard_index}" if self.shard_count > 1 else self.lease_name

    def lease_home(self) -> str:
        if self.lease_namespace:
            return self.lease_namespace
        sa = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        if sa.is_file():
            return sa.read_text().strip()
        return self.namespaces[0] if self.namespaces else "default"

    def operator_namespace(self) -> str:
        """The namespace holding the Secrets of cluster policies' receivers."""
        return self.pod_namespace or self.lease_home()


def _parse(name: str, raw: str) -> object:
    if name == "namespaces":
        return [n.strip() for n in raw.split(",") if n.strip()]
    return raw


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    for field in Settings.model_fields:
        key = PREFIX + field.upper()
        if key in env:
            values[field] = _parse(field, env[key])
    try:
        return Settings.model_validate(values)
    except ValidationError as e:
        names = ", ".join(PREFIX + str(err["loc"][0]).upper() for err in e.errors() if err["loc"]) or "checked together"
        raise SystemExit(f"invalid operator settings ({names}): {e}") from e
