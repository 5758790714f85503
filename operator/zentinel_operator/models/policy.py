"""``ZentinelIncidentPolicy``: thresholds, escalation, remediation limits, kept in Git by the platform team.

Every default here is the runbook's (``incident-response.md``), so an empty policy behaves as the
runbook says. What a schema cannot express (ladders in order, durations that parse, receivers that
exist) is checked by :mod:`zentinel_operator.core.policy_checks`, which the admission webhook runs.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from pydantic import Field

from .common import (
    QUANTITY_PATTERN,
    Condition,
    CRDInfo,
    Duration,
    KModel,
    LabelSelector,
    Meta,
    SecretKeyRef,
    Severity,
)


class Ladder(KModel):
    """A threshold per severity. Missing rungs are not used."""

    sev1: float | None = Field(default=None, ge=0, description="Threshold for SEV1.")
    sev2: float | None = Field(default=None, ge=0, description="Threshold for SEV2.")
    sev3: float | None = Field(default=None, ge=0, description="Threshold for SEV3.")
    sev4: float | None = Field(default=None, ge=0, description="Threshold for SEV4.")

    def rungs(self) -> list[tuple[Severity, float]]:
        """(severity, threshold), worst first, skipping unset rungs."""
        values = [
            (Severity.SEV1, self.sev1),
            (Severity.SEV2, self.sev2),
            (Severity.SEV3, self.sev3),
            (Severity.SEV4, self.sev4),
        ]
        return [(s, v) for s, v in values if v is not None]


def _ladder(**kw: float) -> Any:
    return Field(default_factory=lambda: Ladder(**kw))


class Thresholds(KModel):
    error_rate: Ladder = Field(
        default_factory=lambda: Ladder(sev1=0.95, sev2=0.10, sev3=0.01),
        description=(
            'Share of requests answered 5xx (`zentinel_requests_total{status=~"5.."}` plus Zentinel\'s own '
            '`zentinel_blocked_requests_total{reason=~"proxy_error_5.."}`), higher is worse. Runbook: '
            "> 1 % SEV3, > 10 % SEV2; almost everything failing is a complete outage (SEV1)."
        ),
    )
    min_requests: int = Field(
        default=20, ge=0, description="Fewer requests than this in an interval: error rates are not judged."
    )
    failing_route_error_rate: float = Field(
        default=0.5, ge=0, le=1, description="A route whose 5xx share is above this counts as failing."
    )
    failing_routes: Ladder = Field(
        default_factory=lambda: Ladder(sev2=2, sev3=1),
        description="Number of failing routes, higher is worse (runbook: multiple routes failing is SEV2).",
    )
    latency_p99_seconds: Ladder = Field(
        default_factory=lambda: Ladder(sev2=5.0, sev3=1.0, sev4=0.5),
        description="p99 request duration in seconds, higher is worse (runbook: elevated latency is SEV3).",
    )
    memory_share_of_limit: Ladder = Field(
        default_factory=lambda: Ladder(sev2=0.95, sev3=0.85),
        description="`zentinel_memory_usage_bytes` over the container memory limit, higher is worse.",
    )
    unhealthy_upstream_share: Ladder = Field(
        default_factory=lambda: Ladder(sev1=1.0, sev2=0.5, sev3=0.0001),
        description=(
            "Share of an upstream's targets that are unhealthy, higher is worse. Runbook: one upstream "
            "unhealthy is SEV3; all upstreams unreachable is SEV1."
        ),
    )
    certificate_days_left: Ladder = Field(
        default_factory=lambda: Ladder(sev1=0, sev2=3, sev3=7, sev4=30),
        description="Days until a certificate expires, lower is worse (0: expired, a full outage for TLS).",
    )
    traffic_spike_factor: Ladder = Field(
        default_factory=lambda: Ladder(sev2=10, sev3=3),
        description="Request rate over its recent baseline, higher is worse.",
    )
    restarts_for_crash_loop: int = Field(
        default=3, ge=1, description="Restarts of one container that make it count as crash-looping."
    )


class ResponseTargets(KModel):
    """Time to acknowledge per severity before the incident escalates to the secondary."""

    sev1: Duration = Field(default="5m", description="Runbook: immediate (< 5 min).")
    sev2: Duration = Field(default="15m", description="Runbook: < 15 min.")
    sev3: Duration = Field(default="1h", description="Runbook: < 1 hour.")
    sev4: Duration = Field(default="4h", description="Runbook: < 4 hours.")

    def for_severity(self, severity: Severity) -> str:
        return str(getattr(self, severity.value.lower()))


class EscalationLevels(KModel):
    primary: list[str] = Field(default_factory=list, description="Receivers paged at detection.")
    secondary: list[str] = Field(
        default_factory=list, description="Receivers paged when the response target passes unacknowledged."
    )
    management: list[str] = Field(
        default_factory=list,
        description="Receivers told when the incident is still unresolved after `managementAfter`.",
    )
    management_after: Duration | None = Field(
        default=None, description="Unresolved this long: management is told (runbook: SEV1 after 30 min)."
    )


class EscalationMatrix(KModel):
    """The runbook's escalation matrix; receivers are named from `receivers`."""

    sev1: EscalationLevels = Field(
        default_factory=lambda: EscalationLevels(management_after="30m"),
        description="On-call engineer, then team lead, then director if > 30 min.",
    )
    sev2: EscalationLevels = Field(default_factory=EscalationLevels, description="On-call engineer, then team lead.")
    sev3: EscalationLevels = Field(default_factory=EscalationLevels, description="On-call engineer.")
    sev4: EscalationLevels = Field(default_factory=EscalationLevels, description="Next business day.")

    def for_severity(self, severity: Severity) -> EscalationLevels:
        result: EscalationLevels = getattr(self, severity.value.lower())
        return result


