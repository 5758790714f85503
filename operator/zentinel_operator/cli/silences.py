"""``zentinelctl silence add|list|expire``, like ``amtool silence``: a ``ZentinelSilence`` holds the pages (and,
with ``--remediation``, the remediation) of matching incidents until it ends.

The body and the table are pure functions; the commands go through :class:`~.kube.Api`. A silence's state
comes from :func:`zentinel_operator.core.silences.state` (spec and clock), as the operator decides it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..core import silences as rules
from ..models.common import Category
from ..models.silence import SilenceState, ZentinelSilence
from ..names import API_VERSION, KIND_SILENCE, SINGULAR_SILENCE
from .commands import listed
from .exits import EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliError
from .kube import Api
from .render import NONE, dump, is_data, one_line, parse_time, resource_name, stamp, table, when

Result = tuple[int, str]
GENERATE_NAME = "silence-"


def category_arg(text: str) -> str:
    """A category by its name, in any case (``processcrash`` -> ``ProcessCrash``); ``ValueError`` otherwise."""
    for c in Category:
        if c.value.lower() == text.strip().lower():
            return c.value
    raise ValueError(f"{text!r} is not a category ({', '.join(c.value for c in Category)})")


def time_arg(text: str) -> dt.datetime:
    """An RFC 3339 time (``2026-11-27T03:00:00Z``); without a zone it is UTC. ``ValueError`` otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time (RFC 3339, e.g. 2026-11-27T03:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def silence_body(
    *,
    name: str | None,
    zentinel: str | None,
    categories: Sequence[str],
    severities: Sequence[str],
    starts: dt.datetime | None,
    ends: dt.datetime,
    by: str,
    comment: str,
    remediation: bool,
) -> dict[str, Any]:
    """The ``ZentinelSilence`` to create; without ``name`` the API server names it (``silence-xxxxx``)."""
    matchers: dict[str, Any] = {}
    if zentinel:
        matchers["zentinel"] = zentinel
    if categories:
        matchers["categories"] = list(dict.fromkeys(categories))
    if severities:
        matchers["severities"] = list(dict.fromkeys(severities))
    if not matchers:
        raise CliError("name at least one matcher: --zentinel, --category or --severity", EXIT_USAGE)
    if not comment.strip():
        raise CliError("--comment is required: say why (for example the maintenance ticket)", EXIT_USAGE)
    if starts is not None and ends < starts:
        raise CliError("the silence would end before it starts (--until before --start)", EXIT_USAGE)
    spec: dict[str, Any] = {
        "matchers": matchers,
        "endsAt": _iso(ends),
        "createdBy": by,
        "comment": comment,
        "silenceRemediation": remediation,
    }
    if starts is not None:
        spec["startsAt"] = _iso(starts)
    meta: dict[str, Any] = {"name": name} if name else {"generateName": GENERATE_NAME}
    return {"apiVersion": API_VERSION, "kind": KIND_SILENCE, "metadata": meta, "spec": spec}


def _model(obj: Mapping[str, Any]) -> ZentinelSilence:
    try:
        return ZentinelSilence.model_validate(dict(obj))
    except ValidationError as e:
        raise CliError(f"silence {obj['metadata']['name']} is malformed: {one_line(e, 300)}") from e


def matchers_text(silence: ZentinelSilence) -> str:
    """``zentinel=edge category=ProcessCrash severity=SEV3,SEV4``."""
    m = silence.spec.matchers
    parts = [f"zentinel={m.zentinel}"] if m.zentinel else []
    if m.categories:
        parts.append("category=" + ",".join(c.value for c in m.categories))
    if m.severities:
        parts.append("severity=" + ",".join(s.value for s in m.severities))
    return " ".join(parts) or NONE


def silence_row(obj: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """One silence in machine form (what ``silence list -o json`` prints); the state as of ``now``."""
    s = _model(obj)
    start = rules.starts_at(s)
    m = s.spec.matchers
    return {
        "namespace": s.metadata.namespace,
        "name": s.metadata.name,
        "state": rules.state(s, now).value,
        "zentinel": m.zentinel,
        "categories": [c.value for c in m.categories],
        "severities": [v.value for v in m.severities],
        "silenceRemediation": s.spec.silence_remediation,
        "startsAt": _iso(start) if start else None,
        "endsAt": _iso(s.spec.ends_at),
        "createdBy": s.spec.created_by,
        "comment": s.spec.comment,
        "matchers": matchers_text(s),
    }


def render_silences(rows: Sequence[Mapping[str, Any]], now: dt.datetime, *, all_namespaces: bool, wide: bool) -> str:
    headers = ["NAME", "STATE", "MATCHERS", "HOLDS", "ENDS", "CREATED-BY", "COMMENT"] + (["STARTS"] if wide else [])
    lines = []
    for r in rows:
        line = [
            r["name"],
            r["state"],
            r["matchers"],
            "pages,remediation" if r["silenceRemediation"] else "pages",
            when(r["endsAt"], now),
            r["createdBy"],
            one_line(r["comment"], None if wide else 60),
        ]
        if wide:
            line.append(stamp(r["startsAt"]))
        lines.append([r["namespace"] or "", *line] if all_namespaces else line)
    return table((["NAMESPACE"] if all_namespaces else []) + headers, lines)


def list_silences(api: Api, namespace: str | None, *, fmt: str, now: dt.datetime, active_only: bool = False) -> Result:
    objs = sorted(
        api.list_silences(namespace),
        key=lambda o: ((o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]),
    )
    rows = [silence_row(o, now) for o in objs]
    if active_only:
        keep = {r["name"] for r in rows if r["state"] == SilenceState.ACTIVE.value}
        objs = [o for o in objs if o["metadata"]["name"] in keep]
        rows = [r for r in rows if r["name"] in keep]
    return listed(
        objs,
        rows,
        fmt=fmt,
        namespace=namespace,
        what="active silences" if active_only else "silences",
        render=lambda: render_silences(rows, now, all_namespaces=namespace is None, wide=fmt == "wide"),
        singular=SINGULAR_SILENCE,
    )


def _answer(fmt: str, obj: Mapping[str, Any], now: dt.datetime, text: str) -> Result:
    if fmt == "name":
        return EXIT_OK, resource_name(obj, SINGULAR_SILENCE) + "\n"
    if is_data(fmt):
        return EXIT_OK, dump(silence_row(obj, now), fmt)
    return EXIT_OK, text + "\n"


def add(api: Api, namespace: str, body: dict[str, Any], *, fmt: str, now: dt.datetime) -> Result:
    created = api.create_silence(namespace, body)
    row = silence_row(created, now)
    holds = "pages and remediation" if row["silenceRemediation"] else "pages"
    start = parse_time(row["startsAt"])
    since = "" if start is None or start <= now else f" from {when(start, now)}"
    text = (
        f"silence {row['name']} holds the {holds} of incidents with {row['matchers']}{since} until "
        f"{when(row['endsAt'], now)}"
    )
    return _answer(fmt, created, now, text)


def expire(api: Api, namespace: str, name: str, *, fmt: str, now: dt.datetime) -> Result:
    """End a silence now (``spec.endsAt``; a silence not started yet gets ``startsAt`` now too). It stays, Expired."""
    obj = api.get_silence(namespace, name)
    if obj is None:
        raise CliError(f'silence "{name}" not found in namespace "{namespace}"', EXIT_NOT_FOUND)
    s = _model(obj)
    current = rules.state(s, now)
    if current == SilenceState.EXPIRED:
        raise CliError(f"silence {name} already ended at {stamp(s.spec.ends_at)}", EXIT_REFUSED)
    spec: dict[str, Any] = {"endsAt": _iso(now)}
    if current == SilenceState.PENDING:
        spec["startsAt"] = _iso(now)
    updated = api.patch_silence(namespace, name, {"spec": spec})
    return _answer(fmt, updated, now, f"silence {name} expired; what it held is owed again from the next pass")
