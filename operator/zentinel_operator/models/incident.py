"""``ZentinelIncident``: one incident, named like the runbook's IDs (``inc-20261127-001``)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from pydantic import Field

from .. import names
from .common import Category, Condition, CRDInfo, KModel, Meta, ObjectName, Severity, Source
from .zentinel import IssuerType


class IncidentState(enum.StrEnum):
    DETECTED = "Detected"
    ACKNOWLEDGED = "Acknowledged"
    MITIGATING = "Mitigating"
    MONITORING = "Monitoring"
    RESOLVED = "Resolved"


class ZentinelRef(KModel):
    name: ObjectName = Field(description="The Zentinel this incident is about (same namespace).")


# Longest texts people write on an incident; the schema and the CLI's early check both use them.
RESOLUTION_NOTE_MAX = 4096
DECISION_REASON_MAX = 1024


class Decision(enum.StrEnum):
    """``Approval.decision``: carry the pending remediation out, or do not."""

    APPROVE = "Approve"
    REJECT = "Reject"


class Approval(KModel):
    action_id: str = Field(min_length=1, description="`id` of a pending remediation in status.")
    by: str = Field(min_length=1, description="Who decided.")
    decision: Decision = Field(
        default=Decision.APPROVE,
        description=(
            "`Approve` runs the remediation (its guardrails are checked again first); `Reject` records it "
            "`Refused` with `rejectedBy`, and the ladder goes on to its next rung."
        ),
    )
    reason: str | None = Field(default=None, max_length=DECISION_REASON_MAX, description="Why (shown on the record).")


class ZentinelIncidentSpec(KModel):
    """Identity of the incident (written by the operator) and what people ask of it."""

    model_config = KModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.severityOverride) || has(self.severityOverrideReason)",
                    "message": "spec.severityOverrideReason is required when spec.severityOverride is set",
                },
                {
                    "rule": "self.fingerprint == oldSelf.fingerprint && self.category == oldSelf.category",
                    "message": "spec.fingerprint and spec.category are immutable",
                },
            ]
        }
    }

    zentinel_ref: ZentinelRef = Field(description="The Zentinel in trouble.")
    category: Category = Field(description="What kind of trouble, from the runbook's triage tree.")
    fingerprint: str = Field(min_length=1, description="Zentinel + category; one open incident per fingerprint.")
    source: str = Field(
        default=Source.OPERATOR.value, description="`operator` (own signals) or `alertmanager` (alert intake)."
    )
    acknowledged_by: str | None = Field(
        default=None, description="Set by a person (kubectl patch or `zentinelctl ack`) to acknowledge."
    )
    resolved_by: str | None = Field(default=None, description="Set by a person to resolve by hand.")
    resolution_note: str | None = Field(
        default=None, max_length=RESOLUTION_NOTE_MAX, description="Why it was resolved by hand."
    )
    approvals: list[Approval] = Field(
        default_factory=list, description="Decisions (approve or reject) on pending remediations."
    )
    severity_override: Severity | None = Field(
        default=None, description="Set by a person to change the severity; needs `severityOverrideReason`."
    )
    severity_override_reason: str | None = Field(
        default=None, min_length=3, max_length=1024, description="Why the severity was changed by hand."
    )


class TimelineEntry(KModel):
    time: dt.datetime = Field(description="When it happened.")
    type: str = Field(description="`Detected`, `SeverityChanged`, `Acknowledged`, `Escalated`, `Action`, ...")
    message: str = Field(description="What happened, for a person.")


class FindingRecord(KModel):
    category: Category = Field(description="Category of the finding.")
    severity: Severity = Field(description="Severity of the finding.")
    summary: str = Field(description="One line.")
    evidence: list[str] = Field(default_factory=list, description="What led there, as a person would read it.")


class EscalationRecord(KModel):
    level: str = Field(description="`primary`, `secondary` or `management`.")
    at: dt.datetime = Field(description="When.")
    reason: str = Field(description="Why this level was reached.")
    receivers: list[str] = Field(default_factory=list, description="Receivers notified.")


class DeliveryState(enum.StrEnum):
    """``DeliveryRecord.state``. The field stays a string (the CRD is unchanged); write ``.value``."""

    DELIVERED = "Delivered"
    PENDING = "Pending"
    FAILED = "Failed"


class RecordState(enum.StrEnum):
    """``RemediationRecord.state``. The field stays a string (the CRD is unchanged); write ``.value``:
    a record copied with ``model_copy`` keeps what it is given, and YAML cannot represent an enum."""

    PLANNED = "Planned"
    PENDING_APPROVAL = "PendingApproval"
    DRY_RUN = "DryRun"
    RUNNING = "Running"
    VERIFYING = "Verifying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    REFUSED = "Refused"
    REVERTED = "Reverted"
    WAITING = "Waiting"


class DeliveryRecord(KModel):
    receiver: str = Field(description="Receiver name.")
    event: str = Field(description="`trigger`, `escalate`, `acknowledge`, `resolve`.")
    key: str = Field(description="Idempotency key of this delivery.")
    state: str = Field(description="`Delivered`, `Pending`, `Failed`.")
    attempts: int = Field(default=0, ge=0, description="Attempts so far.")
    last_error: str | None = Field(default=None, description="Last error, without any secret.")
    at: dt.datetime | None = Field(default=None, description="Last attempt.")


class ConfigChange(KModel):
    """The config revisions a config action moves between (read back when verifying and after a restart)."""

    from_revision: str | None = Field(default=None, description="The revision in the ConfigMap before the change.")
    to_revision: str = Field(description="The revision the change puts there (a rollback: the last known good).")


class CertificateChange(KModel):
    """One certificate a rotation re-issued."""

    name: str = Field(description="The TLS entry (`spec.tls[].name` of the Zentinel).")
    issuer: IssuerType = Field(description="Who issued it: `CertManager` re-issues on request, the others here.")
    fingerprint: str | None = Field(
        default=None,
        description="SHA-256 of the certificate installed; absent while cert-manager re-issues it.",
    )


class RemediationRecord(KModel):
    id: str = Field(description="Stable id: action, target and incident; the idempotency key.")
    action: str = Field(description="Action name.")
    mode: str = Field(description="Mode it ran under.")
    state: str = Field(
        description="`Planned`, `PendingApproval`, `DryRun`, `Running`, `Verifying`, `Succeeded`, `Failed`, "
        "`Refused`, `Reverted`."
    )
    step: int = Field(default=0, ge=0, description="Rung of the category's ladder.")
    target: str | None = Field(default=None, description="What it acts on.")
    reason: str | None = Field(default=None, description="Why it runs, or why it was refused.")
    diff: str | None = Field(default=None, description="The change, as a unified diff or a short description.")
    before: str | None = Field(default=None, description="State before.")
    after: str | None = Field(default=None, description="State after.")
    started_at: dt.datetime | None = Field(default=None, description="When it started.")
    finished_at: dt.datetime | None = Field(default=None, description="When it ended.")
    revert_at: dt.datetime | None = Field(default=None, description="When a temporary change undoes itself.")
    undo: dict[str, Any] | None = Field(
        default=None, description="What it takes to undo a temporary config edit (anchored on the KDL, not offsets)."
    )
    verified_at: dt.datetime | None = Field(default=None, description="When its effect was seen in place.")
    failed_in: str | None = Field(
        default=None,
        description="Where a `Failed` step failed: `Action` (it could not be carried out, e.g. an API error), "
        "`Verification` (it was carried out and the signal did not recover) or `Revert` (undoing it failed). "
        "Only a `Verification` failure of a real action escalates past the primary before the response target.",
    )
    config: ConfigChange | None = Field(default=None, description="Config actions: the revisions it moves between.")
    deleted_pods: list[str] | None = Field(default=None, description="A restart of stuck pods: the pods it deleted.")
    certificates: list[CertificateChange] | None = Field(
        default=None, description="A certificate rotation: each certificate it re-issued."
    )
    approved_by: str | None = Field(default=None, description="Who approved it (NeedsApproval).")
    rejected_by: str | None = Field(
        default=None, description="Who rejected it (NeedsApproval); the record is `Refused`."
    )


class EvidenceRef(KModel):
    name: str = Field(description="ConfigMap holding the chunk.")
    phase: str = Field(description="`detection` or `resolution`.")
    items: list[str] = Field(default_factory=list, description="What is inside.")
    bytes: int = Field(default=0, ge=0, description="Size.")


class ZentinelIncidentStatus(KModel):
    observed_generation: int | None = Field(default=None, description="Last generation the operator handled.")
    state: IncidentState | None = Field(default=None, description="Where the incident is in its lifecycle.")
    severity: Severity | None = Field(default=None, description="Current severity.")
    summary: str | None = Field(default=None, description="One line for a person.")
    count: int = Field(default=0, ge=0, description="How many times the signal was seen (deduplicated).")
    flap_count: int = Field(default=0, ge=0, description="Times it was reopened after resolving.")
    detected_at: dt.datetime | None = Field(default=None, description="First detection.")
    last_seen_at: dt.datetime | None = Field(default=None, description="Latest sighting of the signal.")
    healthy_since: dt.datetime | None = Field(default=None, description="Signals healthy since then.")
    acknowledged_at: dt.datetime | None = Field(default=None, description="When it was acknowledged.")
    acknowledged_by: str | None = Field(default=None, description="Who acknowledged it.")
    mitigated_at: dt.datetime | None = Field(default=None, description="When a remediation worked.")
    resolved_at: dt.datetime | None = Field(default=None, description="When it resolved.")
    resolved_by: str | None = Field(default=None, description="`operator` or the person who resolved it.")
    response_due_at: dt.datetime | None = Field(default=None, description="Acknowledge by then or it escalates.")
    escalation_level: str | None = Field(default=None, description="Highest level reached.")
    silenced_by: list[str] = Field(
        default_factory=list,
        description="The active `ZentinelSilence`s holding this incident's pages (and, with `silenceRemediation`, "
        "its remediation); the timeline records each one starting (`Silenced`) and stopping (`Unsilenced`). Kept "
        "as it was at resolution: pages held then are never sent.",
    )
    candidate_severity: Severity | None = Field(
        default=None, description="A lower severity the signals show; applied once it holds for `resolveAfter`."
    )
    candidate_since: dt.datetime | None = Field(default=None, description="Since when the lower severity holds.")
    severity_reason: str | None = Field(default=None, description="Why the severity is what it is now.")
    findings: list[FindingRecord] = Field(default_factory=list, description="Latest findings behind it.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Acknowledged`, `Mitigated`, `Resolved`, `Escalated`.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    timeline: list[TimelineEntry] = Field(default_factory=list, description="Bounded history, oldest first.")
    escalations: list[EscalationRecord] = Field(default_factory=list, description="Escalations so far.")
    deliveries: list[DeliveryRecord] = Field(default_factory=list, description="Notification deliveries.")
    remediations: list[RemediationRecord] = Field(default_factory=list, description="Remediation actions.")
    evidence: list[EvidenceRef] = Field(default_factory=list, description="Evidence bundle chunks.")
    postmortem: str | None = Field(default=None, description="ConfigMap holding the post-mortem draft.")
    postmortem_due: dt.datetime | None = Field(default=None, description="SEV1/SEV2: 48 h after resolution.")

    @property
    def effective_severity(self) -> Severity:
        """The severity, counted as SEV4 (the lowest) while none is set."""
        return self.severity or Severity.SEV4


class ZentinelIncident(KModel, CRDInfo):
    kind: ClassVar[str] = names.KIND_INCIDENT
    plural: ClassVar[str] = names.INCIDENTS
    singular: ClassVar[str] = names.SINGULAR_INCIDENT
    short_names: ClassVar[list[str]] = ["zinc"]
    description: ClassVar[str] = "One incident on a Zentinel, from detection to post-mortem."
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Severity", "type": "string", "jsonPath": ".status.severity"},
        {"name": "Category", "type": "string", "jsonPath": ".spec.category"},
        {"name": "Zentinel", "type": "string", "jsonPath": ".spec.zentinelRef.name"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Acked-By", "type": "string", "jsonPath": ".status.acknowledgedBy"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Count", "type": "integer", "jsonPath": ".status.count", "priority": 1},
        {"name": "Escalated", "type": "string", "jsonPath": ".status.escalationLevel", "priority": 1},
        {"name": "Silenced-By", "type": "string", "jsonPath": ".status.silencedBy", "priority": 1},
        {"name": "Last-Seen", "type": "date", "jsonPath": ".status.lastSeenAt", "priority": 1},
        {"name": "Summary", "type": "string", "jsonPath": ".status.summary", "priority": 1},
    ]

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelIncidentSpec
    status: ZentinelIncidentStatus = Field(default_factory=ZentinelIncidentStatus)
