"""Notification bodies and the deliveries an incident calls for, as pure functions (no I/O).

Two halves:

* **Payload builders** turn a :class:`ZentinelIncident` plus an event (``trigger``, ``escalate``,
  ``acknowledge``, ``resolve``) and an escalation level into the exact JSON a receiver takes:
  Slack incoming webhooks (``text`` + ``blocks``), PagerDuty Events API v2, the generic webhook
  (schema below) and Alertmanager's ``POST /api/v2/alerts``. Secrets (the PagerDuty routing key)
  are passed in by the caller at send time and never kept.
* :func:`expected_deliveries` derives, from the incident's status alone (level, not edge), every
  delivery that should have happened so far, each with a stable idempotency key. The dispatcher
  sends those not yet marked ``Delivered`` in ``status.deliveries``, so a restarted operator sends
  exactly what is missing and repeats nothing.

Generic webhook schema, version ``"1"`` (every key is always present; unknown values are ``null``;
new keys may be added within a version, none removed or retyped)::

    {
      "version": "1",
      "event": "trigger" | "escalate" | "acknowledge" | "resolve",
      "level": "primary" | "secondary" | "management",
      "key": str,                      # idempotency key: the same delivery always carries the same key
      "incident": {
        "name": str, "namespace": str, "zentinel": str, "category": str, "source": str,
        "fingerprint": str, "severity": "SEV1".."SEV4" | null, "state": str | null,
        "summary": str | null, "severityReason": str | null, "count": int, "flapCount": int,
        "detectedAt": RFC 3339 | null, "lastSeenAt": RFC 3339 | null,
        "acknowledgedAt": RFC 3339 | null, "acknowledgedBy": str | null,
        "resolvedAt": RFC 3339 | null, "resolvedBy": str | null,
        "escalationLevel": str | null, "kubectl": str
      },
      "escalation": {"level": str, "at": RFC 3339, "reason": str} | null   # set for "escalate"
    }

The HTTP request also carries ``Idempotency-Key: <key>`` and ``X-Zentinel-Event: <event>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from ..models.common import ConditionStatus, Severity
from ..models.incident import EscalationRecord, IncidentState, ZentinelIncident, ZentinelIncidentStatus
from ..models.policy import ReceiverType, ZentinelIncidentPolicySpec
from ..names import API_VERSION, INCIDENTS, KIND_INCIDENT
from .conditions import get_condition

WEBHOOK_SCHEMA_VERSION = "1"
EVENTS = ("trigger", "escalate", "acknowledge", "resolve")
TRIGGER, ESCALATE, ACKNOWLEDGE, RESOLVE = EVENTS
LEVEL_PRIMARY = "primary"
ALERTNAME = KIND_INCIDENT
DEDUP_PREFIX = "zentinel/"
SLACK_ACK_ACTION = "zentinel.acknowledge"  # action_id of the Slack buttons (core.acks reads them back)
SLACK_RESOLVE_ACTION = "zentinel.resolve"
CLIENT = "Zentinel incident operator"

PAGERDUTY_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
PAGERDUTY_ACTION = {TRIGGER: "trigger", ESCALATE: "trigger", ACKNOWLEDGE: "acknowledge", RESOLVE: "resolve"}
_EVENT_RANK = {TRIGGER: 0, ESCALATE: 1, ACKNOWLEDGE: 2, RESOLVE: 3}
_SLACK_ICON = {
    TRIGGER: ":rotating_light:",
    ESCALATE: ":arrow_double_up:",
    ACKNOWLEDGE: ":eyes:",
    RESOLVE: ":white_check_mark:",
}
_DETECTED_RE = re.compile(r"^(SEV[1-4])\b")
_CHANGED_RE = re.compile(r"^(?:SEV[1-4]|none) -> (SEV[1-4])\b")


# ------------------------------------------------------------------------------ helpers
def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _stamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def dedup_key(incident: ZentinelIncident) -> str:
    """One PagerDuty dedup key per incident, shared by trigger, acknowledge and resolve."""
    return f"{DEDUP_PREFIX}{incident.metadata.namespace}/{incident.metadata.name}"


def parse_dedup_key(key: str) -> tuple[str, str] | None:
    """``(namespace, name)`` from a key :func:`dedup_key` made (PagerDuty's ``incident_key``), else None."""
    if not key.startswith(DEDUP_PREFIX):
        return None
    namespace, sep, name = key[len(DEDUP_PREFIX) :].partition("/")
    return (namespace, name) if sep and namespace and name and "/" not in name else None


def incident_value(incident: ZentinelIncident) -> str:
    """``<namespace>/<name>``: what a Slack button carries to name its incident."""
    return f"{incident.metadata.namespace}/{incident.metadata.name}"


def kubectl_hint(incident: ZentinelIncident) -> str:
    return f"kubectl get zinc {incident.metadata.name} -n {incident.metadata.namespace}"


def object_url(incident: ZentinelIncident, base: str = "https://kubernetes.default.svc") -> str:
    """The incident's API path, used where a receiver wants a link back (Alertmanager's generatorURL)."""
    ns, name = incident.metadata.namespace, incident.metadata.name
    return f"{base.rstrip('/')}/apis/{API_VERSION}/namespaces/{ns}/{INCIDENTS}/{name}"


def _state(incident: ZentinelIncident) -> str | None:
    st = incident.status
    if st.state is not None:
        return st.state.value
    return IncidentState.RESOLVED.value if st.resolved_at else None


def _escalation_for(incident: ZentinelIncident, level: str) -> EscalationRecord | None:
    records = [e for e in incident.status.escalations if e.level == level]
    return records[-1] if records else None


def _severity_text(incident: ZentinelIncident) -> str:
    return incident.status.severity.value if incident.status.severity else "SEV?"


def title(incident: ZentinelIncident) -> str:
    """``[SEV1] ProcessCrash on shop/edge (inc-20261127-001)``."""
    ns = incident.metadata.namespace
    return (
        f"[{_severity_text(incident)}] {incident.spec.category.value} on {ns}/{incident.spec.zentinel_ref.name} "
        f"({incident.metadata.name})"
    )


def headline(incident: ZentinelIncident, event: str) -> str:
    """The title with what happened: ``... triggered``, ``... escalated``, ..."""
    verb = {TRIGGER: "triggered", ESCALATE: "escalated", ACKNOWLEDGE: "acknowledged", RESOLVE: "resolved"}
    return f"{title(incident)} {verb.get(event, event)}"


def detail(incident: ZentinelIncident, event: str, level: str) -> str:
    """One sentence saying why this notification is sent."""
    st = incident.status
    if event == ESCALATE:
        record = _escalation_for(incident, level)
        reason = record.reason if record else "response target missed"
        return f"Escalated to {level}: {reason}"
    if event == ACKNOWLEDGE:
        return f"Acknowledged by {st.acknowledged_by or 'someone'}"
    if event == RESOLVE:
        cond = get_condition(st.conditions, "Resolved")
        message = cond.message if cond and cond.message else "resolved"
        return f"Resolved by {st.resolved_by or 'operator'}: {message}"
    return st.summary or "incident detected"


def incident_view(incident: ZentinelIncident) -> dict[str, Any]:
    """The ``incident`` object of the generic webhook schema (version 1)."""
    st = incident.status
    return {
        "name": incident.metadata.name,
        "namespace": incident.metadata.namespace,
        "zentinel": incident.spec.zentinel_ref.name,
        "category": incident.spec.category.value,
        "source": incident.spec.source,
        "fingerprint": incident.spec.fingerprint,
        "severity": st.severity.value if st.severity else None,
        "state": _state(incident),
        "summary": st.summary,
        "severityReason": st.severity_reason,
        "count": st.count,
        "flapCount": st.flap_count,
        "detectedAt": _iso(st.detected_at),
        "lastSeenAt": _iso(st.last_seen_at),
        "acknowledgedAt": _iso(st.acknowledged_at),
        "acknowledgedBy": st.acknowledged_by,
        "resolvedAt": _iso(st.resolved_at),
        "resolvedBy": st.resolved_by,
        "escalationLevel": st.escalation_level,
        "kubectl": kubectl_hint(incident),
    }


# ------------------------------------------------------------------------------- Slack
def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_actions(incident: ZentinelIncident, event: str) -> dict[str, Any] | None:
    """Acknowledge and Resolve buttons for the incident (an ``actions`` block), or None when none applies.

    Each button's ``value`` is ``<namespace>/<name>``; Slack posts a press to the app's interactivity
    URL, the operator's ``/api/v1/slack/interactions`` (see :mod:`.acks`). A resolved incident has no
    buttons, an acknowledged one only Resolve.
    """
    st = incident.status
    if event == RESOLVE or st.resolved_at is not None:
        return None
    value = incident_value(incident)
    buttons: list[dict[str, Any]] = []
    if st.acknowledged_at is None and event != ACKNOWLEDGE:
        buttons.append(
            {
                "type": "button",
                "action_id": SLACK_ACK_ACTION,
                "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
                "style": "primary",
                "value": value,
            }
        )
    buttons.append(
        {
            "type": "button",
            "action_id": SLACK_RESOLVE_ACTION,
            "text": {"type": "plain_text", "text": "Resolve", "emoji": True},
            "style": "danger",
            "value": value,
            "confirm": {
                "title": {"type": "plain_text", "text": "Resolve the incident?"},
                "text": {"type": "plain_text", "text": _cut(f"{incident.metadata.name} will be closed by hand.", 300)},
                "confirm": {"type": "plain_text", "text": "Resolve"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            },
        }
    )
    return {"type": "actions", "block_id": f"zentinel-incident-{incident.metadata.name}"[:255], "elements": buttons}


def slack_payload(incident: ZentinelIncident, event: str, level: str, *, buttons: bool = False) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (fallback and notifications) plus Block Kit blocks.

    With ``buttons`` (the operator has a Slack signing secret, so it can take the presses), the message
    carries :func:`slack_actions` before its context line."""
    st = incident.status
    ns, name = incident.metadata.namespace, incident.metadata.name
    title = headline(incident, event)
    why = detail(incident, event, level)
    summary = st.summary or "-"
    icon = _SLACK_ICON.get(event, "")
    fields = [
        ("Severity", _severity_text(incident)),
        ("Category", incident.spec.category.value),
        ("Zentinel", f"{ns}/{incident.spec.zentinel_ref.name}"),
        ("State", _state(incident) or "-"),
        ("Level", level),
        ("Acknowledged by", st.acknowledged_by or "-"),
    ]
    text = _cut(f"{icon} {title}: {why}", 3000)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{icon} {title}", 150), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_slack_escape(why), 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_slack_escape(value)}", 2000)} for label, value in fields
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*Summary*\n{_slack_escape(summary)}", 3000)}},
    ]
    actions = slack_actions(incident, event) if buttons else None
    if actions is not None:
        blocks.append(actions)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`kubectl get zinc {name} -n {ns}`"}]})
    return {"text": _slack_escape(text), "blocks": blocks}


# --------------------------------------------------------------------------- PagerDuty
def pagerduty_payload(incident: ZentinelIncident, event: str, level: str, *, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event; ``routing_key`` comes from the receiver's Secret at send time."""
    action = PAGERDUTY_ACTION[event]
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(incident),
    }
    if action != "trigger":
        return body  # acknowledge and resolve need only the dedup key
    st = incident.status
    ns, zen = incident.metadata.namespace, incident.spec.zentinel_ref.name
    summary = f"{headline(incident, event)}: {detail(incident, event, level)}"
    body["payload"] = {
        "summary": _cut(summary, 1024),
        "source": f"{ns}/{zen}",
        "severity": PAGERDUTY_SEVERITY[st.effective_severity],
        "timestamp": _iso(st.detected_at),
        "component": zen,
        "group": ns,
        "class": incident.spec.category.value,
        "custom_details": {
            "incident": incident.metadata.name,
            "namespace": ns,
            "zentinel": zen,
            "category": incident.spec.category.value,
            "severity": st.severity.value if st.severity else None,
            "state": _state(incident),
            "summary": st.summary,
            "level": level,
            "event": event,
            "count": st.count,
            "evidence": [e for f in st.findings for e in f.evidence][:20],
            "kubectl": kubectl_hint(incident),
        },
    }
    if body["payload"]["timestamp"] is None:
        del body["payload"]["timestamp"]
    body["client"] = CLIENT
    return body


# ----------------------------------------------------------------------------- webhook
def webhook_payload(incident: ZentinelIncident, event: str, level: str, *, key: str) -> dict[str, Any]:
    """The generic JSON webhook body (schema version 1, see the module documentation)."""
    escalation = None
    if event == ESCALATE:
        record = _escalation_for(incident, level)
        if record is not None:
            escalation = {"level": record.level, "at": _iso(record.at), "reason": record.reason}
    return {
        "version": WEBHOOK_SCHEMA_VERSION,
        "event": event,
        "level": level,
        "key": key,
        "incident": incident_view(incident),
        "escalation": escalation,
    }


# ------------------------------------------------------------------------ Alertmanager
def severity_history(incident: ZentinelIncident | ZentinelIncidentStatus) -> list[tuple[dt.datetime, Severity]]:
    """(time, severity) at detection and at every change, read from the timeline, oldest first."""
    status = incident.status if isinstance(incident, ZentinelIncident) else incident
    history: list[tuple[dt.datetime, Severity]] = []
    for entry in status.timeline:
        m = None
        if entry.type == "Detected":
            m = _DETECTED_RE.match(entry.message)
        elif entry.type in ("SeverityRaised", "SeverityLowered", "SeverityOverridden"):
            m = _CHANGED_RE.match(entry.message)
        if m:
            history.append((entry.time, Severity(m.group(1))))
    return history


def severity_at(incident: ZentinelIncident | ZentinelIncidentStatus, when: dt.datetime) -> Severity:
    current = (incident.status if isinstance(incident, ZentinelIncident) else incident).effective_severity
    history = severity_history(incident)
    before = [sev for t, sev in history if t <= when]
    if before:
        return before[-1]
    return history[0][1] if history else current


def alertmanager_payload(
    incident: ZentinelIncident,
    event: str,
    level: str,
    *,
    now: dt.datetime,
    generator_url: str | None = None,
) -> list[dict[str, Any]]:
    """Alertmanager API v2 ``POST /api/v2/alerts`` body (a list of postable alerts).

    Labels identify the alert: ``alertname=ZentinelIncident``, namespace, zentinel, incident, category
    and ``severity`` (Alertmanager's usual words: critical, error, warning, info). A firing alert has
    no ``endsAt`` (Alertmanager's ``resolve_timeout`` applies; the dispatcher re-posts open incidents
    well within it); a resolved incident sets ``endsAt``. When the severity changed, the alerts under
    the earlier severity labels are posted as resolved in the same request, so only one stays firing.
    """
    st = incident.status
    ns, zen = incident.metadata.namespace, incident.spec.zentinel_ref.name
    current = st.effective_severity
    resolved = event == RESOLVE or st.resolved_at is not None
    reopened = [t.time for t in st.timeline if t.type == "Reopened"]
    starts = reopened[-1] if reopened else st.detected_at
    annotations = {
        "summary": _cut(f"{title(incident)}: {st.summary or '-'}", 1024),
        "description": _cut(
            f"{detail(incident, event, level)}. State: {_state(incident) or '-'}. {kubectl_hint(incident)}",
            4096,
        ),
        "zentinel_severity": current.value,
        "kubectl": kubectl_hint(incident),
    }
    if st.acknowledged_by:
        annotations["acknowledged_by"] = st.acknowledged_by

    def alert(severity: Severity, ends: dt.datetime | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "labels": {
                "alertname": ALERTNAME,
                "namespace": ns,
                "zentinel": zen,
                "incident": incident.metadata.name,
                "category": incident.spec.category.value,
                "severity": PAGERDUTY_SEVERITY[severity],
            },
            "annotations": dict(annotations),
            "generatorURL": generator_url or object_url(incident),
        }
        if starts is not None:
            item["startsAt"] = _iso(starts)
        if ends is not None:
            item["endsAt"] = _iso(ends)
        return item

    alerts = [alert(current, (st.resolved_at or now) if resolved else None)]
    earlier = {PAGERDUTY_SEVERITY[s]: s for _, s in severity_history(incident)}
    earlier.pop(PAGERDUTY_SEVERITY[current], None)
    for severity in sorted(earlier.values(), key=lambda s: s.rank):
        alerts.append(alert(severity, st.resolved_at or now))
    return alerts


def build_payload(
    receiver_type: ReceiverType,
    incident: ZentinelIncident,
    event: str,
    level: str,
    *,
    key: str,
    now: dt.datetime,
    routing_key: str | None = None,
    slack_buttons: bool = False,
) -> Any:
    """The body for one receiver type (``slack_buttons``: see :func:`slack_payload`)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    if receiver_type == ReceiverType.SLACK:
        return slack_payload(incident, event, level, buttons=slack_buttons)
    if receiver_type == ReceiverType.PAGERDUTY:
        if not routing_key:
            raise ValueError("a PagerDuty event needs a routing key")
        return pagerduty_payload(incident, event, level, routing_key=routing_key)
    if receiver_type == ReceiverType.WEBHOOK:
        return webhook_payload(incident, event, level, key=key)
    if receiver_type == ReceiverType.ALERTMANAGER:
        return alertmanager_payload(incident, event, level, now=now)
    raise ValueError(f"unknown receiver type {receiver_type!r}")


# ------------------------------------------------------------------ expected deliveries
@dataclasses.dataclass(frozen=True)
class PlannedDelivery:
    """One message to one receiver, owed because of one fact in the incident's status."""

    key: str  # stable: namespace/incident/event/level/receiver/<time of the fact>
    receiver: str
    event: str
    level: str
    at: dt.datetime  # when the fact happened (detection, escalation, acknowledgement, ...)
    order: int = 0  # position among the incident's deliveries to this receiver, oldest first


@dataclasses.dataclass(frozen=True)
class _Fact:
    at: dt.datetime
    event: str
    level: str
    receivers: tuple[str, ...]


def delivery_key(incident: ZentinelIncident, event: str, level: str, receiver: str, at: dt.datetime) -> str:
    return f"{incident.metadata.namespace}/{incident.metadata.name}/{event}/{level}/{receiver}/{_stamp(at)}"


def _pages(st: ZentinelIncidentStatus, policy: ZentinelIncidentPolicySpec) -> list[_Fact]:
    """The pages (triggers and escalations) the status calls for, oldest first."""
    facts: list[_Fact] = []
    # Pages: detection (primary) and every escalation, as the lifecycle recorded them.
    for esc in st.escalations:
        event = TRIGGER if esc.level == LEVEL_PRIMARY else ESCALATE
        facts.append(_Fact(esc.at, event, esc.level, tuple(esc.receivers)))
    # Re-triggers: the severity was raised on new evidence, or a resolved incident reopened.
    for entry in st.timeline:
        if entry.type == "SeverityRaised":
            m = _CHANGED_RE.match(entry.message)
            severity = Severity(m.group(1)) if m else st.effective_severity
        elif entry.type == "Reopened":
            severity = severity_at(st, entry.time)
        else:
            continue
        primary = tuple(policy.escalation.for_severity(severity).primary)
        facts.append(_Fact(entry.time, TRIGGER, LEVEL_PRIMARY, primary))
    return sorted(facts, key=lambda f: (f.at, _EVENT_RANK[f.event]))


def paged_receivers(status: ZentinelIncidentStatus, policy: ZentinelIncidentPolicySpec) -> set[str]:
    """Every receiver a page (trigger or escalation) of this incident is owed to, under ``policy``."""
    return {r for fact in _pages(status, policy) for r in fact.receivers}


def _facts(incident: ZentinelIncident, policy: ZentinelIncidentPolicySpec) -> list[_Fact]:
    st = incident.status
    paged = _pages(st, policy)

    def notified_by(when: dt.datetime) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for f in paged if f.at <= when for r in f.receivers))

    notices: list[_Fact] = []
    ack_at = st.acknowledged_at
    if ack_at is None:
        cond = get_condition(st.conditions, "Acknowledged")
        if cond is not None and cond.status == ConditionStatus.TRUE:
            ack_at = cond.last_transition_time
    if ack_at is not None:
        notices.append(_Fact(ack_at, ACKNOWLEDGE, LEVEL_PRIMARY, notified_by(ack_at)))
    resolutions = {e.time for e in st.timeline if e.type == "Resolved"}
    if st.resolved_at is not None:
        resolutions.add(st.resolved_at)
    for when in sorted(resolutions):
        notices.append(_Fact(when, RESOLVE, LEVEL_PRIMARY, notified_by(when)))
    return sorted(paged + notices, key=lambda f: (f.at, _EVENT_RANK[f.event]))