class ReceiverType(enum.StrEnum):
    SLACK = "Slack"
    PAGERDUTY = "PagerDuty"
    WEBHOOK = "Webhook"
    ALERTMANAGER = "Alertmanager"


class Receiver(KModel):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name used in the escalation matrix.",
    )
    type: ReceiverType = Field(description="`Slack`, `PagerDuty`, `Webhook` or `Alertmanager`.")
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret key holding the sensitive part: the Slack incoming-webhook URL, the PagerDuty routing "
            "key, or the generic webhook's URL. Never logged or stored."
        ),
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description=(
            "Non-secret endpoint: Alertmanager's base URL, a generic webhook URL that holds no secret, or an "
            "override of the PagerDuty Events API v2 endpoint."
        ),
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a bearer token sent in `Authorization` (Webhook, Alertmanager).",
    )


class RemediationMode(enum.StrEnum):
    AUTOMATIC = "Automatic"
    NEEDS_APPROVAL = "NeedsApproval"
    DRY_RUN = "DryRun"
    OFF = "Off"


class ActionPolicy(KModel):
    mode: RemediationMode | None = Field(
        default=None, description="`Automatic`, `NeedsApproval`, `DryRun` or `Off`; default: `defaultMode`."
    )


class TemporaryActionPolicy(ActionPolicy):
    ttl: Duration = Field(default="30m", description="The change undoes itself after this long.")


class CertificateRotationPolicy(ActionPolicy):
    renew_before_days: int = Field(default=7, ge=0, le=365, description="Rotate when fewer days than this remain.")


class ConnectionLimitsPolicy(TemporaryActionPolicy):
    max_total_connections: int = Field(default=5000, ge=1, description="`limits { max-total-connections }`.")
    max_connections_per_client: int = Field(default=50, ge=1, description="`limits { max-connections-per-client }`.")


class MemoryLimitPolicy(ActionPolicy):
    factor: float = Field(default=1.5, gt=1, le=10, description="Multiply the container memory limit by this.")
    cap: str = Field(
        default="4Gi",
        pattern=QUANTITY_PATTERN,
        description="Never raise the limit above this quantity (any Kubernetes quantity: `4Gi`, `1Pi`, `5e9`).",
    )


class RateLimitPolicy(TemporaryActionPolicy):
    requests_per_second: int = Field(default=100, ge=1, description="`rate-limit { requests-per-second }`.")
    burst: int = Field(default=200, ge=1, description="`rate-limit { burst }`.")


class EjectTargetsPolicy(TemporaryActionPolicy):
    min_remaining_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Quorum guard: never leave fewer than this share of an upstream's targets in place.",
    )


class RemediationActions(KModel):
    config_rollback: ActionPolicy = Field(
        default_factory=ActionPolicy, description="Roll back to the last known good config."
    )
    certificate_rotation: CertificateRotationPolicy = Field(
        default_factory=CertificateRotationPolicy, description="Re-issue expiring or invalid certificates."
    )
    restart: ActionPolicy = Field(default_factory=ActionPolicy, description="Delete stuck pods or roll the Deployment.")
    connection_limits: ConnectionLimitsPolicy = Field(
        default_factory=ConnectionLimitsPolicy, description="Lower connection limits (memory exhaustion)."
    )
    memory_limit: MemoryLimitPolicy = Field(
        default_factory=MemoryLimitPolicy, description="Raise the container memory limit (OOMKilled)."
    )
    rate_limit: RateLimitPolicy = Field(
        default_factory=RateLimitPolicy, description="Switch on rate limiting on affected routes."
    )
    eject_targets: EjectTargetsPolicy = Field(
        default_factory=EjectTargetsPolicy, description="Take unhealthy upstream targets out for a while."
    )


