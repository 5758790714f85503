"""Evidence bundles as pure functions: collected texts -> redacted, capped, chunked ConfigMaps + a manifest.

The runbook's "Log Preservation" keeps ``zentinel.log``, ``metrics.txt`` and ``config.kdl`` in a folder
per incident. Here the folder is a set of immutable ConfigMaps owned by the incident, named
``<incident>-ev-<phase>-<NN>``, with one data key per file:

- ``logs__<pod>__<container>.log`` and ``logs__<pod>__<container>.previous.log`` (the container before
  its last restart), the last ``policy.evidence.logLines`` lines each;
- ``metrics__<pod>.txt`` (the raw ``/metrics`` page), ``upstreams__<pod>.json`` (``/admin/upstreams``),
  ``admin-config__<pod>.json`` (``/admin/config``: the config the process runs);
- ``describe__pods.yaml``, ``describe__deployment.yaml``, ``events.txt``;
- ``config.kdl`` and ``config-revision.txt`` (the config in the ConfigMap and its revision hash);
- ``incident.yaml`` (the incident as it stood), and ``MANIFEST.json`` in chunk ``00``: every item with its
  chunk, size and sha256, what was truncated and why, and notes on what could not be collected.

Every item passes through :mod:`.redact` here, so no caller can forget it. A bundle is capped at
``policy.evidence.maxBytes``: when the items are larger, the largest are cut first (logs and events keep
their newest lines), each with a marker line and a note in the manifest. A chunk stays under
:data:`CHUNK_BYTES`, well inside the API's 1 MiB per ConfigMap; an item larger than a chunk is split into
``<key>.partNN`` items.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import yaml

from ..models.incident import EvidenceRef, ZentinelIncident
from ..models.zentinel import AdminEndpoint
from ..names import (
    ANN_CHUNK,
    ANN_COLLECTED_AT,
    API_VERSION,
    KIND_INCIDENT,
    LABEL_ARTIFACT,
    LABEL_INCIDENT,
    LABEL_PHASE,
    LABEL_ZENTINEL,
)
from .conditions import pod_ready
from .redact import redact_counted

FORMAT = "zentinel.io/evidence/v1"
DETECTION = "detection"
RESOLUTION = "resolution"
PHASES = (DETECTION, RESOLUTION)

MANAGED_BY = {"app.kubernetes.io/managed-by": "zentinel-incident-operator"}

MANIFEST_KEY = "MANIFEST.json"
CHUNK_BYTES = 900 * 1024
MAX_KEY = 253
_KEY_OK = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_BAD_CHARS = re.compile(r"[^-._a-zA-Z0-9]+")


# ------------------------------------------------------------------------------ naming
def data_key(*parts: str) -> str:
    """A valid ConfigMap key (``[-._a-zA-Z0-9]+``, at most 253 characters) from parts joined by ``__``."""
    key = "__".join(_KEY_BAD_CHARS.sub("_", p) for p in parts if p)
    key = key.strip(".") or "item"
    if key in (".", ".."):
        key = "item"
    return key[:MAX_KEY]


def chunk_name(incident: str, phase: str, index: int) -> str:
    return f"{incident}-ev-{phase}-{index:02d}"


def selector(incident: str, phase: str | None = None) -> str:
    """Label selector for an incident's evidence ConfigMaps (one phase, or all)."""
    sel = f"{LABEL_INCIDENT}={incident},{LABEL_ARTIFACT}=evidence"
    return f"{sel},{LABEL_PHASE}={phase}" if phase else sel


# ------------------------------------------------------------------------------- model
@dataclasses.dataclass(frozen=True)
class Item:
    """One file of the bundle, before redaction."""

    key: str
    text: str
    description: str = ""
    keep: Literal["head", "tail"] = "tail"  # which end survives a cut: logs keep their newest lines


@dataclasses.dataclass(frozen=True)
class Chunk:
    name: str
    index: int
    data: dict[str, str]

    @property
    def keys(self) -> list[str]:
        return list(self.data)

    @property
    def bytes(self) -> int:
        return sum(_size(v) for v in self.data.values())


