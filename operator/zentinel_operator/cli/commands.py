"""The subcommands over :class:`~.kube.Api`: each returns ``(exit code, text for stdout)`` and raises
:class:`~.exits.CliError` for what goes to stderr. Reads and writes go through the API; the
decisions (what is pending, what is refused, what people asked for) come from the core."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import k8s, names
from ..core import acks
from ..core import lifecycle as lc
from ..core.remediation import PENDING_APPROVAL, approvals
from ..models.incident import Decision, RemediationRecord, ZentinelIncident
from . import evidence as ev
from .exits import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_UNVERIFIED, CliError
from .kube import Api
from .render import (
    JSONPATH,
    IncidentFilter,
    column_widths,
    dump,
    evidence_chunks,
    incident_cells,
    incident_headers,
    incident_summary,
    is_data,
    one_line,
    pending_approvals,
    render_incidents,
    render_show,
    resource_name,
    stamp,
    table_lines,
)

Result = tuple[int, str]
POSTMORTEM_KEY = "postmortem.md"
GENERATED_KEY = "postmortem.generated.md"  # the operator's newer draft, once a person edited postmortem.md
_APPROVE_ATTEMPTS = 5


def _require(api: Api, namespace: str, name: str) -> dict[str, Any]:
    obj = api.get_incident(namespace, name)
    if obj is None:
        raise CliError(f'incident "{name}" not found in namespace "{namespace}"', EXIT_NOT_FOUND)
    return obj


def _model(obj: Mapping[str, Any]) -> ZentinelIncident:
    try:
        return ZentinelIncident.model_validate(dict(obj))
    except ValidationError as e:
        raise CliError(f"incident {obj['metadata']['name']} is malformed: {one_line(e, 300)}") from e


def _done(fmt: str, data: dict[str, Any], text: str) -> Result:
    return EXIT_OK, (text + "\n" if fmt == "table" else dump(data, fmt))


# ------------------------------------------------------------------------------ read
def listed(
    objs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    *,
    fmt: str,
    namespace: str | None,
    what: str,
    render: Callable[[], str],
    singular: str = names.SINGULAR_INCIDENT,
) -> Result:
    """A list command's answer in ``fmt``: names, a template over the List of objects, the rows as data, or
    the table ``render`` makes (``No <what> found in ...`` when there is nothing)."""
    if fmt == "name":
        return EXIT_OK, "".join(resource_name(o, singular) + "\n" for o in objs)
    if fmt.startswith(JSONPATH):  # kubectl's templates read the List of objects as the API has them
        return EXIT_OK, dump(as_list(objs), fmt)
    if is_data(fmt):
        return EXIT_OK, dump(list(rows), fmt)
    if not rows:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        return EXIT_OK, f"No {what} found in {where}.\n"
    return EXIT_OK, render()


def incidents(api: Api, namespace: str | None, chosen: IncidentFilter, *, fmt: str, now: dt.datetime) -> Result:
    objs = chosen(api.list_incidents(namespace))
    rows = [incident_summary(o) for o in objs]
    return listed(
        objs,
        rows,
        fmt=fmt,
        namespace=namespace,
        what="incidents",
        render=lambda: render_incidents(rows, now, all_namespaces=namespace is None, wide=fmt == "wide"),
    )


def watch_incidents(
    api: Api,
    namespace: str | None,
    chosen: IncidentFilter,
    *,
    fmt: str,
    timeout: int | None,
    write: Callable[[str], None],
    clock: Callable[[], dt.datetime],
) -> int:
    """``incidents -w``, as ``kubectl get -w``: the incidents now, then one more row (or object) for each
    change the API's watch reports, until ``timeout`` seconds (the API server ends the watch) or Ctrl-C.
    Table rows keep the first table's column widths; other formats print one object per change."""
    every = namespace is None
    wide = fmt == "wide"
    objs, version = api.list_incidents_versioned(namespace)
    current = chosen(objs)
    widths: list[int] = []
    if fmt in ("table", "wide"):
        cells = [incident_headers(all_namespaces=every, wide=wide)]
        cells += [incident_cells(incident_summary(o), clock(), all_namespaces=every, wide=wide) for o in current]
        widths = column_widths(cells)
        write(table_lines(cells, widths))

    def one(obj: Mapping[str, Any]) -> str:
        if fmt in ("table", "wide"):
            row = incident_cells(incident_summary(obj), clock(), all_namespaces=every, wide=wide)
            return table_lines([row], widths)
        if fmt == "name":
            return resource_name(obj) + "\n"
        if fmt.startswith(JSONPATH):
            return dump(without_managed_fields(obj), fmt)
        return dump(incident_summary(obj), fmt)

    if fmt not in ("table", "wide"):
        for obj in current:
            write(one(obj))
    for _kind, obj in api.watch_incidents(namespace, version, timeout):
        if chosen([obj]):
            write(one(obj))
    return EXIT_OK


