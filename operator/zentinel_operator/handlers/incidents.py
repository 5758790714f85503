"""Record findings as ``ZentinelIncident`` objects: create, update, reopen, resolve.

Synchronous (the official client): the Zentinel pass runs :func:`record` in a worker thread. The
lifecycle decisions are :mod:`zentinel_operator.core.lifecycle`'s; this module reads the current
objects through the :class:`~zentinel_operator.api.IncidentApi` it is given, calls it, and writes only
what changed. Incidents carry labels for their Zentinel, category and fingerprint, so one list call per
pass finds them all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from .. import k8s
from ..api import IncidentApi
from ..core import lifecycle as lc
from ..core.patches import merge_patch
from ..core.silences import record_silences
from ..core.snapshot import Finding
from ..models import ZentinelIncident
from ..models.common import Category, Severity, Source
from ..models.incident import ZentinelIncidentStatus
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.silence import ZentinelSilence
from ..names import (
    ANN_RESOLUTION_NOTE,
    ANN_RESOLVED_BY,
    API_VERSION,
    KIND_INCIDENT,
    LABEL_CATEGORY,
    LABEL_FINGERPRINT,
    LABEL_ZENTINEL,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Recorded:
    """What one pass did: the incidents still open, and effects for the caller to carry out."""

    open: list[ZentinelIncident] = dataclasses.field(default_factory=list)
    all: list[ZentinelIncident] = dataclasses.field(default_factory=list)  # open and resolved, as written
    notifications: list[tuple[str, lc.Notification]] = dataclasses.field(default_factory=list)
    metrics: list[lc.MetricNote] = dataclasses.field(default_factory=list)
    created: list[str] = dataclasses.field(default_factory=list)
    # The incident each finding of this pass landed on, by category (the alert intake reports it).
    carriers: dict[Category, str] = dataclasses.field(default_factory=dict)
    # The incidents as listed, when the pass found nothing and none was open: nothing was written, and a later
    # quiet pass may use this list instead of listing again while no watch event says an incident changed.
    quiet_list: list[Pair] | None = None


def _day(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


def create_incident(
    namespace: str,
    *,
    api: IncidentApi,
    zentinel: str,
    category: Category,
    now: dt.datetime,
    source: Source = Source.OPERATOR,
    lock: threading.Lock | None = None,
) -> str:
    """Create the incident object under the next free ``inc-YYYYMMDD-NNN`` name; return the name.

    Creators that share ``lock`` (the passes of one operator: ``PassContext.create_lock``) take turns, so they
    do not race for the same number; creators in other processes are kept apart by the API (create by name,
    409 on a taken name, retry with the next number)."""
    fp = lc.fingerprint(zentinel, category)
    with lock or threading.Lock():
        existing = [i["metadata"]["name"] for i in api.list_incidents(namespace)]
        name = lc.next_incident_name(_day(now), existing)
        for _ in range(1000):
            body = {
                "apiVersion": API_VERSION,
                "kind": KIND_INCIDENT,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {
                        LABEL_ZENTINEL: zentinel,
                        LABEL_CATEGORY: category.value,
                        LABEL_FINGERPRINT: lc.fingerprint_label(fp),
                        "app.kubernetes.io/managed-by": "zentinel-incident-operator",
                    },
                },
                "spec": {
                    "zentinelRef": {"name": zentinel},
                    "category": category.value,
                    "fingerprint": fp,
                    "source": source.value,
                },
            }
            try:
                api.create_incident(namespace, body)
            except Exception as e:
                if k8s.is_conflict(e):
                    name = lc.name_after(name)
                    continue
                raise
            return name
    raise RuntimeError(f"no free incident name left for {_day(now)} in {namespace}")


def _parse(obj: Mapping[str, Any]) -> ZentinelIncident | None:
    try:
        return ZentinelIncident.model_validate(dict(obj))
    except ValidationError as e:
        log.warning("ignoring malformed incident %s: %s", obj.get("metadata", {}).get("name"), e)
        return None


def write_status(api: IncidentApi, obj: Mapping[str, Any], new: ZentinelIncidentStatus) -> bool:
    """Patch what differs from the stored status (not from a parsed copy, whose defaults hide absent fields)."""
    patch = merge_patch(dict(obj.get("status") or {}), new.dump())
    if not patch:
        return False
    meta = obj["metadata"]
    api.patch_incident_status(meta["namespace"], meta["name"], patch)
    return True


def _post_events(
    api: IncidentApi,
    obj: Mapping[str, Any],
    zentinel_obj: Mapping[str, Any] | None,
    events: Iterable[lc.EventNote],
    now: dt.datetime,
) -> None:
    for ev in events:
        involved = {"apiVersion": API_VERSION, "kind": KIND_INCIDENT, "metadata": obj["metadata"]}
        try:
            api.post_event(involved, reason=ev.reason, message=ev.message, type_=ev.type, now=now)
            if zentinel_obj is not None and ev.reason in {
                "IncidentDetected",
                "IncidentResolved",
                "IncidentEscalated",
                "IncidentReopened",
            }:
                name = obj["metadata"]["name"]
                api.post_event(
                    dict(zentinel_obj), reason=ev.reason, message=f"{name}: {ev.message}", type_=ev.type, now=now
                )
        except Exception as e:  # events are best effort; the incident status is the record
            log.warning("could not post event %s: %s", ev.reason, e)


def _consume_manual_resolution(api: IncidentApi, obj: Mapping[str, Any]) -> None:
    """A reopened incident must not be resolved again by the request that resolved it last time."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    ann = meta.get("annotations") or {}
    patch: dict[str, Any] = {}
    if spec.get("resolvedBy") or spec.get("resolutionNote"):
        patch["spec"] = {"resolvedBy": None, "resolutionNote": None}
    stale = {k: None for k in (ANN_RESOLVED_BY, ANN_RESOLUTION_NOTE) if k in ann}
    if stale:
        patch["metadata"] = {"annotations": stale}
    if patch:
        api.patch_incident(meta["namespace"], meta["name"], patch)


