"""Keep the evidence and draft the post-mortem: the I/O half of the runbook's "Post-Incident".

One entry point, :func:`collect`, runs in the Zentinel pass (in a worker thread) after incidents are
recorded and remediation ran; :func:`wanted` tells the pass beforehand whether a bundle will be collected,
so that it completes the pass's :class:`~zentinel_operator.core.observation.Observation` first
(:func:`zentinel_operator.signals.gather.complete_for_evidence`). For each incident of the Zentinel it

- collects a **detection** bundle for an open incident that has none, and a **resolution** bundle for a
  resolved one that has none (until its retention ends) from the pass's observation: pod logs (current and
  previous container), each pod's ``/metrics``, ``/admin/upstreams`` and one ``/admin/config``, the pods,
  the Deployment, the events, the config and its revision. Nothing is read here that the observation holds
  (no second pod list, log read or scrape). Assembly, redaction, caps and chunking are
  :mod:`zentinel_operator.core.evidence`'s; this module writes;
- stores each bundle as immutable ConfigMaps owned by the incident (create-or-409) and lists them in
  ``status.evidence`` (a merge patch of that field only). A phase found in the status, or complete
  under its labels, is never collected again; an incomplete one (the operator stopped half way) is
  replaced;
- deletes the evidence ``policy.evidence.retention`` after ``resolvedAt`` and clears ``status.evidence``;
- writes the post-mortem draft (:mod:`zentinel_operator.core.postmortem`) of a resolved incident to
  the ConfigMap ``<incident>-postmortem`` (key ``postmortem.md``, owned by the incident) and names it
  in ``status.postmortem``. The draft is rewritten when the incident changes (a reopening and a new
  resolution, a revert, the evidence's deletion); once a person edits ``postmortem.md``, the operator
  writes ``postmortem.generated.md`` instead and leaves their text alone.

Secret values are never read (no Secret is touched here), never logged, and every text kept passes
through :mod:`zentinel_operator.core.redact`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .. import evidence_io, k8s, names
from ..api import EvidenceApi
from ..core import evidence as ev
from ..core import lifecycle as lc
from ..core import postmortem as pm
from ..core.durations import parse_duration
from ..core.observation import Observation
from ..core.zconfig import config_revision
from ..models.incident import EvidenceRef, ZentinelIncident
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import Zentinel
from ..names import ANN_CONFIG_REVISION as CONFIG_REVISION_ANNOTATION
from ..names import ANN_POSTMORTEM_INPUTS, ANN_POSTMORTEM_SHA256, KIND_INCIDENT, KIND_ZENTINEL
from ..signals import metrics as metric_signals
from .incidents import Recorded

log = logging.getLogger(__name__)

GENERATED_KEY = "postmortem.generated.md"
SUMMARY_KEY = "evidence-summary.json"


class Drafts:
    """The inputs digest of each post-mortem draft in place, by (namespace, incident): a pass whose incident
    did not change since the draft was written reads nothing. Held by the pass context, shared by its
    worker threads; forgetting it only costs one read of the draft's ConfigMap."""

    _LIMIT = 10_000

    def __init__(self) -> None:
        self._digests: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def current(self, key: tuple[str, str], inputs: str) -> bool:
        with self._lock:
            return self._digests.get(key) == inputs

    def remember(self, key: tuple[str, str], inputs: str) -> None:
        with self._lock:
            if len(self._digests) >= self._LIMIT:
                self._digests.clear()
            self._digests[key] = inputs


def postmortem_name(incident: str) -> str:
    return f"{incident}-postmortem"


# =============================================================================== entry point
def _phases_due(inc: ZentinelIncident, policy: ZentinelIncidentPolicySpec, now: dt.datetime) -> list[str]:
    """The phases this incident should have and its status does not list (none once its retention ended)."""
    st = inc.status
    retention_until = st.resolved_at + parse_duration(policy.evidence.retention) if st.resolved_at else None
    if not policy.evidence.enabled or (retention_until is not None and now >= retention_until):
        return []
    phases = {r.phase for r in st.evidence}
    return [p for p in ([ev.DETECTION] if lc.is_open(st) else [ev.RESOLUTION]) if p not in phases]