def as_list(objs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The objects as ``kubectl get -o json`` wraps them, without managedFields."""
    return {"apiVersion": "v1", "kind": "List", "items": [without_managed_fields(o) for o in objs]}


def without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(obj)
    data["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return data


def _evidence_configmaps(api: Api, namespace: str, name: str) -> list[dict[str, Any]]:
    cms = api.list_configmaps(namespace, f"{names.LABEL_INCIDENT}={name}")
    return [c for c in cms if names.LABEL_PHASE in ((c.get("metadata") or {}).get("labels") or {})]


def show(api: Api, namespace: str, name: str, *, fmt: str, now: dt.datetime) -> Result:
    obj = _require(api, namespace, name)
    inc = _model(obj)
    configmaps: list[dict[str, Any]] | None
    try:
        configmaps = _evidence_configmaps(api, namespace, name)
    except Exception:  # evidence listed in status is still shown; only the existence check is lost
        configmaps = None
    chunks = evidence_chunks([r.dump() for r in inc.status.evidence], configmaps)
    if fmt == "name":
        return EXIT_OK, resource_name(obj) + "\n"
    if is_data(fmt):
        data = without_managed_fields(obj)
        data["evidenceChunks"] = chunks
        return EXIT_OK, dump(data, fmt)
    return EXIT_OK, render_show(inc, chunks, now)  # wide: the same, show has every field already


def postmortem(api: Api, namespace: str, name: str, *, fmt: str, generated: bool = False) -> Result:
    """The draft in ``postmortem.md``. Once a person has edited it, the operator writes its newer draft to
    ``postmortem.generated.md`` instead: ``generated`` prints that one, and a note says when it differs."""
    inc = _model(_require(api, namespace, name))
    cm_name = inc.status.postmortem or f"{name}-postmortem"
    cm = api.get_configmap(namespace, cm_name)
    data = (cm or {}).get("data") or {}
    key = GENERATED_KEY if generated else POSTMORTEM_KEY
    text = data.get(key)
    if not text:
        due = f"; due {stamp(inc.status.postmortem_due)}" if inc.status.postmortem_due else ""
        where = f"ConfigMap {cm_name} has no {key}" if cm else f"no ConfigMap {cm_name}"
        raise CliError(f"no post-mortem draft for {name} yet ({where}){due}", EXIT_NOT_FOUND)
    newer = data.get(GENERATED_KEY)
    if not generated and newer and newer != text:
        print(
            f"note: {name}'s draft was edited; the operator's newer draft is in {GENERATED_KEY} (--generated)",
            file=sys.stderr,
        )
    if fmt == "table":
        return EXIT_OK, text if text.endswith("\n") else text + "\n"
    doc = {"namespace": namespace, "incident": name, "configMap": cm_name, "key": key, "markdown": text}
    return EXIT_OK, dump(doc, fmt)


def evidence(api: Api, namespace: str, name: str, *, out_dir: Path, fmt: str) -> Result:
    inc = _model(_require(api, namespace, name))
    configmaps = _evidence_configmaps(api, namespace, name)
    if not configmaps:
        raise CliError(
            f"no evidence for {name} yet (no ConfigMap labelled {names.LABEL_INCIDENT}={name})", EXIT_NOT_FOUND
        )
    plan = ev.plan_export(name, [ev.chunk_of(cm) for cm in configmaps])
    found = {cm["metadata"]["name"] for cm in configmaps}
    lost = [r.name for r in inc.status.evidence if r.name not in found]
    if lost:
        plan = ev.ExportPlan(
            plan.folder,
            plan.files,
            plan.missing + tuple((r.phase, f"(chunk {r.name})") for r in inc.status.evidence if r.name in lost),
            (*plan.notes, *(f"{n} is listed in status.evidence but does not exist" for n in lost)),
        )
    try:
        root = ev.write_export(plan, out_dir)
    except OSError as e:
        raise CliError(f"cannot write to {out_dir}: {e.strerror or e}", EXIT_ERROR) from e
    code = EXIT_UNVERIFIED if (plan.manifests or lost) and not plan.verified else EXIT_OK
    if fmt == "table":
        return code, ev.render_export(plan, root)
    return code, dump(ev.export_summary(plan, root), fmt)


# ------------------------------------------------------------------------------ write
def _open(inc: ZentinelIncident, doing: str) -> None:
    st = inc.status
    if not lc.is_open(st):
        raise CliError(
            f"{inc.metadata.name} is already resolved (by {st.resolved_by or '-'} at {stamp(st.resolved_at)}); "
            f"nothing to {doing}",
            EXIT_REFUSED,
        )


def _ask(api: Api, namespace: str, name: str, action: str, *, by: str, note: str | None, fmt: str) -> Result:
    """Acknowledge or resolve by patching the spec: what to patch (or why not) is :func:`acks.person_request`'s."""
    obj = _require(api, namespace, name)
    decided = acks.person_request(
        action, by=by, name=name, status=_model(obj).status, human=lc.human_input(obj), note=note
    )
    if isinstance(decided, acks.Refusal):
        raise CliError(decided.reason, EXIT_REFUSED)
    api.patch_incident(namespace, name, decided.patch)
    data = {"namespace": namespace, "incident": name, "patch": decided.patch}
    then = "records it" if action == acks.ACKNOWLEDGE else "closes it"
    return _done(fmt, data, f"{decided.message}; the operator {then} on its next pass")


def ack(api: Api, namespace: str, name: str, *, by: str, fmt: str) -> Result:
    return _ask(api, namespace, name, acks.ACKNOWLEDGE, by=by, note=None, fmt=fmt)


def resolve(api: Api, namespace: str, name: str, *, by: str, note: str | None, fmt: str) -> Result:
    return _ask(api, namespace, name, acks.RESOLVE, by=by, note=note, fmt=fmt)


def choose_pending(records: Sequence[RemediationRecord], action_id: str | None) -> RemediationRecord:
    """The remediation to approve: ``action_id``'s record, or the last one waiting for approval."""
    if action_id is None:
        pending = pending_approvals(records)
        if not pending:
            raise CliError("nothing is pending approval", EXIT_REFUSED)
        return pending[-1]
    matching = [r for r in records if r.id == action_id]
    if not matching:
        known = ", ".join(r.id for r in records) or "none"
        raise CliError(f"no remediation {action_id!r} (remediations: {known})", EXIT_NOT_FOUND)
    rec = matching[-1]
    if rec.state != PENDING_APPROVAL:
        raise CliError(f"remediation {action_id} is {rec.state}, not {PENDING_APPROVAL}", EXIT_REFUSED)
    return rec


def decide(
    api: Api,
    namespace: str,
    name: str,
    action_id: str | None,
    *,
    by: str,
    fmt: str,
    reject: bool = False,
    reason: str | None = None,
) -> Result:
    """Approve or reject: append to ``spec.approvals``. The list is replaced whole by a merge patch, so
    the patch carries the resourceVersion it was read at and is retried when someone else wrote in
    between. The answer shows the change decided on (the record's preview diff)."""
    verb = "reject" if reject else "approve"
    for _ in range(_APPROVE_ATTEMPTS):
        obj = _require(api, namespace, name)
        inc = _model(obj)
        _open(inc, f"{verb}: its remediations no longer run")
        rec = choose_pending(inc.status.remediations, action_id)
        earlier = approvals(inc).get(rec.id)
        if earlier is not None:
            done = "rejected" if earlier.decision == Decision.REJECT else "approved"
            raise CliError(f"{rec.id} is already {done} by {earlier.by}", EXIT_REFUSED)
        entry: dict[str, Any] = {"actionId": rec.id, "by": by}
        if reject:
            entry["decision"] = Decision.REJECT.value
        if reason:
            entry["reason"] = reason
        current = list((obj.get("spec") or {}).get("approvals") or [])
        patch = {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "spec": {"approvals": [*current, entry]},
        }
        try:
            api.patch_incident(namespace, name, patch)
        except Exception as e:
            if k8s.is_conflict(e):
                continue
            raise
        data = {
            "namespace": namespace,
            "incident": name,
            "actionId": rec.id,
            "action": rec.action,
            "by": by,
            "decision": entry.get("decision", Decision.APPROVE.value),
            "diff": rec.diff,
        }
        if reject:
            text = f"{name}: {rec.action} ({rec.id}) rejected by {by}; it is not carried out, the ladder goes on"
        else:
            text = f"{name}: {rec.action} ({rec.id}) approved by {by}; the operator runs it on its next pass"
        change = rec.diff or "(no preview recorded: the operator works it out when it runs)"
        return _done(fmt, data, f"{text}\n{'Rejected' if reject else 'Approved'} change:\n{change}")
    raise CliError(f"{name} kept changing while deciding; try again", EXIT_ERROR)
