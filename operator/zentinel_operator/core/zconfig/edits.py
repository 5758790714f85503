"""The edits the operator makes to a config, and their revert.

Each edit refuses a config that is already invalid and never returns text that fails
:func:`~.checks.check_config`; it raises :class:`~.undo.ConfigEditError` with the reason instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from zentinel_operator.core import kdl
from zentinel_operator.core.kdl import PathStep, Scalar

from .checks import (
    ConfigCheck,
    RouteRateLimit,
    check_config,
    config_revision,
    rate_limit_filters,
    rate_limit_key_problem,
    route_filter_ids,
    target_address,
    target_nodes,
)
from .primitives import (
    op_insert_child,
    op_reinsert,
    op_remove_node,
    op_replace_first_arg,
    op_uninsert,
    op_unreplace,
    reparse,
    resolve,
)
from .undo import Change, ConfigEditError, EditResult, UndoRecord, unified_diff

_U32_MAX = 2**32 - 1
_I64_MAX = 2**63 - 1


def _require_valid(text: str, what: str) -> ConfigCheck:
    check = check_config(text)
    if not check.valid:
        raise ConfigEditError(f"refusing to {what}: the config is already invalid: " + "; ".join(check.errors))
    return check


def _finish(original: str, text: str, action: str, summary: str, changes: list[Change], name: str) -> EditResult:
    check = check_config(text)
    if not check.valid:
        raise ConfigEditError(f"refusing to {summary}: the result would be invalid: " + "; ".join(check.errors))
    undo = UndoRecord(
        action=action,
        summary=summary,
        changes=tuple(changes),
        before_revision=config_revision(original),
        after_revision=config_revision(text),
    )
    return EditResult(text=text, diff=unified_diff(original, text, name), undo=undo)


def _check_count(value: int | None, what: str, upper: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigEditError(f"{what} must be a whole number, not {value!r}")
    if not 1 <= value <= upper:
        raise ConfigEditError(f"{what} must be between 1 and {upper}, not {value}")


def _set_children(
    text: str, block_path: tuple[PathStep, ...], values: Sequence[tuple[str, Scalar]], changes: list[Change]
) -> str:
    """Set ``name value`` children of an existing block: replace the value of a child that exists
    (refusing duplicates), insert one that does not."""
    for name, value in values:
        doc = reparse(text)
        block = resolve(doc, block_path)
        if block is None:  # pragma: no cover - callers create the block first
            raise ConfigEditError(f"cannot find {kdl.format_path(block_path)}")
        same = block.children_named(name)
        if len(same) > 1:
            raise ConfigEditError(
                f"{kdl.format_path(block_path)} sets {name} {len(same)} times (lines "
                f"{', '.join(str(n.line) for n in same)}); fix that by hand before the operator edits it"
            )
        literal = kdl.format_value(value)
        step = PathStep(name)
        if same:
            if not same[0].args:
                raise ConfigEditError(f"line {same[0].line}: {name} has no value; fix that by hand")
            current = same[0].args[0].value
            if type(current) is type(value) and current == value:
                continue  # already so (perhaps written differently, e.g. a bare identifier)
            text, change = op_replace_first_arg(doc, (*block_path, step), literal)
        else:
            text, change = op_insert_child(doc, block_path, step, [f"{name} {literal}"])
        if change is not None:
            changes.append(change)
    return text


def set_limits(
    text: str,
    *,
    max_total_connections: int | None,
    max_connections_per_client: int | None,
    name: str = "zentinel.kdl",
) -> EditResult:
    """Set ``limits { max-total-connections N; max-connections-per-client N }``: update the values
    that exist, add those that do not (creating ``limits`` after the last block if needed), leave
    everything else as it is. ``None`` leaves a setting alone."""
    _check_count(max_total_connections, "max-total-connections", _I64_MAX)
    _check_count(max_connections_per_client, "max-connections-per-client", _I64_MAX)
    values: list[tuple[str, Scalar]] = []
    if max_total_connections is not None:
        values.append(("max-total-connections", max_total_connections))
    if max_connections_per_client is not None:
        values.append(("max-connections-per-client", max_connections_per_client))
    if not values:
        raise ConfigEditError("set_limits needs max_total_connections and/or max_connections_per_client")
    _require_valid(text, "set limits")
    summary = "set limits " + ", ".join(f"{k} {v}" for k, v in values)
    changes: list[Change] = []
    doc = reparse(text)
    path = (PathStep("limits"),)
    if resolve(doc, path) is None:
        lines = ["limits {", *(f"\t{k} {kdl.format_value(v)}" for k, v in values), "}"]
        new_text, change = op_insert_child(doc, (), PathStep("limits"), lines)
        changes.append(change)
    else:
        new_text = _set_children(text, path, values, changes)
    result = _finish(text, new_text, "set_limits", summary, changes, name)
    got = check_config(result.text).limits
    for k, v in values:
        if got.get(k) != v:  # pragma: no cover - defensive
            raise ConfigEditError(f"internal error: after the edit {k} reads {got.get(k)}, not {v}")
    return result


def remove_targets(
    text: str,
    upstream_id: str,
    addresses: Sequence[str],
    *,
    missing_ok: bool = False,
    name: str = "zentinel.kdl",
) -> EditResult:
    """Take the ``target`` nodes with these addresses out of upstream ``upstream_id``.

    Refuses when an address is not a target of that upstream (unless ``missing_ok``), and when the
    upstream would be left without any target (Zentinel rejects such an upstream)."""
    if isinstance(addresses, str):
        raise ConfigEditError("addresses must be a list of host:port strings, not one string")
    wanted = list(dict.fromkeys(addresses))
    if not wanted:
        raise ConfigEditError("remove_targets needs at least one address")
    check = _require_valid(text, f"remove targets from upstream '{upstream_id}'")
    if upstream_id not in check.upstreams:
        raise ConfigEditError(
            f"there is no upstream '{upstream_id}' (upstreams: {', '.join(sorted(check.upstreams)) or 'none'})"
        )
    doc = reparse(text)
    upstream = resolve(doc, (PathStep("upstreams"), PathStep("upstream", upstream_id)))
    assert upstream is not None
    nodes = target_nodes(upstream)
    present = [target_address(t) for t in nodes]
    if not nodes and upstream.child("address") is not None:
        raise ConfigEditError(
            f"upstream '{upstream_id}' names its only target with the 'address' shorthand; it cannot be removed"
        )
    unknown = [a for a in wanted if a not in present]
    if unknown and not missing_ok:
        raise ConfigEditError(
            f"upstream '{upstream_id}' has no target {', '.join(unknown)} (its targets: "
            f"{', '.join(a for a in present if a) or 'none'})"
        )
    to_remove = [a for a in wanted if a in present]
    remaining = [a for a in present if a not in to_remove]
    if not remaining:
        raise ConfigEditError(
            f"refusing to remove {', '.join(to_remove)}: upstream '{upstream_id}' would have no target left, "
            "and Zentinel rejects an upstream without targets"
        )
    if to_remove:
        summary = (
            f"remove target{'s' if len(to_remove) > 1 else ''} {', '.join(to_remove)} from upstream '{upstream_id}'"
        )
    else:
        summary = f"no target to remove from upstream '{upstream_id}' ({', '.join(unknown)} already absent)"
    changes: list[Change] = []
    new_text = text
    base = (PathStep("upstreams"), PathStep("upstream", upstream_id))
    for addr in to_remove:
        while True:
            doc = reparse(new_text)
            up = resolve(doc, base)
            assert up is not None
            victim = next((t for t in target_nodes(up) if target_address(t) == addr), None)
            if victim is None:
                break
            in_targets_block = victim not in up.children
            path = (
                (*base, PathStep("targets"), PathStep("target", addr))
                if in_targets_block
                else (*base, PathStep("target", addr))
            )
            new_text, change = op_remove_node(doc, path, victim)
            changes.append(change)
    result = _finish(text, new_text, "remove_targets", summary, changes, name)
    left = check_config(result.text).upstreams.get(upstream_id, ())
    if any(a in left for a in to_remove):  # pragma: no cover - defensive
        raise ConfigEditError("internal error: a target is still present after removal")
    return result


def enable_rate_limit(
    text: str,
    route_ids: Sequence[str],
    *,
    requests_per_second: int,
    burst: int,
    key: str = "client-ip",
    name: str = "zentinel.kdl",
) -> EditResult:
    """Rate-limit these routes with ``policies { rate-limit { requests-per-second; burst; key } }``.

    Updates an existing route rate-limit in place, or adds one (creating ``policies`` if needed).
    Refuses a route that uses a rate-limit *filter*: Zentinel registers the filter after the route's
    policies, so the new limit would silently not apply."""
    if isinstance(route_ids, str):
        raise ConfigEditError("route_ids must be a list of route ids, not one string")
    routes = list(dict.fromkeys(route_ids))
    if not routes:
        raise ConfigEditError("enable_rate_limit needs at least one route id")
    _check_count(requests_per_second, "requests-per-second", _U32_MAX)
    _check_count(burst, "burst", _U32_MAX)
    key_problem = rate_limit_key_problem(key)
    if key_problem:
        raise ConfigEditError(f"rate-limit key: {key_problem}")
    check = _require_valid(text, "enable rate limiting")
    missing_routes = [r for r in routes if r not in check.route_upstreams]
    if missing_routes:
        raise ConfigEditError(
            f"no route {', '.join(repr(r) for r in missing_routes)} (routes: {', '.join(check.routes) or 'none'})"
        )
    doc = reparse(text)
    rl_filters = rate_limit_filters(doc)
    for rid in routes:
        route = resolve(doc, (PathStep("routes"), PathStep("route", rid)))
        assert route is not None
        shadow = [f for f in route_filter_ids(route) if f in rl_filters]
        if shadow:
            raise ConfigEditError(
                f"route '{rid}' uses rate-limit filter '{shadow[0]}', which Zentinel applies instead of a "
                "policies rate-limit; change that filter's max-rps/burst instead"
            )
    values: list[tuple[str, Scalar]] = [("requests-per-second", requests_per_second), ("burst", burst), ("key", key)]
    rl_lines = ["rate-limit {", *(f"\t{k} {kdl.format_value(v)}" for k, v in values), "}"]
    changes: list[Change] = []
    new_text = text
    for rid in routes:
        route_path = (PathStep("routes"), PathStep("route", rid))
        policies_path = (*route_path, PathStep("policies"))
        rl_path = (*policies_path, PathStep("rate-limit"))
        doc = reparse(new_text)
        if resolve(doc, rl_path) is not None:
            new_text = _set_children(new_text, rl_path, values, changes)
        elif resolve(doc, policies_path) is not None:
            new_text, change = op_insert_child(doc, policies_path, PathStep("rate-limit"), rl_lines)
            changes.append(change)
        else:
            lines = ["policies {", *("\t" + ln for ln in rl_lines), "}"]
            new_text, change = op_insert_child(doc, route_path, PathStep("policies"), lines)
            changes.append(change)
    summary = (
        f"rate-limit route{'s' if len(routes) != 1 else ''} {', '.join(routes)} to {requests_per_second} rps "
        f"(burst {burst}, key {key})"
    )
    result = _finish(text, new_text, "enable_rate_limit", summary, changes, name)
    got = check_config(result.text).route_rate_limits
    for rid in routes:
        if got.get(rid) != RouteRateLimit(requests_per_second, burst, key):  # pragma: no cover - defensive
            raise ConfigEditError(f"internal error: route '{rid}' reads {got.get(rid)} after the edit")
    return result


def revert(text: str, undo: UndoRecord, *, name: str = "zentinel.kdl") -> EditResult:
    """Undo an edit on the current ``text``, which may have changed elsewhere since.

    Removed targets are put back next to their old neighbours; values an edit replaced are restored
    only if they still hold what the edit wrote (otherwise someone changed them since, and the
    revert is refused rather than overwriting that); nodes an edit inserted are removed if they are
    unchanged. The result's ``undo`` re-applies the edit."""
    try:
        doc = kdl.parse(text)
    except kdl.KdlError as exc:
        raise ConfigEditError(f"cannot revert '{undo.summary}': the current config is not KDL v2 ({exc})") from exc
    changes: list[Change] = []
    notes: list[str] = []
    reinserted: set[tuple[PathStep, ...]] = set()
    new_text = text
    for change in reversed(undo.changes):
        doc = reparse(new_text)
        if change.op == "replace":
            new_text, inverse = op_unreplace(doc, change)
            changes.append(inverse)
        elif change.op == "insert":
            new_text, maybe, note = op_uninsert(doc, change)
            if maybe is not None:
                changes.append(maybe)
            if note:
                notes.append(note)
        else:
            # A node is skipped when someone already put it back; but when the edit removed several
            # nodes with the same path (a target listed twice), each is put back.
            if change.path not in reinserted and resolve(doc, change.path) is not None:
                notes.append(f"{kdl.format_path(change.path)} is already present; not adding it again")
                continue
            new_text, inverse = op_reinsert(doc, change)
            reinserted.add(change.path)
            changes.append(inverse)
    result = _finish(text, new_text, f"revert:{undo.action}", f"revert ({undo.summary})", changes, name)
    return EditResult(text=result.text, diff=result.diff, undo=result.undo, notes=tuple(notes))