def wanted(
    *, api: EvidenceApi, zen: Zentinel, recorded: Recorded, policy: ZentinelIncidentPolicySpec, now: dt.datetime
) -> bool:
    """Will :func:`collect` collect a bundle this pass? (A phase is due and no complete one is stored under its
    labels.) Synchronous (call from a worker thread); never raises: when in doubt, True."""
    for inc in recorded.all:
        if not inc.metadata.uid:
            continue
        ns = inc.metadata.namespace or zen.metadata.namespace
        for phase in _phases_due(inc, policy, now):
            try:
                existing = api.list_configmaps(ns, ev.selector(inc.metadata.name, phase))
            except Exception as e:
                log.debug("evidence of %s/%s: %s", ns, inc.metadata.name, evidence_io.api_error(e))
                return True
            if not existing or ev.refs_from_configmaps(existing, phase) is None:
                return True
    return False


def collect(
    *,
    api: EvidenceApi,
    drafts: Drafts,
    zen: Zentinel,
    recorded: Recorded,
    observation: Observation | None,
    policy: ZentinelIncidentPolicySpec,
    now: dt.datetime,
) -> list[str]:
    """Evidence at detection and at resolution, retention, and post-mortem drafts for one Zentinel's incidents.

    Bundles are made from ``observation`` (completed by the pass when :func:`wanted` said so); without one (the
    pass could not observe the workload) a due bundle waits for the next pass.
    Never raises: a failure is logged (without response bodies), returned (one line per incident, for the
    Zentinel's status) and retried in the next pass.
    """
    failures: list[str] = []
    gatherer = _Gatherer(zen, observation, policy, [i.metadata.name for i in recorded.all])
    seen: set[str] = set()
    for inc in recorded.all:
        name = inc.metadata.name
        if name in seen:
            continue
        seen.add(name)
        try:
            _one(inc, api=api, drafts=drafts, zen=zen, policy=policy, now=now, gatherer=gatherer)
        except Exception as e:  # one incident's trouble must not stop the others, nor the pass
            log.warning("evidence/post-mortem for %s/%s: %s", zen.metadata.namespace, name, evidence_io.api_error(e))
            failures.append(f"{name}: {k8s.describe_error(e)}")
    return failures


def _one(
    inc: ZentinelIncident,
    *,
    api: EvidenceApi,
    drafts: Drafts,
    zen: Zentinel,
    policy: ZentinelIncidentPolicySpec,
    now: dt.datetime,
    gatherer: _Gatherer,
) -> None:
    st = inc.status
    ns, name = inc.metadata.namespace or zen.metadata.namespace, inc.metadata.name
    refs = list(st.evidence)
    retention_until = st.resolved_at + parse_duration(policy.evidence.retention) if st.resolved_at else None
    expired = retention_until is not None and now >= retention_until
    manifests: dict[str, dict[str, Any]] = {}

    if policy.evidence.enabled and not expired:
        for phase in _phases_due(inc, policy, now):
            if not inc.metadata.uid:
                log.warning("incident %s/%s has no uid yet; evidence waits for the next pass", ns, name)
                break
            if gatherer.observation is None:
                log.info("evidence %s of %s/%s waits for a pass that observes the workload", phase, ns, name)
                break
            found, manifest = _ensure_phase(inc, phase, api=api, zen=zen, policy=policy, now=now, gatherer=gatherer)
            refs = [r for r in refs if r.phase != phase] + found
            if manifest is not None:
                manifests[phase] = manifest
        if refs != st.evidence:
            api.patch_incident_status(ns, name, {"evidence": [r.dump() for r in refs]})

    if expired and refs:
        api.delete_configmaps(ns, ev.selector(name))
        for ref in refs:
            api.delete_configmap(ns, ref.name)
        refs = []
        api.patch_incident_status(ns, name, {"evidence": []})
        log.info("evidence of %s/%s deleted: retention %s after resolution", ns, name, policy.evidence.retention)

    if st.resolved_at is not None:
        _draft_postmortem(inc, refs, manifests, api=api, drafts=drafts, retention_until=retention_until, now=now)


