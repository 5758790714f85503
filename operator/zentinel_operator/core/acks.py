"""Acknowledging and resolving where people are: PagerDuty webhooks (v3) and Slack buttons, as pure functions.

Three steps, each a function here and none doing I/O:

1. **Verify** the request came from PagerDuty or Slack: :func:`verify_pagerduty` (``X-PagerDuty-Signature:
   v1=<hex HMAC-SHA256(body, secret)>``, several comma-separated signatures while a secret is rotated: one
   match is enough) and :func:`verify_slack` (``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" +
   X-Slack-Request-Timestamp + ":" + body)>``, refused when the timestamp is more than 5 minutes away:
   a replay). Several secrets may be configured (one PagerDuty subscription each, or an old and a new
   one); any of them may match. Comparisons are constant-time.
2. **Map** the payload to an :class:`Act` (which incident, who, acknowledge or resolve), or to
   :class:`Ignored` with the reason: :func:`pagerduty_act` and :func:`slack_act`. PagerDuty names our
   incident by ``data.incident_key``: an incident opened through the Events API v2 carries the
   ``dedup_key`` the operator sent (``zentinel/<namespace>/<name>``, see
   :func:`~.notify_payloads.dedup_key`). Only a person's act counts (``agent.type`` ``user_reference``):
   PagerDuty echoes the operator's own acknowledge and resolve events back with a service as the agent,
   and those must not come back as a person's request. A Slack button carries ``<namespace>/<name>``
   in its ``value`` (:func:`~.notify_payloads.slack_actions`).
3. **Decide** what to ask of the incident: :func:`person_request` is the one rule for a person's
   acknowledgement or resolution, shared with ``zentinelctl ack|resolve``. It returns the spec patch
   (``spec.acknowledgedBy``, or ``spec.resolvedBy`` with ``spec.resolutionNote``) the lifecycle then
   records on its next pass, exactly as if the person had used kubectl, or a :class:`Refusal` saying why
   not (already resolved, already acknowledged, already asked for).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.common import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN
from ..models.incident import RESOLUTION_NOTE_MAX, ZentinelIncidentStatus
from . import notify_payloads as payloads
from .lifecycle import HumanInput

ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"
ACTIONS = (ACKNOWLEDGE, RESOLVE)

PAGERDUTY = "PagerDuty"
SLACK = "Slack"
SLACK_MAX_AGE = 300  # seconds: Slack's advice against replays

PAGERDUTY_EVENTS = {"incident.acknowledged": ACKNOWLEDGE, "incident.resolved": RESOLVE}
SLACK_ACTIONS = {payloads.SLACK_ACK_ACTION: ACKNOWLEDGE, payloads.SLACK_RESOLVE_ACTION: RESOLVE}
BY_MAX = 253  # a person's name as written into spec.acknowledgedBy / spec.resolvedBy

_NAMESPACE = re.compile(DNS_LABEL_PATTERN)
_NAME = re.compile(DNS_SUBDOMAIN_PATTERN)
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class PayloadError(ValueError):
    """A signed payload that is not what PagerDuty or Slack sends; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Act:
    """A person's acknowledgement or resolution of one incident, from one place."""

    namespace: str
    name: str
    action: str  # ACKNOWLEDGE | RESOLVE
    by: str  # as written into the incident: "Alice Smith (PagerDuty)", "alice (Slack)"
    source: str  # PAGERDUTY | SLACK
    note: str | None = None  # the resolution note
    occurred_at: dt.datetime | None = None  # when it happened there (PagerDuty says)


@dataclasses.dataclass(frozen=True)
class Ignored:
    """A verified request that asks nothing of an incident (another event type, not a person, ...)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Request:
    """What to patch into the incident's spec for a person's act."""

    patch: dict[str, Any]
    message: str


@dataclasses.dataclass(frozen=True)
class Refusal:
    reason: str


# ----------------------------------------------------------------------------- secrets
def secrets_from_text(text: str) -> tuple[str, ...]:
    """The secrets in a mounted file: one a line, blank lines and surrounding spaces left out."""
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def _hex_hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()


def _any_matches(given: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    matched = False
    for g in given:
        for e in expected:
            matched |= hmac.compare_digest(g, e)  # no early exit: every pair is compared
    return matched


# ------------------------------------------------------------------------------ verify
def pagerduty_signature(body: bytes, secret: str) -> str:
    """``v1=<hex>``: what PagerDuty puts in ``X-PagerDuty-Signature`` for this body (tests sign with it)."""
    return "v1=" + _hex_hmac(secret, body).decode()


def verify_pagerduty(body: bytes, header: str | None, secrets: Sequence[str]) -> str | None:
    """None when one of the header's ``v1=`` signatures matches the body under one of ``secrets``; else why not."""
    if not secrets:
        return "no PagerDuty webhook secret is configured"
    if not header or not header.strip():
        return "X-PagerDuty-Signature is missing"
    given = [p.strip()[3:].lower().encode() for p in header.split(",") if p.strip().startswith("v1=")]
    if not given:
        return "X-PagerDuty-Signature holds no v1= signature"
    if not _any_matches(given, [_hex_hmac(s, body) for s in secrets]):
        return "X-PagerDuty-Signature does not match the body"
    return None