@dataclasses.dataclass
class _Pass:
    """What every incident of one :func:`record` pass is advanced with, and what the pass did so far."""

    api: IncidentApi
    policy: ZentinelIncidentPolicySpec
    now: dt.datetime
    zentinel_obj: Mapping[str, Any] | None
    remediating: set[Category]
    silences: Sequence[ZentinelSilence]
    result: Recorded


def _advance(
    p: _Pass, obj: Mapping[str, Any], model: ZentinelIncident, *, finding: Finding | None, signal_known: bool
) -> ZentinelIncident:
    api, policy, now, result = p.api, p.policy, p.now, p.result
    category = model.spec.category
    generation = (obj.get("metadata") or {}).get("generation")
    if model.status.detected_at is None:
        # Created, but the operator stopped before it wrote the status: finish the job now.
        first = finding or Finding(
            category=category, severity=Severity.SEV4, summary="signal gone before the incident was fully recorded"
        )
        outcome = lc.new_incident(first, now=now, policy=policy, generation=generation)
    else:
        outcome = lc.step(
            model.status,
            category=category,
            finding=finding,
            human=lc.human_input(obj),
            now=now,
            policy=policy,
            generation=generation,
            remediating=category in p.remediating,
            signal_known=signal_known,
        )
    if any(e.reason == "IncidentReopened" for e in outcome.events):
        # Before the status that reopens: were the operator stopped between the two writes the other way round, the
        # next pass would find an open incident with the old request and resolve it again. This way round it finds
        # the incident still resolved with no request, and reopens it once.
        _consume_manual_resolution(api, obj)
    # Silences are recorded with the step's status, in the same write: a page the step calls for is held from
    # the start (the dispatcher reads silencedBy from the incident it is given).
    status = record_silences(model.model_copy(update={"status": outcome.status}), p.silences, now=now, policy=policy)
    write_status(api, obj, status)
    _post_events(api, obj, p.zentinel_obj, outcome.events, now)
    name = obj["metadata"]["name"]
    result.notifications += [(name, n) for n in outcome.notifications]
    result.metrics += outcome.metrics
    updated = model.model_copy(update={"status": status})
    if lc.is_open(status):
        result.open.append(updated)
    result.all.append(updated)
    return updated