@dataclasses.dataclass(frozen=True)
class Bundle:
    incident: str
    phase: str
    chunks: tuple[Chunk, ...]
    manifest: dict[str, Any]

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.chunks)

    def refs(self) -> list[EvidenceRef]:
        return [EvidenceRef(name=c.name, phase=self.phase, items=c.keys, bytes=c.bytes) for c in self.chunks]


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------- truncation
def _fair_cap(sizes: Sequence[int], budget: int) -> int | None:
    """The largest per-item size C with sum(min(size, C)) <= budget (None: everything fits).

    Cutting every item down to C trims the largest items first and leaves the small ones whole.
    """
    if sum(sizes) <= budget:
        return None
    remaining = max(budget, 0)
    ordered = sorted(sizes)
    for i, size in enumerate(ordered):
        share = remaining // (len(ordered) - i)
        if size > share:
            return share
        remaining -= size
    return None  # pragma: no cover - the sum check above makes this unreachable


def _utf8_cut(data: bytes, n: int) -> int:
    """The largest cut <= n that does not split a UTF-8 sequence."""
    n = max(0, min(n, len(data)))
    while 0 < n < len(data) and (data[n] & 0xC0) == 0x80:
        n -= 1
    return n


def truncate(text: str, limit: int, *, keep: Literal["head", "tail"], max_bytes: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a line boundary, with a marker line saying so."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    which = "newest" if keep == "tail" else "first"

    def marker(kept: int) -> str:
        return (
            f"[... cut by the Zentinel incident operator: kept the {which} {kept} of {len(data)} bytes "
            f"(evidence maxBytes {max_bytes}) ...]\n"
        )

    room = max(0, limit - _size(marker(10**12)) - (1 if keep == "head" else 0))
    if keep == "tail":
        start = len(data) - room
        while 0 < start < len(data) and (data[start] & 0xC0) == 0x80:
            start += 1
        piece = data[start:]
        nl = piece.find(b"\n")
        if start > 0 and 0 <= nl < len(piece) - 1:
            piece = piece[nl + 1 :]
        body = piece.decode("utf-8", errors="ignore")
        return marker(_size(body)) + body
    piece = data[: _utf8_cut(data, room)]
    nl = piece.rfind(b"\n")
    if nl > 0:
        piece = piece[: nl + 1]
    body = piece.decode("utf-8", errors="ignore")
    return body + ("" if body.endswith("\n") or not body else "\n") + marker(_size(body))


def split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut after a newline where one is near."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return [text]
    parts: list[str] = []
    pos = 0
    while pos < len(data):
        end = pos + limit
        if end >= len(data):
            end = len(data)
        else:
            nl = data.rfind(b"\n", pos, end)
            end = nl + 1 if nl >= pos + limit // 2 else pos + _utf8_cut(data[pos:], limit)
            if end <= pos:  # pragma: no cover - limit below 4 bytes
                end = pos + limit
        parts.append(data[pos:end].decode("utf-8", errors="replace"))
        pos = end
    return parts


# ------------------------------------------------------------------------------ build
@dataclasses.dataclass
class _Prepared:
    key: str
    text: str
    description: str
    keep: Literal["head", "tail"]
    redactions: int
    original_bytes: int
    truncated: bool = False


def _unique_keys(items: Sequence[Item]) -> list[str]:
    seen: set[str] = set()
    keys = []
    for item in items:
        base = item.key if _KEY_OK.match(item.key) and len(item.key) <= MAX_KEY else data_key(item.key)
        if base == MANIFEST_KEY:
            base = "item." + base
        key, n = base, 2
        while key in seen:
            key = f"{base[: MAX_KEY - 4]}.{n}"
            n += 1
        seen.add(key)
        keys.append(key)
    return keys


def _manifest_bound(
    prepared: Sequence[_Prepared], incident: str, phase: str, notes: Sequence[str], extra: Mapping[str, Any], part: int
) -> int:
    """An upper bound of the manifest's size, whatever the truncation, splitting and packing decide."""
    longest_name = chunk_name(incident, phase, 999)
    entries: list[dict[str, Any]] = []
    chunks = 1
    for p in prepared:
        pieces = max(1, math.ceil(p.original_bytes / max(part, 1)))
        chunks += pieces
        for _ in range(pieces):
            entries.append(
                {
                    "key": p.key + ".part999",
                    "chunk": longest_name,
                    "bytes": 10**12,
                    "sha256": "0" * 64,
                    "description": p.description,
                    "redactions": 10**9,
                    "truncated": {"originalBytes": 10**12, "kept": "newest"},
                    "partOf": p.key,
                    "part": "999/999",
                }
            )
    doc = {
        "format": FORMAT,
        "incident": incident,
        "phase": phase,
        "collectedAt": "0000-00-00T00:00:00+00:00",
        "chunks": [longest_name] * chunks,
        "totalBytes": 10**12,
        "maxBytes": 10**12,
        "truncated": False,
        "redactions": 10**12,
        "items": entries,
        "notes": [*notes, "x" * (200 + sum(len(p.key) + 2 for p in prepared))],
        **extra,
    }
    return _size(_dump_manifest(doc)) + 64


def _dump_manifest(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def build(
    incident: str,
    phase: str,
    items: Sequence[Item],
    *,
    max_bytes: int,
    collected_at: dt.datetime,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Bundle:
    """Redact, cap, split and pack ``items`` into chunks; chunk ``00`` carries ``MANIFEST.json``.

    The bundle's data (items and manifest) stays within ``max_bytes`` unless so many items meet so
    small a cap that the truncation markers alone exceed it.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
    extra = dict(extra or {})
    clean_notes = [redact_counted(n)[0] for n in notes]
    prepared: list[_Prepared] = []
    for key, item in zip(_unique_keys(items), items, strict=True):
        text, count = redact_counted(item.text)
        prepared.append(_Prepared(key, text, item.description, item.keep, count, _size(text)))

    reserve = _manifest_bound(prepared, incident, phase, clean_notes, extra, chunk_bytes // 2)
    if reserve > chunk_bytes // 2:
        raise ValueError(f"too many evidence items ({len(prepared)}) for one manifest")
    part_limit = max(chunk_bytes - reserve - 1024, chunk_bytes // 2)

    # Cap: cut the largest items first so that items and manifest stay within max_bytes.
    budget = max(max_bytes - reserve, max_bytes // 2)
    cap = _fair_cap([p.original_bytes for p in prepared], budget)
    if cap is not None:
        for p in prepared:
            if p.original_bytes > cap:
                p.text = truncate(p.text, cap, keep=p.keep, max_bytes=max_bytes)
                p.truncated = True

    # Split what does not fit in one chunk, then pack first-fit, in order.
    pieces: list[tuple[_Prepared, str, str, int, int]] = []  # (item, key, text, part, parts)
    for p in prepared:
        texts = split(p.text, part_limit - len(p.key) - 16)
        for i, t in enumerate(texts, start=1):
            key = p.key if len(texts) == 1 else f"{p.key[: MAX_KEY - 7]}.part{i:02d}"
            pieces.append((p, key, t, i, len(texts)))
    capacities = [chunk_bytes - reserve]
    contents: list[dict[str, str]] = [{}]
    placed: dict[str, int] = {}
    for _, key, text, _, _ in pieces:
        need = _size(text) + len(key)
        index = next((i for i, room in enumerate(capacities) if need <= room), None)
        if index is None:
            capacities.append(chunk_bytes)
            contents.append({})
            index = len(contents) - 1
        contents[index][key] = text
        capacities[index] -= need
        placed[key] = index

    names = [chunk_name(incident, phase, i) for i in range(len(contents))]
    entries: list[dict[str, Any]] = []
    for p, key, text, part, parts in pieces:
        entry: dict[str, Any] = {
            "key": key,
            "chunk": names[placed[key]],
            "bytes": _size(text),
            "sha256": _sha256(text),
        }
        if p.description:
            entry["description"] = p.description
        if p.redactions:
            entry["redactions"] = p.redactions
        if p.truncated:
            entry["truncated"] = {"originalBytes": p.original_bytes, "kept": "newest" if p.keep == "tail" else "first"}
        if parts > 1:
            entry["partOf"] = p.key
            entry["part"] = f"{part}/{parts}"
        entries.append(entry)
    all_notes = list(clean_notes)
    truncated = [p for p in prepared if p.truncated]
    if truncated:
        all_notes.append(
            f"{len(truncated)} item(s) cut to keep the bundle within maxBytes {max_bytes} "
            f"(largest first): {', '.join(p.key for p in truncated)}"
        )
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "incident": incident,
        "phase": phase,
        "collectedAt": collected_at.astimezone(dt.UTC).isoformat(),
        "chunks": names,
        "totalBytes": sum(e["bytes"] for e in entries),
        "maxBytes": max_bytes,
        "truncated": bool(truncated),
        "redactions": sum(p.redactions for p in prepared),
        "items": entries,
        "notes": all_notes,
        **extra,
    }
    text = _dump_manifest(manifest)
    contents[0] = {MANIFEST_KEY: text, **contents[0]}
    chunks = tuple(Chunk(name=names[i], index=i, data=data) for i, data in enumerate(contents))
    return Bundle(incident=incident, phase=phase, chunks=chunks, manifest=manifest)


# ------------------------------------------------------------------------ ConfigMaps
def configmap_body(bundle: Bundle, chunk: Chunk, *, namespace: str, incident_uid: str, zentinel: str) -> dict[str, Any]:
    """An immutable ConfigMap for one chunk, owned by the incident (deleting the incident deletes it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": chunk.name,
            "namespace": namespace,
            "labels": {
                LABEL_INCIDENT: bundle.incident,
                LABEL_PHASE: bundle.phase,
                LABEL_ZENTINEL: zentinel,
                LABEL_ARTIFACT: "evidence",
                **MANAGED_BY,
            },
            "annotations": {
                ANN_CHUNK: f"{chunk.index}/{len(bundle.chunks)}",
                ANN_COLLECTED_AT: str(bundle.manifest["collectedAt"]),
            },
            "ownerReferences": [owner_reference(bundle.incident, incident_uid)],
        },
        "immutable": True,
        "data": chunk.data,
    }


def owner_reference(incident: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND_INCIDENT,
        "name": incident,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def refs_from_configmaps(configmaps: Sequence[Mapping[str, Any]], phase: str) -> list[EvidenceRef] | None:
    """The refs of a bundle found by its labels; None when it is incomplete (the writer stopped half way)."""
    found: dict[int, Mapping[str, Any]] = {}
    count: int | None = None
    for cm in configmaps:
        ann = (cm.get("metadata") or {}).get("annotations") or {}
        m = re.fullmatch(r"(\d+)/(\d+)", str(ann.get(ANN_CHUNK, "")))
        if m is None:
            return None
        index, total = int(m.group(1)), int(m.group(2))
        if count is not None and total != count:
            return None
        count = total
        found[index] = cm
    if count is None or set(found) != set(range(count)):
        return None
    refs = []
    for index in range(count):
        cm = found[index]
        data: Mapping[str, str] = cm.get("data") or {}
        refs.append(
            EvidenceRef(
                name=str(cm["metadata"]["name"]),
                phase=phase,
                items=list(data),
                bytes=sum(_size(v) for v in data.values()),
            )
        )
    return refs


def manifest_of(configmap: Mapping[str, Any]) -> dict[str, Any] | None:
    text = (configmap.get("data") or {}).get(MANIFEST_KEY)
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


# --------------------------------------------------------------------- descriptions
_KEEP_ANNOTATION = re.compile(r"^(zentinel\.io/|kubectl\.kubernetes\.io/restartedAt$|deployment\.kubernetes\.io/)")


def _annotations(meta: Mapping[str, Any]) -> dict[str, str]:
    """Only annotations the operator and Kubernetes set: others may hold anything, secrets included."""
    ann = meta.get("annotations") or {}
    return {k: str(v) for k, v in sorted(ann.items()) if _KEEP_ANNOTATION.match(k)}


def _containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Name, image, ports and resources: never env, args or command (they can carry secrets)."""
    out = []
    for c in spec.get("containers") or []:
        row: dict[str, Any] = {"name": c.get("name"), "image": c.get("image")}
        if c.get("ports"):
            row["ports"] = [
                {k: v for k, v in p.items() if k in ("name", "containerPort", "protocol")} for p in c["ports"]
            ]
        if c.get("resources"):
            row["resources"] = c["resources"]
        out.append(row)
    return out


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None and v not in ({}, [])}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def describe_pods(pods: Sequence[Mapping[str, Any]]) -> str:
    """The pods as ``kubectl describe`` would show what matters: status, conditions, container states."""
    docs = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        docs.append(
            {
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "created": meta.get("creationTimestamp"),
                "deleting": meta.get("deletionTimestamp"),
                "labels": dict(sorted((meta.get("labels") or {}).items())),
                "annotations": _annotations(meta),
                "ownedBy": [f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or []],
                "node": spec.get("nodeName"),
                "containers": _containers(spec),
                "status": {
                    "phase": status.get("phase"),
                    "reason": status.get("reason"),
                    "message": status.get("message"),
                    "podIP": status.get("podIP"),
                    "hostIP": status.get("hostIP"),
                    "startTime": status.get("startTime"),
                    "qosClass": status.get("qosClass"),
                    "conditions": status.get("conditions"),
                    "containerStatuses": status.get("containerStatuses"),
                    "initContainerStatuses": status.get("initContainerStatuses"),
                },
            }
        )
    return yaml.safe_dump(_drop_none(docs), sort_keys=False, default_flow_style=False, allow_unicode=True)


def describe_deployment(deployment: Mapping[str, Any] | None) -> str:
    if deployment is None:
        return "# the Deployment does not exist\n"
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    doc = {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "generation": meta.get("generation"),
        "labels": dict(sorted((meta.get("labels") or {}).items())),
        "annotations": _annotations(meta),
        "replicas": spec.get("replicas"),
        "selector": spec.get("selector"),
        "strategy": spec.get("strategy"),
        "template": {
            "annotations": _annotations(template.get("metadata") or {}),
            "containers": _containers(template.get("spec") or {}),
        },
        "status": deployment.get("status"),
    }
    return yaml.safe_dump(_drop_none(doc), sort_keys=False, default_flow_style=False, allow_unicode=True)


def _event_time(ev: Mapping[str, Any]) -> str:
    series = ev.get("series") or {}
    meta = ev.get("metadata") or {}
    return str(
        series.get("lastObservedTime")
        or ev.get("lastTimestamp")
        or ev.get("eventTime")
        or ev.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def format_events(events: Iterable[Mapping[str, Any]], involved: set[tuple[str, str]], limit: int = 500) -> str:
    """Events about the given ``(kind, name)`` objects, oldest first, as ``kubectl get events`` lists them."""
    rows = []
    for ev in events:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if (obj.get("kind"), obj.get("name")) not in involved:
            continue
        count = ev.get("count") or (ev.get("series") or {}).get("count") or 1
        message = " ".join(str(ev.get("message") or ev.get("note") or "").split())
        rows.append(
            (
                _event_time(ev),
                f"{_event_time(ev) or '-':<25} {ev.get('type') or '-':<8} {ev.get('reason') or '-':<26} "
                f"{obj.get('kind')}/{obj.get('name')}  {message}" + (f" (x{count})" if count > 1 else ""),
            )
        )
    rows.sort(key=lambda r: r[0])
    dropped = max(0, len(rows) - limit)
    lines = [f"{'LAST SEEN':<25} {'TYPE':<8} {'REASON':<26} OBJECT  MESSAGE"]
    if dropped:
        lines.append(f"# {dropped} older events left out")
    lines += [r[1] for r in rows[-limit:]] if limit else []
    if not rows:
        lines.append("# no events about the pods, the Deployment, the Zentinel or its incidents")
    return "\n".join(lines) + "\n"


def incident_yaml(incident: ZentinelIncident) -> str:
    """The incident as it stood when the evidence was taken (what people read with kubectl)."""
    st = incident.status
    doc = {
        "name": incident.metadata.name,
        "zentinel": incident.spec.zentinel_ref.name,
        "category": incident.spec.category.value,
        "source": incident.spec.source,
        "severity": st.severity.value if st.severity else None,
        "state": st.state.value if st.state else None,
        "summary": st.summary,
        "detectedAt": st.detected_at.isoformat() if st.detected_at else None,
        "resolvedAt": st.resolved_at.isoformat() if st.resolved_at else None,
        "count": st.count,
        "findings": [f.dump() for f in st.findings],
        "conditions": [c.dump() for c in st.conditions],
        "remediations": [
            {"action": r.action, "state": r.state, "target": r.target, "reason": r.reason} for r in st.remediations
        ],
    }
    return yaml.safe_dump(_drop_none(doc), sort_keys=False, default_flow_style=False, allow_unicode=True)


# --------------------------------------------------------------------------- impact
def error_counts(
    requests: Iterable[tuple[str, str, float]], proxy_errors: Iterable[tuple[str, float]]
) -> dict[str, dict[str, float]]:
    """``route -> {"requests", "errors"}`` from counter readings: ``(route, status, count)`` of
    ``zentinel_requests_total`` and ``(status, count)`` of Zentinel's own 502/503/504 answers
    (attributed to the pseudo-route ``(proxy)``)."""
    out: dict[str, dict[str, float]] = {}
    for route, status, count in requests:
        row = out.setdefault(route or "(none)", {"requests": 0.0, "errors": 0.0})
        row["requests"] += count
        if re.fullmatch(r"5\d\d", status):
            row["errors"] += count
    for _status, count in proxy_errors:
        row = out.setdefault("(proxy)", {"requests": 0.0, "errors": 0.0})
        row["requests"] += count
        row["errors"] += count
    return dict(sorted(out.items()))


def pods_affected(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """Pods not Ready, restarting, waiting or being deleted."""
    names = []
    for pod in pods:
        status = pod.get("status") or {}
        restarts = sum(int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or [])
        waiting = any((cs.get("state") or {}).get("waiting") for cs in status.get("containerStatuses") or [])
        if not pod_ready(pod) or restarts or waiting or (pod.get("metadata") or {}).get("deletionTimestamp"):
            names.append(str((pod.get("metadata") or {}).get("name")))
    return sorted(names)


def summary_for_postmortem(
    manifests: Mapping[str, Mapping[str, Any]],
    refs: Sequence[EvidenceRef],
    *,
    previous: Mapping[str, Any] | None,
    retention_until: dt.datetime | None,
) -> dict[str, Any]:
    """What the post-mortem says about the evidence: the bundles, their impact figures, the pods.

    ``manifests`` are the bundles' manifests by phase (those still stored); ``previous`` is the summary
    kept with the last draft, so the figures survive the evidence's deletion after its retention.
    """
    bundles: dict[str, dict[str, Any]] = {b["phase"]: dict(b) for b in (previous or {}).get("bundles", [])}
    impact: dict[str, Any] = dict((previous or {}).get("impact") or {})
    pods: list[str] = list((previous or {}).get("podsAffected") or [])
    for phase in PHASES:
        chunks = [r for r in refs if r.phase == phase]
        manifest = manifests.get(phase)
        if not chunks and phase in bundles:
            bundles[phase]["deleted"] = True
            continue
        if not chunks:
            continue
        entry: dict[str, Any] = {
            "phase": phase,
            "chunks": [r.name for r in chunks],
            "bytes": sum(r.bytes for r in chunks),
            "items": sum(len(r.items) for r in chunks),
        }
        if manifest is not None:
            entry["collectedAt"] = manifest.get("collectedAt")
            entry["truncated"] = bool(manifest.get("truncated"))
            entry["redactions"] = manifest.get("redactions", 0)
            if manifest.get("impact"):
                impact[phase] = manifest["impact"]
                pods = sorted({*pods, *manifest["impact"].get("podsAffected", [])})
        elif phase in bundles:
            entry = {**bundles[phase], **entry}
        bundles[phase] = entry
    return {
        "bundles": [bundles[p] for p in PHASES if p in bundles],
        "impact": impact,
        "podsAffected": pods,
        "retentionUntil": retention_until.astimezone(dt.UTC).isoformat() if retention_until else None,
    }


# ============================================================================ what a bundle reads
MAX_PODS = 20  # pods whose logs and admin pages are kept; the troubled ones first


@dataclasses.dataclass(frozen=True)
class LogWant:
    key: str
    pod: str
    container: str
    previous: bool


@dataclasses.dataclass(frozen=True)
class PageWant:
    key: str
    url: str
    description: str
    pod: str


def kept_pods(pods: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The pods whose logs and admin pages a bundle keeps (troubled pods first, at most :data:`MAX_PODS`), and
    a note when some were left out."""
    affected = set(pods_affected(pods))
    ordered = sorted(pods, key=lambda p: (str(p["metadata"]["name"]) not in affected, p["metadata"]["name"]))
    notes = []
    if len(ordered) > MAX_PODS:
        notes.append(f"{len(ordered)} pods: logs and admin pages of {MAX_PODS} kept (troubled pods first)")
    return ordered[:MAX_PODS], notes


def wanted_logs(pods: Sequence[Mapping[str, Any]]) -> list[LogWant]:
    """Each container's current log, and its previous one when it restarted."""
    wants = []
    for pod in pods:
        pod_name = str(pod["metadata"]["name"])
        statuses = {cs.get("name"): cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
        for container in (pod.get("spec") or {}).get("containers") or []:
            cname = str(container.get("name"))
            cs = statuses.get(cname) or {}
            restarted = int(cs.get("restartCount") or 0) > 0 or bool((cs.get("lastState") or {}).get("terminated"))
            for previous in (False, True):
                if previous and not restarted:
                    continue
                key = data_key("logs", pod_name, cname) + (".previous.log" if previous else ".log")
                wants.append(LogWant(key, pod_name, cname, previous))
    return wants


def wanted_pages(admin: AdminEndpoint, pods: Sequence[Mapping[str, Any]]) -> list[PageWant]:
    """``/metrics`` and ``/admin/upstreams`` of every running pod with an IP, ``/admin/config`` of the first."""
    targets = [
        (str(p["metadata"]["name"]), str((p.get("status") or {}).get("podIP")))
        for p in pods
        if (p.get("status") or {}).get("podIP")
        and (p.get("status") or {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]
    a = admin
    wanted: list[PageWant] = []
    for pod, ip in targets:
        base = f"{a.scheme}://{ip}"
        wanted.append(
            PageWant(
                data_key("metrics", pod) + ".txt",
                f"{base}:{a.effective_metrics_port}{a.metrics_path}",
                "raw Prometheus page",
                pod,
            )
        )
        wanted.append(
            PageWant(data_key("upstreams", pod) + ".json", f"{base}:{a.port}{a.upstreams_path}", "upstream health", pod)
        )
    if targets:
        pod, ip = targets[0]
        wanted.append(
            PageWant(
                data_key("admin-config", pod) + ".json",
                f"{a.scheme}://{ip}:{a.port}{a.config_path}",
                "the config the process runs (/admin/config)",
                pod,
            )
        )
    return wanted
