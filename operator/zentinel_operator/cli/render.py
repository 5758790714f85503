"""Pure rendering for the CLI: tables, ages, the incident list and ``show``. No I/O: each function
takes plain values (objects as the API stores them, or the typed models) and returns text or data."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from ..core.durations import format_duration
from ..core.remediation import PENDING_APPROVAL
from ..models.incident import RemediationRecord, ZentinelIncident
from ..names import GROUP, LABEL_PHASE, SINGULAR_INCIDENT
from . import jsonpath

FORMATS = ("table", "wide", "name", "json", "yaml", "jsonpath=TEMPLATE")
DATA_FORMATS = ("json", "yaml")
JSONPATH = "jsonpath="
NONE = "<none>"


def output_arg(text: str) -> str:
    """``-o``'s value, checked: one of :data:`FORMATS` (a jsonpath template is compiled here, so a
    bad one is a usage error before any request); raises ``ValueError`` otherwise."""
    if text.startswith(JSONPATH):
        try:
            jsonpath.compile_template(text[len(JSONPATH) :])
        except jsonpath.TemplateError as e:
            raise ValueError(str(e)) from None
        return text
    if text not in FORMATS[:-1]:
        raise ValueError(f"{text!r} is not an output format ({', '.join(FORMATS)})")
    return text


def is_data(fmt: str) -> bool:
    """json, yaml or a jsonpath template: what :func:`dump` prints."""
    return fmt in DATA_FORMATS or fmt.startswith(JSONPATH)


def resource_name(obj: Mapping[str, Any], singular: str = SINGULAR_INCIDENT) -> str:
    """``-o name``: ``zentinelincident.zentinel.io/<name>``, as kubectl prints it."""
    return f"{singular}.{GROUP}/{(obj.get('metadata') or {}).get('name')}"


# ------------------------------------------------------------------------------ generic
def plain(value: Any) -> Any:
    """``value`` as JSON/YAML-safe data: dataclasses and mappings to dicts, tuples to lists, enums to
    their values, datetimes to ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def dump(value: Any, fmt: str) -> str:
    """``-o json``, ``-o yaml`` or ``-o jsonpath=TEMPLATE`` text of ``value``."""
    data = plain(value)
    if fmt.startswith(JSONPATH):
        return jsonpath.render(fmt[len(JSONPATH) :], data)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False))
    raise ValueError(f"not a data format: {fmt}")


def one_line(text: Any, limit: int | None = None) -> str:
    s = " ".join(str(text).split()) if text is not None and text != "" else "-"
    if limit is not None and len(s) > limit:
        return s[: limit - 1] + "…"
    return s


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """kubectl's layout: upper-case headers, columns padded to their widest cell, three spaces apart."""
    cells = [[h.upper() for h in headers]] + [[one_line(c) for c in row] for row in rows]
    return table_lines(cells, column_widths(cells))


def column_widths(cells: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]