# ================================================================================ evidence
def _ensure_phase(
    inc: ZentinelIncident,
    phase: str,
    *,
    api: EvidenceApi,
    zen: Zentinel,
    policy: ZentinelIncidentPolicySpec,
    now: dt.datetime,
    gatherer: _Gatherer,
) -> tuple[list[EvidenceRef], dict[str, Any] | None]:
    """The phase's chunks: those already stored when complete, else a new collection."""
    ns, name = inc.metadata.namespace, inc.metadata.name
    existing = api.list_configmaps(ns, ev.selector(name, phase))
    if existing:
        refs = ev.refs_from_configmaps(existing, phase)
        if refs is not None:
            first = next((cm for cm in existing if cm["metadata"]["name"] == refs[0].name), None)
            return refs, ev.manifest_of(first) if first else None
        log.info("evidence %s of %s/%s is incomplete (an earlier pass stopped); collecting it again", phase, ns, name)
        api.delete_configmaps(ns, ev.selector(name, phase))
    items, notes, extra = gatherer.items_for(inc)
    bundle = ev.build(
        name, phase, items, max_bytes=policy.evidence.max_bytes, collected_at=now, notes=notes, extra=extra
    )
    for chunk in bundle.chunks:
        body = ev.configmap_body(
            bundle, chunk, namespace=ns, incident_uid=str(inc.metadata.uid), zentinel=zen.metadata.name
        )
        api.create_configmap(ns, body)  # None on 409: an earlier attempt already stored this chunk
    log.info(
        "evidence %s of %s/%s kept: %d ConfigMap(s), %d bytes, %d item(s), %d redaction(s)%s",
        phase,
        ns,
        name,
        len(bundle.chunks),
        bundle.total_bytes,
        len(bundle.manifest["items"]),
        bundle.manifest["redactions"],
        ", some items cut to maxBytes" if bundle.manifest["truncated"] else "",
    )
    return bundle.refs(), bundle.manifest


@dataclasses.dataclass
class _Base:
    items: list[ev.Item]
    notes: list[str]
    extra: dict[str, Any]