def expected_deliveries(incident: ZentinelIncident, policy: ZentinelIncidentPolicySpec) -> list[PlannedDelivery]:
    """Every delivery the incident's status calls for so far, oldest fact first.

    * detection: a ``trigger`` to the receivers of the primary ``status.escalations`` entry;
    * each later escalation entry: an ``escalate`` to its receivers;
    * ``SeverityRaised`` and ``Reopened`` timeline entries: a ``trigger`` to the primary of that severity;
    * acknowledgement (``acknowledgedAt`` / ``Acknowledged=True``): an ``acknowledge`` to every receiver
      paged before it;
    * each resolution: a ``resolve`` to every receiver paged before it.

    Receivers not defined in the policy are left out (the admission webhook refuses such policies).
    Acknowledge and resolve notices carry the level at which the receiver was first paged. Keys
    depend only on the fact (its time) and the receiver, so recomputing them gives the same keys.
    """
    known = {r.name for r in policy.receivers}
    out: list[PlannedDelivery] = []
    first_level: dict[str, str] = {}
    per_receiver: dict[str, int] = {}
    seen: set[str] = set()
    for fact in _facts(incident, policy):
        for receiver in dict.fromkeys(fact.receivers):
            if receiver not in known:
                continue
            level = fact.level
            if fact.event in (TRIGGER, ESCALATE):
                first_level.setdefault(receiver, fact.level)
            else:
                level = first_level.get(receiver, fact.level)
            key = delivery_key(incident, fact.event, level, receiver, fact.at)
            if key in seen:
                continue
            seen.add(key)
            order = per_receiver.get(receiver, 0)
            per_receiver[receiver] = order + 1
            out.append(PlannedDelivery(key, receiver, fact.event, level, fact.at, order))
    return out
