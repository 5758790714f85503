"""One pass over one ``Zentinel``: observe -> assess -> record -> (respond, escalate) -> status.

Level-based: every pass decides from the current objects, so a restarted operator or a missed
event changes nothing. The pure decisions live in ``core``; this module gathers and writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import kopf
from pydantic import ValidationError

from .. import k8s
from .. import operator_metrics as metrics
from ..api import Api, KubeApi
from ..core import lifecycle as lc
from ..core.durations import parse_duration
from ..core.lifecycle import EventNote
from ..core.observation import Observation
from ..core.patches import merge_patch
from ..core.revisions import HistoryUpdate, snapshot_name, update_history
from ..core.selection import policy_for, secrets_namespace
from ..core.triage import triage
from ..core.zstatus import StageFailure, build_status, observable_categories, pass_condition, ready_condition
from ..models import Zentinel
from ..models.zentinel import ZentinelStatus
from ..names import API_VERSION, KIND_ZENTINEL
from ..remediation import executor
from ..signals.gather import GatherSettings, PassMemory, complete_for_evidence, gather
from ..signals.prometheus import PrometheusSource
from . import evidence, incidents, remediation
from . import silences as silence_handlers

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PassContext:
    """What passes share: settings, per-Zentinel memory and the notifier."""

    gather: GatherSettings
    memories: dict[tuple[str, str], PassMemory] = dataclasses.field(default_factory=dict)
    cluster_actions: dict[tuple[str, str], list[dt.datetime]] = dataclasses.field(default_factory=dict)
    notifier: Any = None  # notify.dispatch.Dispatcher once started
    alerts: Any = None  # notify.intake.AlertState: what Alertmanager says is firing
    prometheus: PrometheusSource | None = None  # for Zentinels with metricsSource: Prometheus
    session: aiohttp.ClientSession | None = None  # shared by every scrape: its connector bounds concurrency
    operator_namespace: str = "default"  # where the receivers' Secrets of cluster policies are
    # The resourceVersion of each Zentinel as the last pass left it (read, or written by its status patch): a
    # watched copy with that version is current, and the pass need not read the Zentinel again.
    versions: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    api: Api = dataclasses.field(default_factory=KubeApi)  # what incidents, remediation and evidence go through
    drafts: evidence.Drafts = dataclasses.field(default_factory=evidence.Drafts)  # post-mortem drafts in place
    create_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)  # passes create in turn

    def http(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            connector = aiohttp.TCPConnector(limit=self.gather.scrape_concurrency, force_close=False)
            self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.prometheus is not None:
            await self.prometheus.close()

    def memory(self, namespace: str, name: str) -> PassMemory:
        return self.memories.setdefault((namespace, name), PassMemory())

    def changed(self, namespace: str, name: str) -> None:
        """A watch event concerns this Zentinel: its passes read again what they kept (``PassMemory.changed``)."""
        memory = self.memories.get((namespace, name))
        if memory is not None:
            memory.changed()

    def forget(self, namespace: str, name: str) -> None:
        """The Zentinel is gone: drop what passes kept about it."""
        self.memories.pop((namespace, name), None)
        self.versions.pop((namespace, name), None)


@dataclasses.dataclass(frozen=True)
class PassResult:
    """What one pass did: the stages that failed, and what it recorded (None: the Incidents stage failed)."""

    failures: list[StageFailure]
    recorded: incidents.Recorded | None = None


def parse(body: Mapping[str, Any]) -> Zentinel:
    try:
        return Zentinel.model_validate(dict(body))
    except ValidationError as e:
        raise kopf.PermanentError(f"invalid Zentinel spec: {e}") from e


async def pass_on_stored(
    namespace: str,
    name: str,
    *,
    ctx: PassContext,
    policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]] = (),
    silences: Sequence[Mapping[str, Any]] = (),
    full: bool,
    watched: Mapping[str, Any] | None = None,
) -> PassResult | None:
    """One pass over the Zentinel as stored now (None: it is gone).

    Passes follow each other closely (a timer's every ``scanInterval``, event passes in between), and the copy
    a watch delivered may not show the status the previous pass wrote yet: its config history, its
    remediation ledger. A pass on such a copy decides from a past that is no longer true (a rollback's
    revisions missing, a last known good gone back). So the ``watched`` copy is used only when it is the
    version the last pass left (``PassContext.versions``); otherwise the Zentinel is read. Should that read
    fail, the ``watched`` copy is used, else the error is raised."""
    key = (namespace, name)
    fell_back = False
    if watched is not None and ctx.versions.get(key) == _version(watched):
        body: Mapping[str, Any] | None = watched
    else:
        try:
            body = await asyncio.to_thread(ctx.api.get_zentinel, namespace, name)
        except Exception as e:
            if watched is None:
                raise
            log.warning("%s/%s: pass on the watched copy, the read failed: %s", namespace, name, k8s.describe_error(e))
            body = dict(watched)
            fell_back = True
    if body is None:
        ctx.forget(namespace, name)
        return None
    result = await reconcile(
        body, ctx=ctx, policies=policies, cluster_policies=cluster_policies, silences=silences, full=full
    )
    if fell_back:  # a copy of unknown age: the next pass reads the Zentinel again
        ctx.versions.pop(key, None)
    return result


def _version(body: Mapping[str, Any]) -> str | None:
    version = (body.get("metadata") or {}).get("resourceVersion")
    return str(version) if version is not None else None


async def reconcile(
    body: Mapping[str, Any],
    *,
    ctx: PassContext,
    policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]] = (),
    silences: Sequence[Mapping[str, Any]] = (),
    now: dt.datetime | None = None,
    full: bool = True,
) -> PassResult:
    """One pass. Each stage is contained: one that fails is reported (a ``PassDegraded`` condition and a
    Warning Event on the Zentinel) and the others still run, on what could be observed. Returns the failures
    and what was recorded.
    ``silences`` are the namespace's ``ZentinelSilence`` objects: they hold pages and, if asked, remediation.
    ``policies`` are the namespace's policies, ``cluster_policies`` every cluster policy.

    A ``full`` pass (the timer's) reads everything; an event pass reads the objects afresh and reuses what the
    last full pass read from the pods' endpoints (``signals.gather.Endpoints``)."""
    started = time.monotonic()
    zen = parse(body)
    ns, name = zen.metadata.namespace, zen.metadata.name
    # Rates are over the time between two scrapes, read from the clock when each scrape starts (a pass's `now` is
    # when it began, to the second); a `now` given (a test's) times the scrapes too.
    clock = None if now is not None else _wall_clock
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    governing, policy = policy_for(zen, policies, cluster_policies)
    secrets_ns = secrets_namespace(governing, ns, ctx.operator_namespace)
    held_by = silence_handlers.parse_all(silences)
    memory = ctx.memory(ns, name)
    failures: list[StageFailure] = []

    def failed(stage: str, e: BaseException, what: str = "") -> None:
        text = f"{what}: {k8s.describe_error(e)}" if what else k8s.describe_error(e)
        failures.append(StageFailure(stage, text))
        log.warning("%s/%s: pass stage %s failed: %s", ns, name, stage, text)

    # Observe, once: every later stage works from this observation. Without the workload there is none: the
    # signals are unknown this pass (never healthy), but incidents still get their escalation timers and
    # people's input, and notifications still go out.
    gaps: list[str] = []
    observation: Observation | None = None
    try:
        observation = await gather(
            zen,
            memory,
            now=now,
            settings=ctx.gather,
            session=ctx.http(),
            prometheus=ctx.prometheus,
            failures=gaps,
            log_lines=policy.evidence.log_lines if policy.evidence.enabled else 0,
            full=full,
            clock=clock,
        )
    except Exception as e:
        failed("Gather", e, "workload")
    failures += [StageFailure("Gather", g) for g in gaps]
    snapshot = observation.snapshot if observation is not None else None
    findings = triage(snapshot, policy.thresholds) if snapshot is not None else []
    if ctx.alerts is not None:
        findings = ctx.alerts.merge(ns, name, findings)
    observable = observable_categories(snapshot) if snapshot is not None else set()
    recorded: incidents.Recorded | None = None
    changes = memory.changes  # before the incidents are listed: a change from now on makes the list out of date
    try:
        recorded = await asyncio.to_thread(
            incidents.record,
            api=ctx.api,
            namespace=ns,
            zentinel=name,
            zentinel_obj=dict(body),
            policy=policy,
            findings=findings,
            observable=observable,
            now=now,
            alerts=ctx.alerts,
            silences=held_by,
            listed=_quiet_incidents(memory, now, ctx.gather.reads_resync),
            create_lock=ctx.create_lock,
        )
        memory.incidents = (changes, now, recorded.quiet_list) if recorded.quiet_list is not None else None
        metrics.observe(recorded.metrics)
    except Exception as e:
        failed("Incidents", e)

    # Config history: keep a copy of every revision; prove revisions good before trusting them.
    zen_now = zen
    cfg = snapshot.config if snapshot is not None else None
    if observation is not None and snapshot is not None and recorded is not None:
        hist = update_history(
            zen.status.revisions,
            zentinel=name,
            current=cfg.revision if cfg and cfg.present else None,
            current_valid=bool(cfg and cfg.present and cfg.valid),
            snapshot=snapshot,
            open_incidents=len(recorded.open),
            now=now,
            proven_good_after=policy.remediation.proven_good_after,
            limit=policy.remediation.config_history_limit,
            last_known_good=zen.status.last_known_good_revision,
        )
        try:
            await asyncio.to_thread(_keep_revisions, ctx.api, zen, hist, observation.config_text)
            zen_now = zen.model_copy(
                update={
                    "status": zen.status.model_copy(
                        update={"revisions": hist.revisions, "last_known_good_revision": hist.last_known_good}
                    )
                }
            )
        except Exception as e:  # the history stays as it was; the next pass tries again
            failed("Revisions", e)

    # Respond: plan, guard, act, verify, undo temporary changes (contained per incident inside).
    # Should the stage fail: the incidents as recorded, and the ledger their records make (budgets keep counting).
    before = list(recorded.all) if recorded else []
    responded = remediation.Responded(incidents=before, ledger=remediation.ledger_of(before))
    if observation is not None and recorded is not None:
        window = parse_duration(policy.remediation.budget.window)
        cluster_recent = sum(1 for stamps in ctx.cluster_actions.values() for t in stamps if now - t < window)
        try:
            responded = await asyncio.to_thread(
                remediation.respond,
                api=ctx.api,
                zen=zen_now,
                observation=observation,
                findings=findings,
                policy=policy,
                incidents=recorded.all,
                now=now,
                cluster_recent=cluster_recent,
                silences=held_by,
            )
            ctx.cluster_actions[(ns, name)] = [e.at for e in responded.ledger]
            memory.want_live_config = responded.awaiting_live
        except Exception as e:
            failed("Remediation", e)
        failures += [StageFailure("Remediation", f) for f in responded.failures]

    if recorded is not None:
        # Keep the evidence (detection, resolution), draft post-mortems, enforce retention. A bundle is made from
        # the observation, completed first with what only a bundle holds (each read once, on the shared session).
        try:
            kept = observation
            if kept is not None and await asyncio.to_thread(
                evidence.wanted, api=ctx.api, zen=zen_now, recorded=recorded, policy=policy, now=now
            ):
                kept = await complete_for_evidence(
                    zen_now, kept, log_lines=policy.evidence.log_lines, settings=ctx.gather, session=ctx.http()
                )
            gaps = await asyncio.to_thread(
                evidence.collect,
                api=ctx.api,
                drafts=ctx.drafts,
                zen=zen_now,
                recorded=recorded,
                observation=kept,
                policy=policy,
                now=now,
            )
            failures += [StageFailure("Evidence", g) for g in gaps]
        except Exception as e:
            failed("Evidence", e)
        for note_name, note in [*recorded.notifications, *responded.notifications]:
            log.info("%s: %s to %s (%s)", note_name, note.event, ",".join(note.receivers) or "nobody", note.level)
        if ctx.notifier is not None:
            # Level-based: open and resolved incidents, so a restarted operator sends what it still owes.
            for incident in responded.incidents:
                try:
                    await ctx.notifier.sync(ns, incident, policy, secrets_namespace=secrets_ns)
                except Exception as e:
                    failed("Notifications", e, incident.metadata.name)

    if snapshot is not None and recorded is not None:
        open_now = [i for i in responded.incidents if lc.is_open(i.status)]
        status = build_status(zen_now.status, snapshot, findings, open_now, now=now, generation=zen.metadata.generation)
        status.current_revision = cfg.revision if cfg and cfg.present else None
        status.remediations = responded.ledger[-20:]
    else:  # what was known stays; only the condition says this pass could not see or record
        status = zen_now.status.model_copy(deep=True)
    status.policy = governing.status if governing is not None else None
    status.conditions, event = pass_condition(status.conditions, failures, now=now, generation=zen.metadata.generation)
    status.conditions = ready_condition(status.conditions, now=now, generation=zen.metadata.generation)
    try:
        written = await write_status(ctx.api, ns, name, dict(body.get("status") or {}), status)
        version = _version(written) if written is not None else _version(body)
        if version is not None:
            ctx.versions[(ns, name)] = version
    except Exception as e:
        ctx.versions.pop((ns, name), None)
        failed("Status", e)
        # Not in the status, then, but in an Event: against the condition as computed, what fails now differs.
        _, event = pass_condition(status.conditions, failures, now=now, generation=zen.metadata.generation)
    if event is not None:
        await asyncio.to_thread(_post_event, ctx.api, body, event, now)
    if failures:
        metrics.PASS_ERRORS.inc()
    metrics.PASSES.labels(trigger="timer" if full else "event").inc()
    metrics.PASS_SECONDS.observe(time.monotonic() - started)
    return PassResult(failures, recorded)


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _post_event(api: Api, body: Mapping[str, Any], event: EventNote, now: dt.datetime) -> None:
    meta = body.get("metadata") or {}
    involved = {
        "apiVersion": body.get("apiVersion") or API_VERSION,
        "kind": KIND_ZENTINEL,
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
    }
    try:
        api.post_event(involved, reason=event.reason, message=event.message, type_=event.type, now=now)
    except Exception as e:  # events are best effort; the condition is the record
        log.warning("could not post event %s: %s", event.reason, k8s.describe_error(e))


def _quiet_incidents(memory: PassMemory, now: dt.datetime, resync: float) -> list[incidents.Pair] | None:
    """A quiet pass's incident list, while no watch event has concerned this Zentinel since it was listed and the
    resync period has not run out (see ``signals.gather.ApiReads``); None: list again."""
    if resync <= 0 or memory.incidents is None:
        return None
    changes, listed_at, listed = memory.incidents
    if changes != memory.changes or (now - listed_at).total_seconds() >= resync:
        return None
    return list(listed)


def _keep_revisions(api: Api, zen: Zentinel, hist: HistoryUpdate, text: str | None) -> None:
    if hist.new_snapshot and text is not None:
        executor.save_revision(api, zen, hist.new_snapshot, text)
    for revision in hist.pruned:
        api.delete_configmap(zen.metadata.namespace, snapshot_name(zen.metadata.name, revision))


async def write_status(
    api: Api, namespace: str, name: str, stored: dict[str, Any], new: ZentinelStatus
) -> dict[str, Any] | None:
    """Patch ``.status`` only when something other than the observation time changed; returns the Zentinel as
    written (None: nothing to write)."""
    patch = merge_patch(stored, new.dump())
    summary = patch.get("summary")
    if isinstance(summary, dict) and set(summary) == {"observedAt"}:
        patch.pop("summary")
    if not patch:
        return None
    written: dict[str, Any] = await asyncio.to_thread(api.patch_zentinel_status, namespace, name, patch)
    return written