class _Gatherer:
    """Makes what a bundle holds from the pass's observation, once however many incidents need a bundle."""

    def __init__(
        self, zen: Zentinel, observation: Observation | None, policy: ZentinelIncidentPolicySpec, names: list[str]
    ) -> None:
        self.zen = zen
        self.observation = observation
        self.policy = policy
        self.incident_names = names
        self._base: _Base | None = None

    def items_for(self, inc: ZentinelIncident) -> tuple[list[ev.Item], list[str], dict[str, Any]]:
        if self._base is None:
            self._base = self._gather()
        base = self._base
        items = [
            *base.items,
            ev.Item("incident.yaml", ev.incident_yaml(inc), "the incident as it stood when this was collected", "head"),
        ]
        return items, list(base.notes), dict(base.extra)

    # ----------------------------------------------------------------------------- reads
    def _gather(self) -> _Base:
        zen = self.zen
        obs = self.observation
        assert obs is not None  # collect() collects no bundle without an observation
        ns = zen.metadata.namespace
        notes: list[str] = []
        items: list[ev.Item] = []
        deployment = obs.deployment
        pods = list(obs.pods)
        if deployment is None:
            notes.append(f"Deployment {zen.spec.workload.name} does not exist: no pods, logs or admin pages")
        kept, kept_notes = ev.kept_pods(pods)
        notes += kept_notes

        items += self._logs(obs, kept, notes)
        pages, impact_routes = self._admin_pages(obs, kept, notes)
        items += pages
        items.append(
            ev.Item("describe__pods.yaml", ev.describe_pods(pods), "pods: status, conditions, containers", "head")
        )
        items.append(ev.Item("describe__deployment.yaml", ev.describe_deployment(deployment), "the Deployment", "head"))
        items.append(self._events(obs, deployment, pods, notes))
        revision = self._config(obs, items, pods, notes)
        affected = ev.pods_affected(pods)
        extra = {
            "namespace": ns,
            "zentinel": zen.metadata.name,
            "configRevision": revision,
            "impact": {
                "routes": impact_routes,
                "podsAffected": affected,
                "podsTotal": len(pods),
            },
        }
        return _Base(items=items, notes=notes, extra=extra)

    def _logs(self, obs: Observation, pods: Sequence[Mapping[str, Any]], notes: list[str]) -> list[ev.Item]:
        lines = self.policy.evidence.log_lines
        items: list[ev.Item] = []
        for want in ev.wanted_logs(pods):
            which = "previous" if want.previous else "current"
            read = obs.log(want.pod, want.container, previous=want.previous, lines=lines)
            if read is None:
                notes.append(f"{want.key}: {which} log not read this pass")
            elif read.error is not None:  # a log we cannot read is a note, not a failed bundle
                notes.append(f"{want.key}: {which} log unavailable ({read.error})")
            elif read.text is None:
                notes.append(f"{want.key}: no {which} log")
            else:
                items.append(
                    ev.Item(
                        want.key, read.text, f"last {lines} lines of the {which} {want.container} container", "tail"
                    )
                )
        return items

    def _admin_pages(
        self, obs: Observation, pods: Sequence[Mapping[str, Any]], notes: list[str]
    ) -> tuple[list[ev.Item], dict[str, dict[str, float]]]:
        wanted = ev.wanted_pages(self.zen.spec.admin, pods)
        if not wanted:
            notes.append("no running pod with an IP: no metrics or upstream pages")
            return [], {}
        items: list[ev.Item] = []
        requests: list[tuple[str, str, float]] = []
        proxy: list[tuple[str, float]] = []
        for want in wanted:
            read, body = obs.page(want.url)
            if body is None:
                notes.append(f"{want.key}: {'no answer from' if read else 'not read this pass:'} {want.url}")
                continue
            items.append(ev.Item(want.key, body, want.description, "head"))
            if want.key.startswith("metrics__"):
                try:
                    page = metric_signals.parse_exposition(body)
                except metric_signals.MetricsError as e:
                    notes.append(f"{want.key}: not a Zentinel metrics page ({e.reason})")
                    continue
                requests += [(route, status, count) for (route, status), count in page.requests.items()]
                proxy += list(page.proxy_errors().items())
        return items, ev.error_counts(requests, proxy) if requests or proxy else {}

    def _events(
        self,
        obs: Observation,
        deployment: Mapping[str, Any] | None,
        pods: Sequence[Mapping[str, Any]],
        notes: list[str],
    ) -> ev.Item:
        zen = self.zen
        events: Sequence[Mapping[str, Any]] = obs.events or ()
        if obs.events is None:
            notes.append(f"events.txt: events unavailable ({obs.events_error or 'not read this pass'})")
        involved: set[tuple[str, str]] = {(KIND_ZENTINEL, zen.metadata.name)}
        involved |= {(KIND_INCIDENT, n) for n in self.incident_names}
        involved |= {("Pod", str(p["metadata"]["name"])) for p in pods}
        for p in pods:
            involved |= {(str(o.get("kind")), str(o.get("name"))) for o in p["metadata"].get("ownerReferences") or []}
        if deployment is not None:
            dep = str(deployment["metadata"]["name"])
            involved.add(("Deployment", dep))
            for event in events:
                obj = event.get("involvedObject") or {}
                if obj.get("kind") == "ReplicaSet" and str(obj.get("name", "")).startswith(dep + "-"):
                    involved.add(("ReplicaSet", str(obj["name"])))
        return ev.Item(
            "events.txt",
            ev.format_events(events, involved),
            "events of the pods, the Deployment, its ReplicaSets, the Zentinel and its incidents",
            "tail",
        )

    def _config(
        self, obs: Observation, items: list[ev.Item], pods: Sequence[Mapping[str, Any]], notes: list[str]
    ) -> str | None:
        zen = self.zen
        ref = zen.spec.config
        text = obs.config_text
        if text is None:
            if obs.snapshot.config is None:
                notes.append(f"config.kdl: ConfigMap {ref.config_map_name} could not be read this pass")
            else:
                notes.append(f"config.kdl: ConfigMap {ref.config_map_name} or its key {ref.key} is missing")
            return None
        revision = config_revision(text)
        rolled = {
            str(p["metadata"]["name"]): ((p.get("metadata") or {}).get("annotations") or {}).get(
                CONFIG_REVISION_ANNOTATION, "-"
            )
            for p in pods
        }
        lines = [
            f"revision: {revision}",
            f"configMap: {zen.metadata.namespace}/{ref.config_map_name} (key {ref.key})",
            f"reloadMode: {ref.reload_mode.value}",
            f"lastKnownGood: {zen.status.last_known_good_revision or 'none'}",
            "podsRolledFor:" + ("" if rolled else " none"),
            *[f"  {pod}: {rev}" for pod, rev in sorted(rolled.items())],
        ]
        items.append(ev.Item("config.kdl", text, f"the config in {ref.config_map_name} (revision {revision})", "head"))
        items.append(ev.Item("config-revision.txt", "\n".join(lines) + "\n", "config revision hash and where", "head"))
        return revision


