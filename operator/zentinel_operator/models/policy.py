"""``ZentinelIncidentPolicy``: thresholds, escalation, remediation limits, kept in Git by the platform team.

Every default here is the runbook's (``incident-response.md``), so an empty policy behaves as the
runbook says. The rules across fields (ladders in order, receivers that exist, what each receiver
type needs, durations longer than zero) are CEL rules in the CRD (``x-kubernetes-validations``), so
the API server refuses a bad policy at ``kubectl apply`` with or without the admission webhook.
:mod:`zentinel_operator.core.policy_checks` says the same in Python for the ``Accepted`` condition
and the CLI; the webhook runs only what CEL cannot say.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar, NamedTuple

from pydantic import Field

from .. import names
from .common import (
    QUANTITY_PATTERN,
    Condition,
    CRDInfo,
    Duration,
    KModel,
    LabelSelector,
    Meta,
    PositiveDuration,
    SecretKeyRef,
    Severity,
    cel,
    validations,
)

RUNGS = ("sev1", "sev2", "sev3", "sev4")
MAX_RECEIVERS = 32
MAX_RECEIVERS_PER_LEVEL = 16
RECEIVER_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ReceiverName = Annotated[str, Field(min_length=1, max_length=63, pattern=RECEIVER_NAME_PATTERN)]


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


class LadderRule(NamedTuple):
    """How one threshold ladder is read: which way is worse, and the largest value that makes sense."""

    higher_is_worse: bool
    upper: float | None = None


# Thresholds field (snake_case) -> its rule; the CRD's CEL rules and core.policy_checks read this table.
LADDER_RULES: dict[str, LadderRule] = {
    "error_rate": LadderRule(True, 1.0),
    "failing_routes": LadderRule(True),
    "latency_p99_seconds": LadderRule(True),
    "memory_share_of_limit": LadderRule(True, 1.0),
    "unhealthy_upstream_share": LadderRule(True, 1.0),
    "certificate_days_left": LadderRule(False),
    "traffic_spike_factor": LadderRule(True),
}


def ladder_cel(rule: LadderRule) -> list[dict[str, str]]:
    """CEL for one ladder: each set rung below ``upper``; each set rung worse than the next set one.

    Messages are fixed strings: a ``messageExpression`` with ``string(number)`` has no size bound in the
    API server's cost estimate, which then refuses the CRD.
    """
    out = []
    if rule.upper is not None:
        for r in RUNGS:
            out.append(
                cel(
                    f"!has(self.{r}) || self.{r} <= {rule.upper}", f"above the maximum {rule.upper}", field_path=f".{r}"
                )
            )
    op, word, why = (">", "greater", "a worse value") if rule.higher_is_worse else ("<", "less", "fewer days left")
    for i, worse in enumerate(RUNGS):
        for j in range(i + 1, len(RUNGS)):
            better, between = RUNGS[j], RUNGS[i + 1 : j]
            # Neighbours among the rungs that are set: the same pairs core.policy_checks compares.
            applies = " && ".join([f"has(self.{worse})", f"has(self.{better})", *(f"!has(self.{b})" for b in between)])
            out.append(
                cel(
                    f"!({applies}) || self.{worse} {op} self.{better}",
                    f"{worse} must be {word} than {better}; a worse severity needs {why}",
                )
            )
    return out


def _ladder(field: str, description: str, **defaults: float) -> Any:
    return Field(
        default_factory=lambda: Ladder(**defaults),
        description=description,
        json_schema_extra=validations(*ladder_cel(LADDER_RULES[field])),
    )


class Thresholds(KModel):
    error_rate: Ladder = _ladder(
        "error_rate",
        (
            'Share of requests answered 5xx (`zentinel_requests_total{status=~"5.."}` plus Zentinel\'s own '
            '`zentinel_blocked_requests_total{reason=~"proxy_error_5.."}`), higher is worse. Runbook: '
            "> 1 % SEV3, > 10 % SEV2; almost everything failing is a complete outage (SEV1)."
        ),
        sev1=0.95,
        sev2=0.10,
        sev3=0.01,
    )
    min_requests: int = Field(
        default=20, ge=0, description="Fewer requests than this in an interval: error rates are not judged."
    )
    failing_route_error_rate: float = Field(
        default=0.5, ge=0, le=1, description="A route whose 5xx share is above this counts as failing."
    )
    failing_routes: Ladder = _ladder(
        "failing_routes",
        "Number of failing routes, higher is worse (runbook: multiple routes failing is SEV2).",
        sev2=2,
        sev3=1,
    )
    latency_p99_seconds: Ladder = _ladder(
        "latency_p99_seconds",
        "p99 request duration in seconds, higher is worse (runbook: elevated latency is SEV3).",
        sev2=5.0,
        sev3=1.0,
        sev4=0.5,
    )
    memory_share_of_limit: Ladder = _ladder(
        "memory_share_of_limit",
        "`zentinel_memory_usage_bytes` over the container memory limit, higher is worse.",
        sev2=0.95,
        sev3=0.85,
    )
    unhealthy_upstream_share: Ladder = _ladder(
        "unhealthy_upstream_share",
        (
            "Share of an upstream's targets that are unhealthy, higher is worse. Runbook: one upstream "
            "unhealthy is SEV3; all upstreams unreachable is SEV1."
        ),
        sev1=1.0,
        sev2=0.5,
        sev3=0.0001,
    )
    certificate_days_left: Ladder = _ladder(
        "certificate_days_left",
        "Days until a certificate expires, lower is worse (0: expired, a full outage for TLS).",
        sev1=0,
        sev2=3,
        sev3=7,
        sev4=30,
    )
    traffic_spike_factor: Ladder = _ladder(
        "traffic_spike_factor",
        "Request rate over its recent baseline, higher is worse.",
        sev2=10,
        sev3=3,
    )
    restarts_for_crash_loop: int = Field(
        default=3, ge=1, description="Restarts of one container that make it count as crash-looping."
    )


class ResponseTargets(KModel):
    """Time to acknowledge per severity before the incident escalates to the secondary."""

    sev1: PositiveDuration = Field(default="5m", description="Runbook: immediate (< 5 min).")
    sev2: PositiveDuration = Field(default="15m", description="Runbook: < 15 min.")
    sev3: PositiveDuration = Field(default="1h", description="Runbook: < 1 hour.")
    sev4: PositiveDuration = Field(default="4h", description="Runbook: < 4 hours.")

    def for_severity(self, severity: Severity) -> str:
        return str(getattr(self, severity.value.lower()))


class EscalationLevels(KModel):
    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.management) || size(self.management) == 0 || has(self.managementAfter)",
                "needed when management receivers are set",
                field_path=".managementAfter",
                reason="FieldValueRequired",
            )
        )
    }

    primary: list[ReceiverName] = Field(
        default_factory=list, max_length=MAX_RECEIVERS_PER_LEVEL, description="Receivers paged at detection."
    )
    secondary: list[ReceiverName] = Field(
        default_factory=list,
        max_length=MAX_RECEIVERS_PER_LEVEL,
        description="Receivers paged when the response target passes unacknowledged.",
    )
    management: list[ReceiverName] = Field(
        default_factory=list,
        max_length=MAX_RECEIVERS_PER_LEVEL,
        description="Receivers told when the incident is still unresolved after `managementAfter`.",
    )
    management_after: PositiveDuration | None = Field(
        default=None, description="Unresolved this long: management is told (runbook: SEV1 after 30 min)."
    )

    def past_primary(self) -> tuple[str, ...]:
        """Who a page past the primary goes to: the secondary, else the primary again."""
        return tuple(self.secondary) or tuple(self.primary)


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
    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            *(
                cel(
                    f"self.type != '{kind}' || has(self.secretRef)",
                    f"a {kind} receiver needs a Secret key holding {what}",
                    field_path=".secretRef",
                    reason="FieldValueRequired",
                )
                for kind, what in (("Slack", "the incoming-webhook URL"), ("PagerDuty", "the routing key"))
            ),
            cel(
                "self.type != 'Webhook' || has(self.url) || has(self.secretRef)",
                "a Webhook receiver needs url or secretRef (a Secret key holding the URL)",
            ),
            cel(
                "self.type != 'Alertmanager' || has(self.url)",
                "an Alertmanager receiver needs Alertmanager's base URL",
                field_path=".url",
                reason="FieldValueRequired",
            ),
        )
    }

    name: ReceiverName = Field(description="Name used in the escalation matrix.")
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
    ttl: PositiveDuration = Field(default="30m", description="The change undoes itself after this long.")


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
    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.perCluster) || !has(self.perZentinel) || self.perCluster >= self.perZentinel",
                "must not be below perZentinel",
                field_path=".perCluster",
            )
        )
    }

    per_zentinel: int = Field(default=3, ge=0, description="Actions per Zentinel per window.")
    per_cluster: int = Field(
        default=10, ge=0, description="Actions across every Zentinel this policy selects, per window."
    )
    window: PositiveDuration = Field(default="1h", description="Sliding window the budgets count over.")


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
    verify_timeout: PositiveDuration = Field(
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
    retention: PositiveDuration = Field(default="720h", description="Evidence is deleted this long after resolution.")
    max_bytes: int = Field(default=4_000_000, ge=10_000, le=100_000_000, description="Cap on one bundle's size.")
    log_lines: int = Field(default=500, ge=10, le=100_000, description="Log lines kept per container.")


def _receivers_exist(sev: str, level: str) -> dict[str, str]:
    # has() rather than optionals (self.?a.orValue([])), and the message names the first missing
    # receiver (no join): the API server's cost estimate keeps list and string bounds only this way.
    names = f"self.escalation.{sev}.{level}"
    known = "has(self.receivers) && self.receivers.exists(r, r.name == n)"
    present = f"has(self.escalation) && has(self.escalation.{sev}) && has({names})"
    return cel(
        f"!({present}) || {names}.all(n, {known})",
        message_expression=(
            f'"receiver \'" + {names}.filter(n, !({known}))[0] + "\' is not defined in spec.receivers"'
        ),
        field_path=f".escalation.{sev}.{level}",
    )


ESCALATION_LEVELS = ("primary", "secondary", "management")


class ZentinelIncidentPolicySpec(KModel):
    model_config = KModel.model_config | {
        "json_schema_extra": validations(*(_receivers_exist(sev, lvl) for sev in RUNGS for lvl in ESCALATION_LEVELS))
    }

    selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description=(
            "Which Zentinels the policy governs: in its own namespace, or in every namespace for a "
            "ZentinelClusterIncidentPolicy."
        ),
    )
    priority: int = Field(
        default=0,
        description=(
            "Where several policies of the same scope select one Zentinel, the highest wins (then the first "
            "name). A namespaced policy always wins over a cluster policy."
        ),
    )
    thresholds: Thresholds = Field(default_factory=Thresholds, description="The numbers behind each severity.")
    response_targets: ResponseTargets = Field(
        default_factory=ResponseTargets, description="Time to acknowledge per severity."
    )
    receivers: list[Receiver] = Field(
        default_factory=list,
        max_length=MAX_RECEIVERS,
        description="Where notifications go; names are unique.",
        # A map keyed by name: the API server refuses a repeated name, and server-side apply merges by name.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    escalation: EscalationMatrix = Field(default_factory=EscalationMatrix, description="Who is paged, and when.")
    remediation: RemediationPolicy = Field(default_factory=RemediationPolicy, description="What the operator may do.")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle, description="Resolution and flapping.")
    evidence: EvidencePolicy = Field(default_factory=EvidencePolicy, description="Evidence bundles.")


class ZentinelIncidentPolicyStatus(KModel):
    observed_generation: int | None = Field(default=None, description="Last generation the operator handled.")
    selected_zentinels: int = Field(default=0, ge=0, description="How many Zentinels this policy governs now.")
    selected: list[str] = Field(
        default_factory=list,
        description="Those Zentinels: names (a namespaced policy) or `namespace/name` (a cluster policy).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "`Accepted` (the policy passes every check and is in force) and `Ready` (the same, for "
            "`kubectl wait`, kstatus, Argo CD and Flux)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ZentinelIncidentPolicy(KModel, CRDInfo):
    kind: ClassVar[str] = names.KIND_POLICY
    plural: ClassVar[str] = names.POLICIES
    singular: ClassVar[str] = names.SINGULAR_POLICY
    short_names: ClassVar[list[str]] = ["zipol"]
    description: ClassVar[str] = "Thresholds, escalation and remediation limits for the Zentinels it selects."
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Selected",
            "type": "integer",
            "jsonPath": ".status.selectedZentinels",
            "description": "Zentinels this policy governs",
        },
        {"name": "Accepted", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Accepted")].status'},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.remediation.defaultMode"},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelIncidentPolicySpec = Field(default_factory=ZentinelIncidentPolicySpec)
    status: ZentinelIncidentPolicyStatus = Field(default_factory=ZentinelIncidentPolicyStatus)


class ZentinelClusterIncidentPolicy(KModel, CRDInfo):
    """The same policy for Zentinels in every namespace, like cert-manager's ClusterIssuer.

    Its receivers' Secrets live in the operator's namespace. A namespaced policy that selects a Zentinel
    shadows every cluster policy (:func:`zentinel_operator.core.selection.choose_governing`)."""

    kind: ClassVar[str] = names.KIND_CLUSTER_POLICY
    plural: ClassVar[str] = names.CLUSTER_POLICIES
    singular: ClassVar[str] = names.SINGULAR_CLUSTER_POLICY
    short_names: ClassVar[list[str]] = ["zcip"]
    scope: ClassVar[str] = "Cluster"
    description: ClassVar[str] = (
        "Thresholds, escalation and remediation limits for the Zentinels it selects in every namespace, "
        "where no namespaced policy selects them; receivers' Secrets are in the operator's namespace."
    )
    printer_columns: ClassVar[list[dict[str, Any]]] = ZentinelIncidentPolicy.printer_columns

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelIncidentPolicySpec = Field(default_factory=ZentinelIncidentPolicySpec)
    status: ZentinelIncidentPolicyStatus = Field(default_factory=ZentinelIncidentPolicyStatus)