class Budget(KModel):
    per_zentinel: int = Field(default=3, ge=0, description="Actions per Zentinel per window.")
    per_cluster: int = Field(
        default=10, ge=0, description="Actions across every Zentinel this policy selects, per window."
    )
    window: Duration = Field(default="1h", description="Sliding window the budgets count over.")


class RemediationPolicy(KModel):
    default_mode: RemediationMode = Field(
        default=RemediationMode.DRY_RUN,
        description="Mode for every action that does not set its own. `DryRun` records the diff and changes nothing.",
    )
    actions: RemediationActions = Field(default_factory=RemediationActions, description="Per-action settings.")
    budget: Budget = Field(default_factory=Budget, description="Remediation budgets.")
    cooldown: Duration = Field(default="10m", description="Minimum time between two actions on one Zentinel.")
    hold_off_after_change: Duration = Field(
        default="5m",
        description="Do nothing while a rollout runs or for this long after someone else changed the config.",
    )
    proven_good_after: Duration = Field(
        default="10m",
        description=(
            "A config revision is last-known-good once every pod ran Ready on it, with no open incident, this long."
        ),
    )
    verify_timeout: Duration = Field(
        default="3m", description="How long an action has to show recovery before the next step."
    )
    config_history_limit: int = Field(default=10, ge=2, le=100, description="Config revisions kept per Zentinel.")


class Lifecycle(KModel):
    resolve_after: Duration = Field(default="5m", description="Signals healthy this long: the incident resolves.")
    reopen_window: Duration = Field(
        default="1h",
        description="A resolved incident whose signal returns within this window is reopened (flapping).",
    )
    timeline_limit: int = Field(default=100, ge=10, le=1000, description="Timeline entries kept in status.")


class EvidencePolicy(KModel):
    enabled: bool = Field(default=True, description="Collect an evidence bundle at detection and at resolution.")
    retention: Duration = Field(default="720h", description="Evidence is deleted this long after resolution.")
    max_bytes: int = Field(default=4_000_000, ge=10_000, le=100_000_000, description="Cap on one bundle's size.")
    log_lines: int = Field(default=500, ge=10, le=100_000, description="Log lines kept per container.")


class ZentinelIncidentPolicySpec(KModel):
    selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Which Zentinels in this namespace the policy governs."
    )
    priority: int = Field(default=0, description="Where several policies select one Zentinel, the highest wins.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="The numbers behind each severity.")
    response_targets: ResponseTargets = Field(
        default_factory=ResponseTargets, description="Time to acknowledge per severity."
    )
    receivers: list[Receiver] = Field(default_factory=list, description="Where notifications go.")
    escalation: EscalationMatrix = Field(default_factory=EscalationMatrix, description="Who is paged, and when.")
    remediation: RemediationPolicy = Field(default_factory=RemediationPolicy, description="What the operator may do.")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle, description="Resolution and flapping.")
    evidence: EvidencePolicy = Field(default_factory=EvidencePolicy, description="Evidence bundles.")


class ZentinelIncidentPolicyStatus(KModel):
    observed_generation: int | None = Field(default=None, description="Last generation the operator handled.")
    selected_zentinels: int = Field(default=0, ge=0, description="How many Zentinels this policy governs now.")
    selected: list[str] = Field(default_factory=list, description="Names of those Zentinels.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Accepted`.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ZentinelIncidentPolicy(KModel, CRDInfo):
    kind: ClassVar[str] = "ZentinelIncidentPolicy"
    plural: ClassVar[str] = "zentinelincidentpolicies"
    singular: ClassVar[str] = "zentinelincidentpolicy"
    short_names: ClassVar[list[str]] = ["zipol"]
    description: ClassVar[str] = "Thresholds, escalation and remediation limits for the Zentinels it selects."
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Selected",
            "type": "integer",
            "jsonPath": ".status.selectedZentinels",
            "description": "Zentinels this policy governs",
        },
        {"name": "Mode", "type": "string", "jsonPath": ".spec.remediation.defaultMode"},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelIncidentPolicySpec = Field(default_factory=ZentinelIncidentPolicySpec)
    status: ZentinelIncidentPolicyStatus = Field(default_factory=ZentinelIncidentPolicyStatus)