def slack_signature(body: bytes, timestamp: str, secret: str) -> str:
    """``v0=<hex>``: what Slack puts in ``X-Slack-Signature`` (tests sign with it)."""
    return "v0=" + _hex_hmac(secret, b"v0:" + timestamp.encode() + b":" + body).decode()


def verify_slack(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    max_age: float = SLACK_MAX_AGE,
) -> str | None:
    """None when ``X-Slack-Signature`` matches under one of ``secrets`` and the timestamp is fresh; else why not."""
    if not secrets:
        return "no Slack signing secret is configured"
    if not timestamp or not timestamp.strip().isdigit():
        return "X-Slack-Request-Timestamp is missing or not a number of seconds"
    if abs(now - int(timestamp)) > max_age:
        return f"X-Slack-Request-Timestamp is more than {int(max_age)}s away from now (a replay?)"
    if not signature or not signature.strip().startswith("v0="):
        return "X-Slack-Signature is missing or holds no v0= signature"
    given = [signature.strip()[3:].lower().encode()]
    message = b"v0:" + timestamp.strip().encode() + b":" + body
    if not _any_matches(given, [_hex_hmac(s, message) for s in secrets]):
        return "X-Slack-Signature does not match the body"
    return None


# --------------------------------------------------------------------------------- map
def _text(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise PayloadError(f"{where}: required, a non-empty string")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where}: required, an object")
    return value


def _person(name: str, source: str) -> str:
    name = " ".join(name.split())
    suffix = f" ({source})"
    return name[: BY_MAX - len(suffix)] + suffix


def _time(value: str, where: str) -> dt.datetime:
    m = _RFC3339.match(value.strip())
    if not m:
        raise PayloadError(f"{where}: {value!r} is not an RFC 3339 time")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(m.group(1) + (m.group(2) or "")[:7] + zone)


def incident_ref(value: str) -> tuple[str, str] | None:
    """``(namespace, name)`` from ``<namespace>/<name>``, or None when it is not one."""
    namespace, sep, name = value.partition("/")
    if not sep or not _NAMESPACE.match(namespace) or len(namespace) > 63 or not _NAME.match(name) or len(name) > 253:
        return None
    return namespace, name


def pagerduty_act(data: Any) -> Act | Ignored:
    """A PagerDuty webhook (v3) body as an act on one of our incidents; raise :class:`PayloadError` if malformed."""
    event = _object(_object(data, "the body").get("event"), "event")
    event_type = _text(event.get("event_type"), "event.event_type")
    action = PAGERDUTY_EVENTS.get(event_type or "")
    if action is None:
        return Ignored(f"event type {event_type!r} asks nothing of an incident")
    if event.get("resource_type") != "incident":
        raise PayloadError(f'event.resource_type: expected "incident" for {event_type}')
    incident = _object(event.get("data"), "event.data")
    pd_id = _text(incident.get("id"), "event.data.id")
    key = _text(incident.get("incident_key"), "event.data.incident_key", required=False)
    ref = payloads.parse_dedup_key(key) if key else None
    if ref is None:
        return Ignored(f"PagerDuty incident {pd_id} was not opened by this operator (incident_key {key!r})")
    agent = event.get("agent")
    agent_type = agent.get("type") if isinstance(agent, Mapping) else None
    if agent_type != "user_reference" or not isinstance(agent, Mapping):
        return Ignored(f"{event_type} by {agent_type or 'nobody named'}, not by a person")
    who = agent.get("summary") if isinstance(agent.get("summary"), str) and agent["summary"].strip() else None
    who = who or _text(agent.get("id"), "event.agent.id")
    occurred = _text(event.get("occurred_at"), "event.occurred_at", required=False)
    number = incident.get("number")
    note = None
    if action == RESOLVE:
        note = f"resolved in PagerDuty (incident {'#' + str(number) + ' ' if isinstance(number, int) else ''}{pd_id})"
    return Act(
        namespace=ref[0],
        name=ref[1],
        action=action,
        by=_person(str(who), PAGERDUTY),
        source=PAGERDUTY,
        note=note,
        occurred_at=_time(occurred, "event.occurred_at") if occurred else None,
    )


