"""One pass over one ``Zentinel``: observe -> assess -> record -> (respond, escalate) -> status.

Level-based: every pass decides from the current objects, so a restarted operator or a missed
event changes nothing. The pure decisions live in ``core``; this module gathers and writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import kopf
from pydantic import ValidationError

from .. import k8s
from .. import operator_metrics as metrics
from ..core import lifecycle as lc
from ..core.durations import parse_duration
from ..core.patches import merge_patch
from ..core.revisions import HistoryUpdate, snapshot_name, update_history
from ..core.selection import choose_policy
from ..core.triage import triage
from ..core.zstatus import build_status, observable_categories
from ..models import Zentinel
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import ZentinelStatus
from ..remediation import executor
from ..signals.gather import GatherSettings, PassMemory, gather
from ..signals.prometheus import PrometheusSource
from . import evidence, incidents, remediation

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


def parse(body: Mapping[str, Any]) -> Zentinel:
    try:
        return Zentinel.model_validate(dict(body))
    except ValidationError as e:
        raise kopf.PermanentError(f"invalid Zentinel spec: {e}") from e


def policy_for(zen: Zentinel, policies: Sequence[Mapping[str, Any]]) -> tuple[str | None, ZentinelIncidentPolicySpec]:
    chosen = choose_policy(zen.metadata.labels, policies)
    if chosen is None:
        return None, ZentinelIncidentPolicySpec()
    return str(chosen["metadata"]["name"]), ZentinelIncidentPolicySpec.model_validate(chosen.get("spec") or {})


async def reconcile(
    body: Mapping[str, Any], *, ctx: PassContext, policies: Sequence[Mapping[str, Any]], now: dt.datetime | None = None
) -> None:
    started = time.monotonic()
    zen = parse(body)
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    _, policy = policy_for(zen, policies)
    memory = ctx.memory(zen.metadata.namespace, zen.metadata.name)
    snapshot = await gather(zen, memory, now=now, settings=ctx.gather, session=ctx.http(), prometheus=ctx.prometheus)
    findings = triage(snapshot, policy.thresholds)
    if ctx.alerts is not None:
        findings = ctx.alerts.merge(zen.metadata.namespace, zen.metadata.name, findings)
    observable = observable_categories(snapshot)
    recorded = await asyncio.to_thread(
        incidents.record,
        namespace=zen.metadata.namespace,
        zentinel=zen.metadata.name,
        zentinel_obj=dict(body),
        policy=policy,
        findings=findings,
        observable=observable,
        now=now,
        alerts=ctx.alerts,
    )
    metrics.observe(recorded.metrics)

    # Config history: keep a copy of every revision; prove revisions good before trusting them.
    cfg = snapshot.config
    hist = update_history(
        zen.status.revisions,
        zentinel=zen.metadata.name,
        current=cfg.revision if cfg and cfg.present else None,
        current_valid=bool(cfg and cfg.present and cfg.valid),
        snapshot=snapshot,
        open_incidents=len(recorded.open),
        now=now,
        proven_good_after=policy.remediation.proven_good_after,
        limit=policy.remediation.config_history_limit,
        last_known_good=zen.status.last_known_good_revision,
    )
    await asyncio.to_thread(_keep_revisions, zen, hist, memory.config_text)
    zen_now = zen.model_copy(
        update={
            "status": zen.status.model_copy(
                update={"revisions": hist.revisions, "last_known_good_revision": hist.last_known_good}
            )
        }
    )

    # Respond: plan, guard, act, verify, undo temporary changes.
    window = parse_duration(policy.remediation.budget.window)
    cluster_recent = sum(1 for stamps in ctx.cluster_actions.values() for t in stamps if now - t < window)
    responded = await asyncio.to_thread(
        remediation.respond,
        zen=zen_now,
        deployment=memory.deployment,
        snapshot=snapshot,
        findings=findings,
        policy=policy,
        incidents=recorded.all,
        now=now,
        cluster_recent=cluster_recent,
        config_changed_by_operator=memory.config_written_by_operator,
    )
    ctx.cluster_actions[(zen.metadata.namespace, zen.metadata.name)] = [e.at for e in responded.ledger]
    memory.want_live_config = responded.awaiting_live
    # Keep the evidence (detection, resolution), draft post-mortems, enforce retention.
    await asyncio.to_thread(evidence.collect, zen=zen_now, recorded=recorded, memory=memory, policy=policy, now=now)
    open_now = [i for i in responded.incidents if lc.is_open(i.status)]
    for name, note in [*recorded.notifications, *responded.notifications]:
        log.info("%s: %s to %s (%s)", name, note.event, ",".join(note.receivers) or "nobody", note.level)
    if ctx.notifier is not None:
        # Level-based: open and resolved incidents, so a restarted operator sends what it still owes.
        for incident in responded.incidents:
            await ctx.notifier.sync(zen.metadata.namespace, incident, policy)
    status = build_status(zen_now.status, snapshot, findings, open_now, now=now, generation=zen.metadata.generation)
    status.current_revision = cfg.revision if cfg and cfg.present else None
    status.remediations = responded.ledger[-20:]
    await write_status(zen.metadata.namespace, zen.metadata.name, dict(body.get("status") or {}), status)
    metrics.PASS_SECONDS.observe(time.monotonic() - started)


def _keep_revisions(zen: Zentinel, hist: HistoryUpdate, text: str | None) -> None:
    if hist.new_snapshot and text is not None:
        executor.save_revision(zen, hist.new_snapshot, text)
    for revision in hist.pruned:
        k8s.delete_configmap(zen.metadata.namespace, snapshot_name(zen.metadata.name, revision))


async def write_status(namespace: str, name: str, stored: dict[str, Any], new: ZentinelStatus) -> bool:
    """Patch ``.status`` only when something other than the observation time changed."""
    patch = merge_patch(stored, new.dump())
    summary = patch.get("summary")
    if isinstance(summary, dict) and set(summary) == {"observedAt"}:
        patch.pop("summary")
    if not patch:
        return False
    await asyncio.to_thread(k8s.patch_custom_status, "zentinels", namespace, name, patch)
    return True