# ============================================================================== post-mortem
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _draft_postmortem(
    inc: ZentinelIncident,
    refs: list[EvidenceRef],
    fresh_manifests: Mapping[str, dict[str, Any]],
    *,
    api: EvidenceApi,
    drafts: Drafts,
    retention_until: dt.datetime | None,
    now: dt.datetime,
) -> None:
    ns, name = inc.metadata.namespace, inc.metadata.name
    cm_name = postmortem_name(name)
    view = inc.model_copy(update={"status": inc.status.model_copy(update={"evidence": refs, "postmortem": cm_name})})
    inputs = _digest(
        json.dumps(view.status.dump(), sort_keys=True) + (retention_until.isoformat() if retention_until else "")
    )[:32]
    key = (ns, name)
    if drafts.current(key, inputs) and inc.status.postmortem == cm_name:
        return
    existing = api.get_configmap(ns, cm_name)
    annotations: dict[str, str] = dict(((existing or {}).get("metadata") or {}).get("annotations") or {})
    if existing is None or annotations.get(ANN_POSTMORTEM_INPUTS) != inputs:
        _write_postmortem(
            view, existing, inputs, refs, fresh_manifests, api=api, retention_until=retention_until, now=now
        )
    drafts.remember(key, inputs)
    if inc.status.postmortem != cm_name:
        api.patch_incident_status(ns, name, {"postmortem": cm_name})


def _write_postmortem(
    view: ZentinelIncident,
    existing: Mapping[str, Any] | None,
    inputs: str,
    refs: list[EvidenceRef],
    fresh_manifests: Mapping[str, dict[str, Any]],
    *,
    api: EvidenceApi,
    retention_until: dt.datetime | None,
    now: dt.datetime,
) -> None:
    ns, name = view.metadata.namespace, view.metadata.name
    cm_name = postmortem_name(name)
    data: Mapping[str, str] = (existing or {}).get("data") or {}
    previous: dict[str, Any] | None = None
    if data.get(SUMMARY_KEY):
        try:
            loaded = json.loads(data[SUMMARY_KEY])
            previous = loaded if isinstance(loaded, dict) else None
        except ValueError:
            previous = None
    manifests = dict(fresh_manifests)
    for phase in ev.PHASES:
        if phase in manifests:
            continue
        first = next((r for r in refs if r.phase == phase and ev.MANIFEST_KEY in r.items), None)
        if first is not None:
            cm = api.get_configmap(ns, first.name)
            manifest = ev.manifest_of(cm) if cm else None
            if manifest is not None:
                manifests[phase] = manifest
    summary = ev.summary_for_postmortem(manifests, refs, previous=previous, retention_until=retention_until)
    text = pm.render(view, evidence_summary=summary, now=now)
    summary_text = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    rendered = _digest(text)
    if existing is None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cm_name,
                "namespace": ns,
                "labels": {
                    names.LABEL_INCIDENT: name,
                    names.LABEL_ZENTINEL: view.spec.zentinel_ref.name,
                    names.LABEL_ARTIFACT: "postmortem",
                    **ev.MANAGED_BY,
                },
                "annotations": {ANN_POSTMORTEM_INPUTS: inputs, ANN_POSTMORTEM_SHA256: rendered},
                "ownerReferences": [ev.owner_reference(name, str(view.metadata.uid))],
            },
            "data": {pm.POSTMORTEM_KEY: text, SUMMARY_KEY: summary_text},
        }
        if api.create_configmap(ns, body) is not None:
            log.info("post-mortem draft of %s/%s written to ConfigMap %s", ns, name, cm_name)
            return
        existing = api.get_configmap(ns, cm_name) or {}
        data = existing.get("data") or {}
    annotations = ((existing or {}).get("metadata") or {}).get("annotations") or {}
    current = data.get(pm.POSTMORTEM_KEY)
    edited = current is not None and _digest(current) != annotations.get(ANN_POSTMORTEM_SHA256)
    if edited:
        patch_data = {GENERATED_KEY: text, SUMMARY_KEY: summary_text}
        patch_ann = {ANN_POSTMORTEM_INPUTS: inputs}
        log.info("post-mortem of %s/%s was edited by a person; new draft in %s", ns, name, GENERATED_KEY)
    else:
        patch_data = {pm.POSTMORTEM_KEY: text, SUMMARY_KEY: summary_text}
        patch_ann = {ANN_POSTMORTEM_INPUTS: inputs, ANN_POSTMORTEM_SHA256: rendered}
        log.info("post-mortem draft of %s/%s updated", ns, name)
    api.patch_configmap(ns, cm_name, {"metadata": {"annotations": patch_ann}, "data": patch_data})