def slack_act(payload: Any) -> Act | Ignored:
    """A Slack interaction payload (the form field ``payload``, decoded) as an act; raise :class:`PayloadError`."""
    body = _object(payload, "payload")
    kind = body.get("type")
    if kind != "block_actions":
        return Ignored(f"interaction type {kind!r} asks nothing of an incident")
    actions = body.get("actions")
    if not isinstance(actions, list):
        raise PayloadError("payload.actions: required, a list")
    ours = [(i, a) for i, a in enumerate(actions) if isinstance(a, Mapping) and a.get("action_id") in SLACK_ACTIONS]
    if not ours:
        return Ignored("no Zentinel incident button in payload.actions")
    i, pressed = ours[0]
    value = _text(pressed.get("value"), f"payload.actions[{i}].value") or ""
    ref = incident_ref(value)
    if ref is None:
        raise PayloadError(f"payload.actions[{i}].value: expected <namespace>/<incident>, got {value!r}")
    user = _object(body.get("user"), "payload.user")
    who = next((user[k] for k in ("username", "name", "id") if isinstance(user.get(k), str) and user[k].strip()), None)
    if who is None:
        raise PayloadError("payload.user: needs username, name or id")
    action = SLACK_ACTIONS[str(pressed["action_id"])]
    return Act(
        namespace=ref[0],
        name=ref[1],
        action=action,
        by=_person(who, SLACK),
        source=SLACK,
        note="resolved from Slack" if action == RESOLVE else None,
    )


# ------------------------------------------------------------------------------ decide
def _stamp(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def person_request(
    action: str,
    *,
    by: str,
    name: str,
    status: ZentinelIncidentStatus,
    human: HumanInput,
    note: str | None = None,
) -> Request | Refusal:
    """The spec patch for a person acknowledging or resolving incident ``name``, or why there is none.

    An incident already resolved takes neither; one already acknowledged (or with an acknowledgement
    asked for and not yet recorded) takes no second acknowledgement; a resolution already asked for
    is not asked again. ``zentinelctl ack|resolve`` and the PagerDuty and Slack intake share this rule.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if status.resolved_at is not None:
        doing = "acknowledge" if action == ACKNOWLEDGE else "resolve"
        return Refusal(
            f"{name} is already resolved (by {status.resolved_by or '-'} at {_stamp(status.resolved_at)}); "
            f"nothing to {doing}"
        )
    if action == ACKNOWLEDGE:
        if status.acknowledged_at is not None:
            return Refusal(
                f"{name} is already acknowledged by {status.acknowledged_by or '-'} at {_stamp(status.acknowledged_at)}"
            )
        if human.acknowledged_by:
            return Refusal(
                f"{name}: acknowledgement by {human.acknowledged_by} is already requested; the operator records it"
            )
        return Request({"spec": {"acknowledgedBy": by}}, f"{name} acknowledged by {by} (spec.acknowledgedBy)")
    if human.resolved_by:
        return Refusal(f"{name}: resolution by {human.resolved_by} is already requested; the operator records it")
    spec: dict[str, Any] = {"resolvedBy": by}
    if note:
        spec["resolutionNote"] = note[:RESOLUTION_NOTE_MAX]
    return Request({"spec": spec}, f"{name} resolved by {by} (spec.resolvedBy)")


def decide(act: Act, status: ZentinelIncidentStatus, human: HumanInput) -> Request | Refusal:
    """What ``act`` asks of the incident as it is now: :func:`person_request`, after one more check.

    PagerDuty keeps the incident key across a resolve and a new trigger, so an act that happened before
    this incident last reopened belongs to the earlier round (a late or retried delivery) and is refused.
    """
    reopened = [e.time for e in status.timeline if e.type == "Reopened"]
    if act.occurred_at is not None and reopened and act.occurred_at < reopened[-1]:
        return Refusal(
            f"{act.name}: {act.action} in {act.source} at {_stamp(act.occurred_at)} came before the incident "
            f"reopened at {_stamp(reopened[-1])}"
        )
    return person_request(act.action, by=act.by, name=act.name, status=status, human=human, note=act.note)