Pair = tuple[dict[str, Any], ZentinelIncident]


def _listed(api: IncidentApi, namespace: str, zentinel: str) -> list[Pair]:
    """This Zentinel's incidents (malformed ones left out), by name."""
    items = api.list_incidents(namespace, f"{LABEL_ZENTINEL}={zentinel}")
    parsed = [(obj, m) for obj in items if (m := _parse(obj)) is not None]
    parsed.sort(key=lambda pair: pair[0]["metadata"]["name"])
    return parsed


def _carrier(
    parsed: Iterable[Pair], zentinel: str, category: Category, *, policy: ZentinelIncidentPolicySpec, now: dt.datetime
) -> Pair | None:
    """The incident a signal of this category lands on: the open one (the first by name), else the latest resolved
    one still inside the reopen window; None: a new incident is due."""
    same = [(o, m) for o, m in parsed if m.spec.category == category and m.spec.zentinel_ref.name == zentinel]
    open_ones = [(o, m) for o, m in same if lc.is_open(m.status)]
    if open_ones:
        return open_ones[0]
    resolved = sorted(
        ((o, m) for o, m in same if m.status.resolved_at is not None),
        key=lambda pair: pair[1].status.resolved_at or now,
    )
    if resolved and lc.can_reopen(resolved[-1][1].status, now=now, policy=policy):
        return resolved[-1]
    return None


def record(
    *,
    api: IncidentApi,
    namespace: str,
    zentinel: str,
    zentinel_obj: Mapping[str, Any] | None,
    policy: ZentinelIncidentPolicySpec,
    findings: Iterable[Finding],
    observable: set[Category],
    now: dt.datetime,
    remediating: set[Category] | None = None,
    alerts: Any = None,
    silences: Sequence[ZentinelSilence] = (),
    listed: list[Pair] | None = None,
    create_lock: threading.Lock | None = None,
) -> Recorded:
    """One pass for one Zentinel: every finding lands on exactly one incident of its fingerprint; each open
    incident's ``silencedBy`` follows the ``silences`` (of its namespace) that hold it. New incidents are
    created under ``create_lock`` (see :func:`create_incident`).

    ``listed``: a quiet pass's list (``Recorded.quiet_list``), used instead of listing when there are no findings
    and none of it is open, the only case in which nothing is written."""
    result = Recorded()
    p = _Pass(api, policy, now, zentinel_obj, remediating or set(), silences, result)
    findings = list(findings)
    if listed is not None and (findings or any(lc.is_open(m.status) for _, m in listed)):
        listed = None
    parsed = list(listed) if listed is not None else _listed(api, namespace, zentinel)
    if not findings and not any(lc.is_open(m.status) for _, m in parsed):
        result.quiet_list = list(parsed)
    handled: set[str] = set()

    for finding in findings:
        cat = finding.category
        found = _carrier(parsed, zentinel, cat, policy=policy, now=now)
        if found is not None:
            obj, model = found
        else:
            name = create_incident(
                namespace, api=api, zentinel=zentinel, category=cat, now=now, source=finding.source, lock=create_lock
            )
            result.created.append(name)
            obj = api.get_incident(namespace, name) or {}
            model = ZentinelIncident.model_validate(obj)
            parsed.append((obj, model))
        handled.add(obj["metadata"]["name"])
        result.carriers[cat] = obj["metadata"]["name"]
        _advance(p, obj, model, finding=finding, signal_known=True)

    for obj, model in parsed:
        if obj["metadata"]["name"] in handled:
            continue
        if not lc.is_open(model.status):
            result.all.append(model)
            continue
        cat = model.spec.category
        if model.spec.source == Source.OPERATOR:
            known = cat in observable
        else:  # an Alertmanager incident: its signal is what Alertmanager last said (unknown after a restart)
            known = bool(alerts is not None and alerts.known(namespace, zentinel, cat))
        _advance(p, obj, model, finding=None, signal_known=known)
    return result