def table_lines(cells: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """Rows padded to ``widths`` (a wider cell pushes its line only, as ``kubectl get -w`` rows do)."""
    lines = ["   ".join(one_line(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def ago(when: Any, now: dt.datetime) -> str:
    """``4m12s``: how long before ``now``; ``-`` when unknown."""
    moment = parse_time(when)
    if moment is None:
        return "-"
    return format_duration(max(now - moment, dt.timedelta(0)))


def stamp(when: Any) -> str:
    moment = parse_time(when)
    return "-" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def when(value: Any, now: dt.datetime) -> str:
    """``2026-11-27 03:12:04Z (4m12s ago)``, or ``in 2h`` for a time still ahead."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    if moment > now:
        return f"{stamp(moment)} (in {format_duration(moment - now)})"
    return f"{stamp(moment)} ({ago(moment, now)} ago)"


# ------------------------------------------------------------------------------ incidents
def severity_arg(text: str) -> str:
    """``SEV1``, ``sev1`` or ``1`` -> ``SEV1``; anything else raises ``ValueError``."""
    value = text.strip().upper()
    if value.isdigit():
        value = f"SEV{value}"
    if value not in ("SEV1", "SEV2", "SEV3", "SEV4"):
        raise ValueError(f"{text!r} is not a severity (SEV1..SEV4)")
    return value


def is_resolved(obj: Mapping[str, Any]) -> bool:
    """As :func:`zentinel_operator.core.lifecycle.is_open` has it (``resolvedAt`` set), on a stored object."""
    return bool((obj.get("status") or {}).get("resolvedAt"))


def incident_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One incident as a row, in machine form (what ``incidents -o json`` prints)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "severity": st.get("severity"),
        "category": spec.get("category"),
        "zentinel": (spec.get("zentinelRef") or {}).get("name"),
        "state": st.get("state"),
        "acknowledgedBy": st.get("acknowledgedBy"),
        "createdAt": meta.get("creationTimestamp"),
        "detectedAt": st.get("detectedAt"),
        "lastSeenAt": st.get("lastSeenAt"),
        "resolvedAt": st.get("resolvedAt"),
        "count": st.get("count", 0),
        "escalationLevel": st.get("escalationLevel"),
        "summary": st.get("summary"),
    }


def filter_incidents(
    objs: Iterable[Mapping[str, Any]],
    *,
    open_only: bool = False,
    severities: Sequence[str] = (),
    zentinel: str | None = None,
) -> list[Mapping[str, Any]]:
    """The incidents that pass every filter, sorted by namespace and name (names sort by date)."""
    out = []
    for obj in objs:
        st = obj.get("status") or {}
        if open_only and is_resolved(obj):
            continue
        if severities and st.get("severity") not in severities:
            continue
        if zentinel and ((obj.get("spec") or {}).get("zentinelRef") or {}).get("name") != zentinel:
            continue
        out.append(obj)
    return sorted(out, key=lambda o: ((o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]))


INCIDENT_HEADERS = ["NAME", "SEVERITY", "CATEGORY", "ZENTINEL", "STATE", "ACKED-BY", "AGE", "LAST-SEEN"]
INCIDENT_WIDE_HEADERS = ["COUNT", "ESCALATED", "DETECTED", "SUMMARY"]  # kubectl's priority-1 columns, and more


def incident_headers(*, all_namespaces: bool, wide: bool = False) -> list[str]:
    return (["NAMESPACE"] if all_namespaces else []) + INCIDENT_HEADERS + (INCIDENT_WIDE_HEADERS if wide else [])


def incident_cells(r: Mapping[str, Any], now: dt.datetime, *, all_namespaces: bool, wide: bool = False) -> list[str]:
    """One row of :func:`render_incidents` (``r`` from :func:`incident_summary`)."""
    line = [
        r["name"],
        r["severity"] or NONE,
        r["category"] or NONE,
        r["zentinel"] or NONE,
        r["state"] or NONE,
        r["acknowledgedBy"] or NONE,
        ago(r["createdAt"], now),
        ago(r["lastSeenAt"], now),
    ]
    if wide:
        line += [str(r["count"]), r["escalationLevel"] or NONE, ago(r["detectedAt"], now), one_line(r["summary"], 80)]
    return [r["namespace"] or "", *line] if all_namespaces else line


@dataclasses.dataclass(frozen=True)
class IncidentFilter:
    """``incidents``' filters (``--open``, ``--severity``, ``--zentinel``)."""

    open_only: bool = False
    severities: Sequence[str] = ()
    zentinel: str | None = None

    def __call__(self, objs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return filter_incidents(objs, open_only=self.open_only, severities=self.severities, zentinel=self.zentinel)


def render_incidents(
    rows: Sequence[Mapping[str, Any]], now: dt.datetime, *, all_namespaces: bool, wide: bool = False
) -> str:
    """The printer columns of ``kubectl get zinc``, plus how long ago the signal was last seen; ``wide``
    adds the count, the escalation level, the age of the detection and the summary."""
    headers = incident_headers(all_namespaces=all_namespaces, wide=wide)
    return table(headers, [incident_cells(r, now, all_namespaces=all_namespaces, wide=wide) for r in rows])


# ------------------------------------------------------------------------------ show
def configmap_files(cm: Mapping[str, Any]) -> dict[str, bytes]:
    """Every file of a ConfigMap: ``data`` as UTF-8, ``binaryData`` decoded from base64."""
    files = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        files[k] = base64.b64decode(v)
    return files


@dataclasses.dataclass(frozen=True)
class EvidenceChunk:
    name: str
    phase: str
    items: tuple[str, ...]
    bytes: int
    in_status: bool  # listed in status.evidence
    exists: bool  # the ConfigMap was found


def evidence_chunks(
    refs: Sequence[Mapping[str, Any]], configmaps: Sequence[Mapping[str, Any]] | None
) -> list[EvidenceChunk]:
    """Evidence chunks from ``status.evidence`` and from the ConfigMaps labelled for the incident
    (``None``: they could not be listed, so existence is taken on the status' word)."""
    found: dict[str, Mapping[str, Any]] = {}
    for cm in configmaps or ():
        found[cm["metadata"]["name"]] = cm
    chunks: dict[str, EvidenceChunk] = {}
    for ref in refs:
        name = str(ref.get("name"))
        chunks[name] = EvidenceChunk(
            name=name,
            phase=str(ref.get("phase") or "-"),
            items=tuple(ref.get("items") or ()),
            bytes=int(ref.get("bytes") or 0),
            in_status=True,
            exists=configmaps is None or name in found,
        )
    for name, cm in found.items():
        if name in chunks:
            continue
        labels = (cm.get("metadata") or {}).get("labels") or {}
        files = configmap_files(cm)
        chunks[name] = EvidenceChunk(
            name=name,
            phase=labels.get(LABEL_PHASE, "-"),
            items=tuple(sorted(files)),
            bytes=sum(len(v) for v in files.values()),
            in_status=False,
            exists=True,
        )
    return sorted(chunks.values(), key=lambda c: c.name)


def diff_summary(diff: str | None) -> str:
    """``+2/-1: request-timeout-secs -1`` for a unified diff; the first line of anything else."""
    if not diff:
        return "-"
    lines = diff.splitlines()
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    if added or removed:
        first = (added or removed)[0]
        return f"+{len(added)}/-{len(removed)}: {one_line(first, 60)}"
    return one_line(lines[0] if lines else diff, 70)


def pending_approvals(records: Sequence[RemediationRecord]) -> list[RemediationRecord]:
    return [r for r in records if r.state == PENDING_APPROVAL]


def render_show(inc: ZentinelIncident, chunks: Sequence[EvidenceChunk], now: dt.datetime) -> str:
    """Everything a person needs about one incident, section by section."""
    st, spec, meta = inc.status, inc.spec, inc.metadata
    severity = st.severity.value if st.severity else NONE
    if st.severity_reason:
        severity += f" ({one_line(st.severity_reason)})"
    if spec.severity_override:
        severity += f"; overridden to {spec.severity_override.value} by hand: {spec.severity_override_reason or '-'}"
    if st.acknowledged_at:
        acked = f"by {st.acknowledged_by or '-'} at {when(st.acknowledged_at, now)}"
    elif spec.acknowledged_by:
        acked = f"requested by {spec.acknowledged_by} (the operator records it on its next pass)"
    else:
        acked = "no" + (f" (respond by {when(st.response_due_at, now)})" if st.response_due_at else "")
    if st.resolved_at:
        resolved = f"by {st.resolved_by or '-'} at {when(st.resolved_at, now)}"
    elif spec.resolved_by:
        resolved = f"requested by {spec.resolved_by} (the operator records it on its next pass)"
    else:
        resolved = "no"
    fields = [
        ("Name", meta.name),
        ("Namespace", meta.namespace),
        ("Zentinel", spec.zentinel_ref.name),
        ("Category", spec.category.value),
        ("Severity", severity),
        ("State", st.state.value if st.state else NONE),
        ("Summary", one_line(st.summary)),
        ("Source", spec.source),
        ("Detected", when(st.detected_at, now)),
        ("Last seen", when(st.last_seen_at, now)),
        ("Count", f"{st.count} (reopened {st.flap_count} times)" if st.flap_count else str(st.count)),
        ("Acknowledged", acked),
        ("Escalation", st.escalation_level or "-"),
        ("Silenced by", ", ".join(st.silenced_by) + " (pages held)" if st.silenced_by else "-"),
        ("Resolved", resolved),
    ]
    if spec.resolution_note:
        fields.append(("Resolution note", one_line(spec.resolution_note)))
    if st.postmortem_due or st.postmortem:
        fields.append(("Post-mortem due", when(st.postmortem_due, now)))
        fields.append(("Post-mortem", f"ConfigMap {st.postmortem}" if st.postmortem else "not drafted yet"))
    width = 17  # the longest label, "Post-mortem due:", and a space
    out = [f"{(k + ':').ljust(width)}{v}" for k, v in fields]

    def section(title: str, body: str) -> None:
        out.append("")
        out.append(f"{title}:")
        out.extend("  " + line if line else line for line in body.rstrip("\n").splitlines())

    if st.conditions:
        section(
            "Conditions",
            table(
                ["type", "status", "reason", "last-transition", "message"],
                [
                    [c.type, c.status.value, c.reason or "-", ago(c.last_transition_time, now), c.message]
                    for c in st.conditions
                ],
            ),
        )
    if st.findings:
        lines = []
        for f in st.findings:
            lines.append(f"{f.severity.value} {f.category.value}: {one_line(f.summary)}")
            lines += [f"  - {one_line(e)}" for e in f.evidence]
        section("Findings", "\n".join(lines))
    if st.timeline:
        section(
            "Timeline",
            table(["time", "type", "message"], [[stamp(e.time), e.type, e.message] for e in st.timeline]),
        )
    if st.remediations:
        section(
            "Remediations",
            table(
                ["id", "action", "state", "reason", "diff"],
                [[r.id, r.action, r.state, one_line(r.reason, 70), diff_summary(r.diff)] for r in st.remediations],
            ),
        )
        pending = pending_approvals(st.remediations)
        if pending:
            hint = f"zentinelctl approve {meta.name} -n {meta.namespace}"
            out.append(f"  Waiting for approval: {pending[-1].id} ({hint})")
    if st.escalations:
        section(
            "Escalations",
            table(
                ["at", "level", "receivers", "reason"],
                [[stamp(e.at), e.level, ",".join(e.receivers) or "-", e.reason] for e in st.escalations],
            ),
        )
    if st.deliveries:
        section(
            "Deliveries",
            table(
                ["receiver", "event", "state", "attempts", "at", "last-error"],
                [
                    [d.receiver, d.event, d.state, d.attempts, stamp(d.at), one_line(d.last_error, 80)]
                    for d in st.deliveries
                ],
            ),
        )
    if chunks:
        section(
            "Evidence",
            table(
                ["configmap", "phase", "items", "bytes", "note"],
                [
                    [
                        c.name,
                        c.phase,
                        len(c.items),
                        c.bytes,
                        "missing" if not c.exists else ("" if c.in_status else "not in status"),
                    ]
                    for c in chunks
                ],
            ),
        )
    return "\n".join(out) + "\n"
