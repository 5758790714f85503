"""Silences (``ZentinelSilence``) as pure rules: when one is active, which incidents it holds, what it holds.

* :func:`state`: ``Pending`` before ``startsAt`` (default: creation), ``Active`` until ``endsAt``, then
  ``Expired``. Worked out from the spec and the clock every time, so the pass never waits for the
  silence's own status to catch up.
* :func:`matches`: every matcher given must match (Zentinel name, category, current severity).
* :func:`record_silences`: an open incident's ``status.silencedBy`` follows the active silences that
  match it, with a ``Silenced`` / ``Unsilenced`` timeline entry for each one that starts or stops
  holding it. A resolved incident keeps the list it had at resolution.
* :func:`held`: the dispatcher holds pages (``trigger``, ``escalate``) of an incident with a non-empty
  ``silencedBy``; acknowledge and resolve notices wait behind a held page to the same receiver, so a
  receiver paged before the silence still hears that it was resolved, and one never paged hears nothing.
  When the silence stops holding an open incident, what is owed goes out (as Alertmanager does).
* :func:`remediation_hold`: with ``silenceRemediation``, why the planner starts nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..models.common import ConditionStatus
from ..models.incident import TimelineEntry, ZentinelIncident, ZentinelIncidentStatus
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.silence import SilenceMatchers, SilenceState, ZentinelSilence, ZentinelSilenceStatus
from .conditions import READY, set_condition
from .lifecycle import add_timeline, is_open
from .notify_payloads import ESCALATE, TRIGGER

SILENCED = "Silenced"  # timeline entry types
UNSILENCED = "Unsilenced"
# What a silence holds: the pages. Acknowledge and resolve notices follow the page they answer.
HELD_EVENTS = frozenset({TRIGGER, ESCALATE})


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime) -> str:
    return _utc(value).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def starts_at(silence: ZentinelSilence) -> dt.datetime | None:
    """``spec.startsAt``, else the silence's creation; None for an object not yet created."""
    start = silence.spec.starts_at or silence.metadata.creation_timestamp
    return _utc(start) if start else None


def state(silence: ZentinelSilence, now: dt.datetime) -> SilenceState:
    start = starts_at(silence) or now
    if now < start:
        return SilenceState.PENDING
    if now < _utc(silence.spec.ends_at):
        return SilenceState.ACTIVE
    return SilenceState.EXPIRED


def matches(matchers: SilenceMatchers, incident: ZentinelIncident) -> bool:
    """Every matcher given matches the incident (its Zentinel, category and current severity)."""
    if matchers.zentinel is not None and matchers.zentinel != incident.spec.zentinel_ref.name:
        return False
    if matchers.categories and incident.spec.category not in matchers.categories:
        return False
    return not matchers.severities or incident.status.severity in matchers.severities


def holding(incident: ZentinelIncident, silences: Sequence[ZentinelSilence], now: dt.datetime) -> list[ZentinelSilence]:
    """The active silences of the incident's namespace that match it, by name."""
    ns = incident.metadata.namespace
    found = [
        s
        for s in silences
        if s.metadata.namespace == ns and state(s, now) == SilenceState.ACTIVE and matches(s.spec.matchers, incident)
    ]
    return sorted(found, key=lambda s: s.metadata.name)


def _scope(silence: ZentinelSilence) -> str:
    return "pages and remediation held" if silence.spec.silence_remediation else "pages held"


def _why_not(name: str, incident: ZentinelIncident, by_name: dict[str, ZentinelSilence], now: dt.datetime) -> str:
    silence = by_name.get(name)
    if silence is None:
        return "it was deleted"
    current = state(silence, now)
    if current == SilenceState.EXPIRED:
        return f"it ended at {_iso(silence.spec.ends_at)}"
    if current == SilenceState.PENDING:
        start = starts_at(silence)
        return f"it starts later ({_iso(start)})" if start else "it has not started"
    severity = incident.status.severity.value if incident.status.severity else "no severity"
    return f"it no longer matches ({incident.spec.category.value}, {severity})"


def record_silences(
    incident: ZentinelIncident,
    silences: Sequence[ZentinelSilence],
    *,
    now: dt.datetime,
    policy: ZentinelIncidentPolicySpec,
) -> ZentinelIncidentStatus:
    """The incident's status with ``silencedBy`` following the silences holding it now (open incidents only),
    and a timeline entry for each silence that started or stopped holding it. Unchanged when nothing changed."""
    st = incident.status
    if not is_open(st):
        return st
    now_holding = holding(incident, silences, now)
    names = [s.metadata.name for s in now_holding]
    if names == st.silenced_by:
        return st
    out = st.model_copy(deep=True)
    before = set(st.silenced_by)
    by_name = {s.metadata.name: s for s in silences if s.metadata.namespace == incident.metadata.namespace}
    for name in st.silenced_by:
        if name not in names:
            why = _why_not(name, incident, by_name, now)
            add_timeline(out, policy, now, UNSILENCED, f"{name} no longer holds it: {why}")
    for s in now_holding:
        if s.metadata.name not in before:
            message = (
                f"Silenced by {s.metadata.name} until {_iso(s.spec.ends_at)} ({_scope(s)}): "
                f"{s.spec.comment} ({s.spec.created_by})"
            )
            add_timeline(out, policy, now, SILENCED, message)
    out.silenced_by = names
    return out


def held(incident: ZentinelIncident) -> bool:
    """Its pages are held: a silence holds it (or held it when it resolved)."""
    return bool(incident.status.silenced_by)


def unsilenced_at(status: ZentinelIncidentStatus) -> dt.datetime | None:
    """When the last silence stopped holding it (the latest ``Unsilenced`` entry), while none holds it now.

    Pages held through a silence are as fresh as this moment: the dispatcher's age limit counts from it."""
    if status.silenced_by:
        return None
    entries: list[TimelineEntry] = [e for e in status.timeline if e.type == UNSILENCED]
    return entries[-1].time if entries else None


def remediation_hold(incident: ZentinelIncident, silences: Sequence[ZentinelSilence], now: dt.datetime) -> str | None:
    """Why no new remediation starts on this incident (a silence with ``silenceRemediation`` holds it), or None."""
    names = set(incident.status.silenced_by)
    for s in holding(incident, silences, now):
        if s.metadata.name in names and s.spec.silence_remediation:
            return f"silenced by {s.metadata.name} until {_iso(s.spec.ends_at)} (silenceRemediation)"
    return None


def silence_status(silence: ZentinelSilence, now: dt.datetime) -> ZentinelSilenceStatus:
    """The silence's status now: its state, its effective start and a ``Ready`` condition (True once read)."""
    current = state(silence, now)
    start = starts_at(silence)
    generation = silence.metadata.generation
    out = silence.status.model_copy(deep=True)
    out.observed_generation = generation
    out.state = current
    out.starts_at = start
    ends = _iso(silence.spec.ends_at)
    message = {
        SilenceState.PENDING: f"starts holding matching incidents at {_iso(start) if start else '-'}",
        SilenceState.ACTIVE: f"holds matching incidents until {ends}",
        SilenceState.EXPIRED: f"ended at {ends}",
    }[current]
    out.conditions = set_condition(
        out.conditions, READY, ConditionStatus.TRUE, current.value, message, now=now, generation=generation
    )
    return out
