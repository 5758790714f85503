"""Zentinel's KDL config: structural checks and comment-preserving edits, as pure functions.

What "valid" means here follows the real parser, ``zentinel-config`` 0.6.45 (``src/kdl/mod.rs``,
``kdl/routes.rs``, ``kdl/upstreams.rs``, ``kdl/helpers.rs``, ``kdl/server.rs``, ``validation.rs``),
plus a few checks that matter to incident response (e.g. the runbook's ``limits { max-connections }``,
which Zentinel silently ignores):

- KDL v2 (``ckdl`` decides); top-level blocks from a closed list (``server`` and ``version`` are the
  deprecated aliases the real parser still takes); ``system`` and ``listeners`` required.
- ``limits`` keys the single-file parser reads: ``max-header-size``, ``max-header-count``,
  ``max-body-size``, ``max-connections-per-client``, ``max-total-connections``,
  ``max-in-flight-requests`` (``parse_limits_config`` in ``kdl/mod.rs``). ``max-connections`` is a
  ``system`` key.
- Route rate limiting: ``route "id" { policies { rate-limit { requests-per-second N; burst N;
  key "client-ip" } } }`` (``parse_route_rate_limit`` in ``kdl/routes.rs``; registered per route in
  ``zentinel-proxy``'s ``proxy/mod.rs``, where a rate-limit *filter* on the same route is registered
  afterwards and replaces it).
- Upstream targets: ``target "host:port" weight=N``, ``target { address "..." }``,
  ``target address="..."``, a ``targets { ... }`` wrapper, or the single-target shorthand
  ``address "..."`` on the upstream (``parse_upstream_targets`` in ``kdl/helpers.rs``).

Edits never return text that fails :func:`check_config`; they raise :class:`ConfigEditError` with
the reason instead. Each edit returns an :class:`UndoRecord` that anchors on node paths and the
text it removed or inserted (never on offsets), so it can be reverted after unrelated parts of the
file changed, and reverting right after the edit gives back the original text byte for byte.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from zentinel_operator.core import kdl
from zentinel_operator.core.kdl import KdlDocument, KdlNode, PathStep, Scalar

__all__ = [
    "KNOWN_LIMITS_KEYS",
    "KNOWN_TOP_LEVEL_BLOCKS",
    "RATE_LIMIT_KEYS",
    "Change",
    "ConfigCheck",
    "ConfigEditError",
    "EditResult",
    "RouteRateLimit",
    "UndoRecord",
    "check_config",
    "config_revision",
    "enable_rate_limit",
    "remove_targets",
    "revert",
    "set_limits",
    "target_address",
    "unified_diff",
]

KNOWN_TOP_LEVEL_BLOCKS: tuple[str, ...] = (
    "schema-version",
    "system",
    "listeners",
    "routes",
    "upstreams",
    "filters",
    "agents",
    "waf",
    "namespace",
    "limits",
    "observability",
    "rate-limits",
    "cache",
    "include",
)
# Still accepted by zentinel-config 0.6.45 (kdl/mod.rs): "server" (deprecated) and "version".
_DEPRECATED_TOP_LEVEL = {"server": "system", "version": "schema-version"}
# Singleton blocks: when repeated, the last one wins (kdl/mod.rs, "last-wins semantics").
_SINGLETONS = frozenset({"system", "server", "waf", "limits", "observability", "rate-limits", "cache"})

KNOWN_LIMITS_KEYS: tuple[str, ...] = (
    "max-header-size",
    "max-header-count",
    "max-body-size",
    "max-connections-per-client",
    "max-total-connections",
    "max-in-flight-requests",
)
# Route rate-limit keys accepted by parse_route_rate_limit (kdl/routes.rs), plus "header:<name>".
RATE_LIMIT_KEYS: tuple[str, ...] = (
    "client-ip",
    "client_ip",
    "path",
    "route",
    "client-ip-and-path",
    "client_ip_and_path",
)
_U32_MAX = 2**32 - 1
_I64_MAX = 2**63 - 1
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?\Z")


class ConfigEditError(ValueError):
    """An edit (or revert) was refused; ``str(exc)`` says why in words a person can act on."""


def config_revision(text: str) -> str:
    """Content address of a config text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# =============================================================================================
# Checking
# =============================================================================================


@dataclass(frozen=True)
class RouteRateLimit:
    requests_per_second: int
    burst: int
    key: str


@dataclass(frozen=True)
class HealthCheck:
    """An upstream's active HTTP health check: the path Zentinel asks each target for."""

    path: str
    expected_status: int = 200


@dataclass(frozen=True)
class ConfigCheck:
    """Result of :func:`check_config`.

    ``valid`` is False when any error was found; errors name the line where the locator knows it.
    ``warnings`` are things Zentinel accepts but that are probably not what was meant. The typed
    view is filled from whatever could be read, even when the config is invalid (empty if the text
    is not KDL v2).
    """

    valid: bool
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    revision: str = ""
    upstreams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    routes: tuple[str, ...] = ()
    route_upstreams: dict[str, str | None] = field(default_factory=dict)
    route_rate_limits: dict[str, RouteRateLimit] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)  # upstream id -> its HTTP check
    system: dict[str, object] = field(default_factory=dict)
    auto_reload: bool = False
    has_include: bool = False


def _at(node: KdlNode) -> str:
    return f"line {node.line}: "


def _int_value(v: Scalar) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def target_address(node: KdlNode) -> str | None:
    """The address of a ``target`` node in any form the real parser accepts."""
    first = node.first_arg
    if isinstance(first, str):
        return first
    prop = node.prop("address")
    if prop is not None and isinstance(prop.value, str):
        return prop.value
    child = node.child("address")
    if child is not None and isinstance(child.first_arg, str):
        return child.first_arg
    return None


def _target_nodes(upstream: KdlNode) -> list[KdlNode]:
    out: list[KdlNode] = []
    for c in upstream.children:
        if c.name == "target":
            out.append(c)
        elif c.name == "targets":
            out.extend(t for t in c.children if t.name == "target")
    return out


def _http_health_check(upstream: KdlNode) -> HealthCheck | None:
    """``health-check { type "http" { path "/healthz"; expected-status 200 } }`` of an upstream."""
    hc = upstream.child("health-check")
    kind = hc.child("type") if hc is not None else None
    if kind is None or kind.first_arg != "http":
        return None
    path = kind.child("path")
    if path is None or not isinstance(path.first_arg, str) or not path.first_arg.startswith("/"):
        return None
    status = kind.child("expected-status")
    code = _int_value(status.first_arg) if status is not None else None
    return HealthCheck(path=path.first_arg, expected_status=code or 200)


def _upstream_targets(upstream: KdlNode) -> list[str]:
    """Addresses as ``parse_upstream_targets`` resolves them (targets without an address are skipped)."""
    addrs = [a for a in (target_address(t) for t in _target_nodes(upstream)) if a is not None]
    if not addrs:
        shorthand = upstream.child("address")
        if shorthand is not None and isinstance(shorthand.first_arg, str):
            addrs.append(shorthand.first_arg)
    return addrs


def _address_problem(address: str) -> str | None:
    """Why ``address`` is not ``host:port`` (port 1-65535), or None when it is."""
    if address != address.strip() or not address:
        return "it has surrounding whitespace or is empty"
    host, sep, port = address.rpartition(":")
    if not sep:
        return "it has no ':port'"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not a number from 1 to 65535"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not a valid IPv6 address"
        return None
    if ":" in host:
        return "an IPv6 address must be written in brackets, e.g. [::1]:8080"
    if not host:
        return "the host is empty"
    if not _HOSTNAME.match(host):
        return f"{host!r} is not a valid host name or IPv4 address"
    return None


def _rate_limit_key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return "the key must be a string"
    if key in RATE_LIMIT_KEYS:
        return None
    if key.startswith("header:"):
        return None if key[len("header:") :].strip() else "'header:' needs a header name, e.g. header:X-API-Key"
    return f"unknown key {key!r} (valid: {', '.join(RATE_LIMIT_KEYS)}, or header:<name>)"


def _rate_limit_filters(doc: KdlDocument) -> dict[str, KdlNode]:
    """Filters of ``type "rate-limit"`` by id."""
    out: dict[str, KdlNode] = {}
    for block in doc.nodes:
        if block.name != "filters":
            continue
        for f in block.children_named("filter"):
            type_node = f.child("type")
            ftype = f.prop("type")
            kind = type_node.first_arg if type_node is not None else (ftype.value if ftype is not None else None)
            if isinstance(f.first_arg, str) and kind == "rate-limit":
                out[f.first_arg] = f
    return out


def _route_filter_ids(route: KdlNode) -> list[str]:
    node = route.child("filters")
    if node is None:
        return []
    return [a.value for a in node.args if isinstance(a.value, str)]


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def check_config(text: str) -> ConfigCheck:
    """Check a Zentinel config text and read the parts the operator acts on."""
    revision = config_revision(text)
    try:
        doc = kdl.parse(text)
    except kdl.KdlError as exc:
        return ConfigCheck(valid=False, errors=(str(exc),), revision=revision)

    errors: list[str] = []
    warnings: list[str] = []
    top = doc.nodes
    has_include = any(n.name == "include" for n in top)
    # With includes, blocks and ids may live in another file: what this file alone cannot show is
    # reported as a warning rather than an error.
    missing = warnings if has_include else errors
    if has_include:
        warnings.append("this config uses 'include': the checks below only see this file, not the included ones")

    for n in top:
        if n.name in _DEPRECATED_TOP_LEVEL:
            warnings.append(f"{_at(n)}'{n.name}' is deprecated; write '{_DEPRECATED_TOP_LEVEL[n.name]}'")
        elif n.name not in KNOWN_TOP_LEVEL_BLOCKS:
            errors.append(
                f"{_at(n)}unknown top-level block '{n.name}' (Zentinel rejects the whole file)."
                f"{_did_you_mean(n.name, KNOWN_TOP_LEVEL_BLOCKS)} Valid blocks: {', '.join(KNOWN_TOP_LEVEL_BLOCKS)}"
            )
    for name in sorted({n.name for n in top if n.name in _SINGLETONS}):
        same = [n for n in top if n.name == name]
        if len(same) > 1:
            warnings.append(
                f"'{name}' appears {len(same)} times (lines {', '.join(str(n.line) for n in same)}); "
                "Zentinel uses only the last one"
            )

    # -- system ---------------------------------------------------------------------------------
    systems = [n for n in top if n.name in ("system", "server")]
    system: dict[str, object] = {}
    auto_reload = False
    if not systems:
        missing.append("missing the required 'system' block (e.g. system { worker-threads 0; max-connections 10000 })")
    else:
        sysnode = systems[-1]
        for c in sysnode.children:
            system.setdefault(c.name, c.first_arg)
        ar = sysnode.child("auto-reload")
        if ar is not None:
            if isinstance(ar.first_arg, bool):
                auto_reload = ar.first_arg
            else:
                shown = ar.args[0].raw if ar.args else "it"
                warnings.append(
                    f"{_at(ar)}auto-reload must be #true or #false; Zentinel ignores {shown} and does not reload"
                )
        for key in ("max-connections", "worker-threads", "graceful-shutdown-timeout-secs"):
            node = sysnode.child(key)
            if node is not None and _int_value(node.first_arg) is None:
                errors.append(f"{_at(node)}system {key} must be an integer")

    if not any(n.name == "listeners" for n in top):
        missing.append(
            'missing the required \'listeners\' block (e.g. listeners { listener "http" { address "0.0.0.0:8080" } })'
        )

    # -- limits -----------------------------------------------------------------------------------
    limits: dict[str, int] = {}
    limit_blocks = [n for n in top if n.name == "limits"]
    if limit_blocks:
        for c in limit_blocks[-1].children:
            value = _int_value(c.first_arg)
            if c.name == "max-connections":
                errors.append(
                    f"{_at(c)}'max-connections' does not belong in 'limits' (the runbook's mistake): Zentinel "
                    "ignores it there, so no limit is in force. Use 'max-total-connections' or "
                    "'max-connections-per-client' in 'limits', or 'max-connections' in 'system'"
                )
            elif c.name not in KNOWN_LIMITS_KEYS:
                warnings.append(
                    f"{_at(c)}limits key '{c.name}' is not read by Zentinel's parser and has no effect."
                    f"{_did_you_mean(c.name, KNOWN_LIMITS_KEYS)}"
                )
            if value is None:
                if c.name in KNOWN_LIMITS_KEYS:
                    errors.append(f"{_at(c)}limits {c.name} must be a whole number (Zentinel ignores anything else)")
            elif value < 0:
                errors.append(f"{_at(c)}limits {c.name} must not be negative")
            else:
                limits.setdefault(c.name, value)

    # -- upstreams ------------------------------------------------------------------------------
    upstreams: dict[str, tuple[str, ...]] = {}
    health_checks: dict[str, HealthCheck] = {}
    for block in (n for n in top if n.name == "upstreams"):
        for up in block.children_named("upstream"):
            uid = up.first_arg
            if not isinstance(uid, str):
                errors.append(f'{_at(up)}an upstream needs an id, e.g. upstream "api" {{ ... }}')
                continue
            if uid in upstreams:
                errors.append(f"{_at(up)}duplicate upstream id '{uid}'")
                continue
            addrs = _upstream_targets(up)
            upstreams[uid] = tuple(addrs)
            check = _http_health_check(up)
            if check is not None:
                health_checks[uid] = check
            if not addrs and up.child("discovery") is None:
                errors.append(
                    f"{_at(up)}upstream '{uid}' has no targets (add target \"host:port\" or a discovery block)"
                )
            for dup in sorted({a for a in addrs if addrs.count(a) > 1}):
                warnings.append(f"{_at(up)}upstream '{uid}' lists target '{dup}' {addrs.count(dup)} times")
            for t in _target_nodes(up):
                addr = target_address(t)
                if addr is None:
                    warnings.append(f"{_at(t)}a target of upstream '{uid}' has no address and is skipped by Zentinel")
                    continue
                problem = _address_problem(addr)
                if problem:
                    errors.append(f"{_at(t)}upstream '{uid}' target '{addr}' is not host:port: {problem}")
            shorthand = up.child("address")
            if shorthand is not None and not _target_nodes(up) and isinstance(shorthand.first_arg, str):
                problem = _address_problem(shorthand.first_arg)
                if problem:
                    errors.append(
                        f"{_at(shorthand)}upstream '{uid}' address '{shorthand.first_arg}' is not host:port: {problem}"
                    )

    # -- filters ----------------------------------------------------------------------------------
    filter_ids: set[str] = set()
    for block in (n for n in top if n.name == "filters"):
        for f in block.children_named("filter"):
            if isinstance(f.first_arg, str):
                filter_ids.add(f.first_arg)
    rl_filters = _rate_limit_filters(doc)

    # -- routes -------------------------------------------------------------------------------------
    routes: list[str] = []
    route_upstreams: dict[str, str | None] = {}
    route_rate_limits: dict[str, RouteRateLimit] = {}
    for block in (n for n in top if n.name == "routes"):
        for r in block.children_named("route"):
            rid = r.first_arg
            if not isinstance(rid, str):
                errors.append(f'{_at(r)}a route needs an id, e.g. route "api" {{ ... }}')
                continue
            if rid in route_upstreams:
                errors.append(f"{_at(r)}duplicate route id '{rid}'")
                continue
            routes.append(rid)
            up_node = r.child("upstream")
            up_ref = up_node.first_arg if up_node is not None and isinstance(up_node.first_arg, str) else None
            route_upstreams[rid] = up_ref
            is_static = r.child("static-files") is not None
            is_builtin = r.child("builtin-handler") is not None
            if up_ref is not None and is_static:
                errors.append(f"{_at(r)}route '{rid}' has both 'upstream' and 'static-files'; a route serves one kind")
            elif up_ref is not None and up_ref not in upstreams and up_node is not None:
                available = ", ".join(sorted(upstreams)) or "none"
                missing.append(
                    f"{_at(up_node)}route '{rid}' uses upstream '{up_ref}', which is not defined "
                    f"(defined upstreams: {available})"
                )
            elif up_ref is None and not is_static and not is_builtin:
                warnings.append(f"{_at(r)}route '{rid}' has no upstream, static-files or builtin-handler")
            for fid in _route_filter_ids(r):
                if fid not in filter_ids:
                    missing.append(f"{_at(r)}route '{rid}' uses filter '{fid}', which is not defined")
            policies = r.child("policies")
            rl = policies.child("rate-limit") if policies is not None else None
            if rl is not None:
                rps_node = rl.child("requests-per-second")
                rps = _int_value(rps_node.first_arg) if rps_node is not None else None
                burst_node = rl.child("burst")
                burst = _int_value(burst_node.first_arg) if burst_node is not None else None
                key_node = rl.child("key")
                rl_key = key_node.first_arg if key_node is not None else "client-ip"
                if rps is None:
                    errors.append(
                        f"{_at(rl)}route '{rid}' rate-limit needs requests-per-second as a whole number, "
                        "e.g. requests-per-second 100"
                    )
                key_problem = _rate_limit_key_problem(rl_key)
                if key_problem:
                    errors.append(f"{_at(key_node or rl)}route '{rid}' rate-limit: {key_problem}")
                if rps is not None and not key_problem:
                    route_rate_limits[rid] = RouteRateLimit(rps, burst if burst is not None else rps, str(rl_key))
                shadowing = [f for f in _route_filter_ids(r) if f in rl_filters]
                if shadowing:
                    warnings.append(
                        f"{_at(rl)}route '{rid}' also uses rate-limit filter '{shadowing[0]}', which Zentinel "
                        "registers after the route's policies rate-limit and so replaces it"
                    )

    return ConfigCheck(
        valid=not errors,
        errors=tuple(errors),
        warnings=tuple(warnings),
        revision=revision,
        upstreams=upstreams,
        routes=tuple(routes),
        route_upstreams=route_upstreams,
        route_rate_limits=route_rate_limits,
        limits=limits,
        health_checks=health_checks,
        system=system,
        auto_reload=auto_reload,
        has_include=has_include,
    )


# =============================================================================================
# Undo records
# =============================================================================================

ChangeOp = Literal["replace", "insert", "remove"]


@dataclass(frozen=True)
class Change:
    """One primitive text change, described by node paths and texts (never by offsets).

    - ``replace``: the first argument of the node at ``path`` went from ``before`` to ``after``
      (literal source text, e.g. ``10000`` -> ``500``).
    - ``insert``: the text ``after`` was inserted; it holds the node at ``path`` starting
      ``node_offset`` characters in, and that node's own text is ``node_text``.
    - ``remove``: the text ``before`` (holding the node at ``path``, whose own text is ``node_text``)
      was cut out of its parent. ``prev``/``next`` name the siblings around it and
      ``gap_before``/``gap_after`` the exact text between them and the cut, so that putting it
      back lands it where it was.
    """

    op: ChangeOp
    path: tuple[PathStep, ...]
    before: str = ""
    after: str = ""
    node_text: str = ""
    node_offset: int = 0
    prev: PathStep | None = None
    next: PathStep | None = None
    gap_before: str | None = None
    gap_after: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "op": self.op,
            "path": [_step_to_json(s) for s in self.path],
            "before": self.before,
            "after": self.after,
            "nodeText": self.node_text,
            "nodeOffset": self.node_offset,
            "prev": _step_to_json(self.prev) if self.prev else None,
            "next": _step_to_json(self.next) if self.next else None,
            "gapBefore": self.gap_before,
            "gapAfter": self.gap_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Change:
        op = data.get("op")
        if op not in ("replace", "insert", "remove"):
            raise ConfigEditError(f"undo record: unknown change {op!r}")
        raw_path = data.get("path")
        if not isinstance(raw_path, list) or not raw_path:
            raise ConfigEditError("undo record: a change has no node path")
        prev, nxt = data.get("prev"), data.get("next")
        node_offset = data.get("nodeOffset", 0)
        if not isinstance(node_offset, int) or isinstance(node_offset, bool):
            raise ConfigEditError("undo record: nodeOffset must be an integer")
        return cls(
            op=op,
            path=tuple(_step_from_json(s) for s in raw_path),
            before=_str_field(data, "before"),
            after=_str_field(data, "after"),
            node_text=_str_field(data, "nodeText"),
            node_offset=node_offset,
            prev=_step_from_json(prev) if prev is not None else None,
            next=_step_from_json(nxt) if nxt is not None else None,
            gap_before=_opt_str_field(data, "gapBefore"),
            gap_after=_opt_str_field(data, "gapAfter"),
        )


@dataclass(frozen=True)
class UndoRecord:
    """What an edit did, enough to revert it later. JSON-serialisable through :meth:`to_dict`."""

    action: str
    summary: str
    changes: tuple[Change, ...]
    before_revision: str
    after_revision: str

    FORMAT_VERSION = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.FORMAT_VERSION,
            "action": self.action,
            "summary": self.summary,
            "beforeRevision": self.before_revision,
            "afterRevision": self.after_revision,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> UndoRecord:
        if not isinstance(data, Mapping):
            raise ConfigEditError("undo record: expected an object")
        if data.get("version") != cls.FORMAT_VERSION:
            raise ConfigEditError(f"undo record: unsupported format version {data.get('version')!r}")
        changes = data.get("changes")
        if not isinstance(changes, list):
            raise ConfigEditError("undo record: 'changes' must be a list")
        parsed: list[Change] = []
        for c in changes:
            if not isinstance(c, Mapping):
                raise ConfigEditError("undo record: each change must be an object")
            parsed.append(Change.from_dict(c))
        return cls(
            action=_str_field(data, "action"),
            summary=_str_field(data, "summary"),
            changes=tuple(parsed),
            before_revision=_str_field(data, "beforeRevision"),
            after_revision=_str_field(data, "afterRevision"),
        )


@dataclass(frozen=True)
class EditResult:
    """The edited text, a unified diff from the input, and how to undo it. ``notes`` says what a
    revert skipped because it was already in place."""

    text: str
    diff: str
    undo: UndoRecord
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.undo.changes)


def _step_to_json(step: PathStep) -> list[object]:
    return [step.name] if step.arg is None else [step.name, step.arg]


def _step_from_json(raw: object) -> PathStep:
    if isinstance(raw, list) and raw and isinstance(raw[0], str) and len(raw) <= 2:
        if len(raw) == 1:
            return PathStep(raw[0])
        arg = raw[1]
        if isinstance(arg, str) or (isinstance(arg, int) and not isinstance(arg, bool)):
            return PathStep(raw[0], arg)
    raise ConfigEditError(f"undo record: bad path step {raw!r}")


def _str_field(data: Mapping[str, object], key: str) -> str:
    v = data.get(key, "")
    if not isinstance(v, str):
        raise ConfigEditError(f"undo record: {key!r} must be a string")
    return v


def _opt_str_field(data: Mapping[str, object], key: str) -> str | None:
    v = data.get(key)
    if v is not None and not isinstance(v, str):
        raise ConfigEditError(f"undo record: {key!r} must be a string or null")
    return v


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff (``a/name`` -> ``b/name``); empty when the texts are equal."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
    )
    out: list[str] = []
    for ln in lines:
        out.append(ln)
        if not ln.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


# =============================================================================================
# Locating nodes by path (Zentinel-aware)
# =============================================================================================


def _node_key(node: KdlNode) -> PathStep:
    """How a node is named in a path: targets by their address, others by their first string arg."""
    if node.name == "target":
        addr = target_address(node)
        return PathStep("target", addr)
    first = node.first_arg
    if isinstance(first, str) or (isinstance(first, int) and not isinstance(first, bool)):
        return PathStep(node.name, first)
    return PathStep(node.name)


def _step_matches(node: KdlNode, step: PathStep) -> bool:
    if node.name != step.name:
        return False
    if step.arg is None:
        return True
    key = _node_key(node)
    return type(key.arg) is type(step.arg) and key.arg == step.arg


@dataclass(frozen=True)
class _Block:
    """A place children live: a node's ``{...}`` or the document itself (``node is None``)."""

    node: KdlNode | None
    children: tuple[KdlNode, ...]
    content_start: int
    content_end: int


def _doc_block(doc: KdlDocument) -> _Block:
    start = 1 if doc.text.startswith("\ufeff") else 0
    return _Block(None, doc.nodes, start, len(doc.text))


def _node_block(node: KdlNode) -> _Block | None:
    if node.children_open is None or node.children_close is None:
        return None
    return _Block(node, node.children, node.children_open + 1, node.children_close)


def _resolve(doc: KdlDocument, path: Sequence[PathStep]) -> KdlNode | None:
    """The node at ``path``. At the top level a singleton block (``limits``, ``system``...) resolves
    to its last occurrence, the one Zentinel uses; below that, the first match (Zentinel reads the
    first child of a name). Repeated list blocks (``routes``, ``upstreams``) are all searched."""
    if not path:
        return None
    first = path[0]
    candidates = [n for n in doc.nodes if _step_matches(n, first)]
    if first.name in _SINGLETONS:
        candidates = candidates[-1:]
    for cand in candidates:
        node: KdlNode | None = cand
        for step in path[1:]:
            assert node is not None
            node = next((c for c in node.children if _step_matches(c, step)), None)
            if node is None:
                break
        if node is not None:
            return node
    return None


def _block_at(doc: KdlDocument, parent_path: Sequence[PathStep]) -> _Block | None:
    if not parent_path:
        return _doc_block(doc)
    node = _resolve(doc, parent_path)
    return _node_block(node) if node is not None else None


def _indent_unit(doc: KdlDocument) -> str:
    for node, _parents in doc.walk():
        if not node.own_line:
            continue
        own_indent = doc.text[node.outer_start : node.start]
        for c in node.children:
            if c.own_line:
                child_indent = doc.text[c.outer_start : c.start]
                if child_indent.startswith(own_indent) and len(child_indent) > len(own_indent):
                    return child_indent[len(own_indent) :]
    return "    "


def _line_indent(text: str, pos: int) -> str:
    ls = kdl.line_start(text, pos)
    j = ls
    while j < len(text) and text[j] in " \t":
        j += 1
    return text[ls:j]


def _newline(text: str) -> str:
    """The file's newline style (CRLF if it uses any)."""
    return "\r\n" if "\r\n" in text else "\n"


def _render(lines: Sequence[str], indent: str, unit: str, nl: str = "\n") -> str:
    """Own-line rendering of a node given as lines of KDL (nesting shown by leading tabs)."""
    out = []
    for ln in lines:
        depth = len(ln) - len(ln.lstrip("\t"))
        out.append(indent + unit * depth + ln.lstrip("\t") + nl)
    return "".join(out)


def _inline(lines: Sequence[str]) -> str:
    """One-line rendering of the same node: children joined by ``; ``."""
    result = ""
    prev_depth = 0
    for i, ln in enumerate(lines):
        depth = len(ln) - len(ln.lstrip("\t"))
        body = ln.lstrip("\t")
        if i and depth >= prev_depth and not lines[i - 1].endswith("{"):
            result += "; "
        elif i:
            result += " "
        result += body
        prev_depth = depth
    return result


# =============================================================================================
# Primitive operations (each returns the new text and the Change that describes it)
# =============================================================================================


def _reparse(text: str) -> KdlDocument:
    try:
        return kdl.parse(text)
    except kdl.KdlError as exc:  # pragma: no cover - the operations below only produce valid KDL
        raise ConfigEditError(f"internal error: an edit produced text that is not KDL v2 ({exc})") from exc


def _op_replace_first_arg(doc: KdlDocument, path: tuple[PathStep, ...], literal: str) -> tuple[str, Change | None]:
    node = _resolve(doc, path)
    if node is None or not node.args:
        raise ConfigEditError(f"cannot find a value at {kdl.format_path(path)}")
    arg = node.args[0]
    if arg.raw == literal:
        return doc.text, None
    text = doc.text[: arg.start] + literal + doc.text[arg.end :]
    return text, Change(op="replace", path=path, before=arg.raw, after=literal)


def _op_insert_child(
    doc: KdlDocument, parent_path: tuple[PathStep, ...], step: PathStep, lines: Sequence[str]
) -> tuple[str, Change]:
    """Insert a new child node (given as lines, see :func:`_render`) at the end of the parent's
    block, following the block's layout. At the top level it goes after the last node."""
    text = doc.text
    unit = _indent_unit(doc)
    nl = _newline(text)
    if not parent_path:
        last = doc.nodes[-1] if doc.nodes else None
        pos = last.outer_end if last is not None else len(text)
        prefix = "" if pos == 0 or text[pos - 1] == "\n" else nl
        prefix += nl if pos > 0 else ""
        inserted = prefix + _render(lines, "", unit, nl)
        node_offset = len(prefix)
    else:
        parent = _resolve(doc, parent_path)
        if parent is None:
            raise ConfigEditError(f"cannot find {kdl.format_path(parent_path)}")
        if parent.children_open is None or parent.children_close is None:
            # No children block yet: add one after the node's last entry.
            if parent.terminator == "comment":
                raise ConfigEditError(f"{kdl.format_path(parent_path)} ends in a comment; add a '{{ }}' block by hand")
            anchor = _entries_end(text, parent)
            if parent.own_line:
                indent = text[parent.outer_start : parent.start]
                inserted = " {" + nl + _render(lines, indent + unit, unit, nl) + indent + "}"
                node_offset = 2 + len(nl) + len(indent + unit)
            else:
                inserted = " { " + _inline(lines) + " }"
                node_offset = 3
            pos = anchor
        else:
            close = parent.children_close
            own_line_close = text[kdl.line_start(text, close) : close].strip(" \t") == ""
            if own_line_close:
                own = [c for c in parent.children if c.own_line]
                indent = text[own[0].outer_start : own[0].start] if own else _line_indent(text, parent.start) + unit
                pos = kdl.line_start(text, close)
                inserted = _render(lines, indent, unit, nl)
                node_offset = len(indent)
            elif parent.children and parent.children[-1].terminator == "none":
                # `{ a 1 }` -> `{ a 1; new 2 }`
                pos = parent.children[-1].end
                inserted = "; " + _inline(lines)
                node_offset = 2
            elif parent.children:
                # `{ a 1; }` -> `{ a 1; new 2; }`
                pos = parent.children[-1].outer_end
                inserted = _inline(lines) + "; "
                node_offset = 0
            else:
                pos = parent.children_open + 1
                inserted = " " + _inline(lines) + " "
                node_offset = 1
    new_text = text[:pos] + inserted + text[pos:]
    new_doc = _reparse(new_text)
    node = _resolve(new_doc, (*parent_path, step))
    if node is None:  # pragma: no cover - defensive
        raise ConfigEditError(f"internal error: inserted node {step} not found after insertion")
    if node.start != pos + node_offset:
        # The path resolves to another node of the same name: the insertion would not be the one
        # Zentinel reads.
        raise ConfigEditError(f"{kdl.format_path((*parent_path, step))} already exists elsewhere; not adding another")
    return new_text, Change(
        op="insert",
        path=(*parent_path, step),
        after=inserted,
        node_text=node.text(new_text),
        node_offset=node_offset,
    )


def _entries_end(text: str, node: KdlNode) -> int:
    """Where a node without a children block ends, before its terminator."""
    return node.start + len(text[node.start : node.end].rstrip(" \t\r\n\x0b\x0c\x85\u2028\u2029;"))


def _siblings_around(
    block: _Block, start: int, end: int, exclude: KdlNode | None
) -> tuple[KdlNode | None, KdlNode | None]:
    prev = nxt = None
    for c in block.children:
        if c is exclude:
            continue
        if c.outer_end <= start:
            prev = c
        elif c.outer_start >= end and nxt is None:
            nxt = c
    return prev, nxt


def _op_remove_span(
    doc: KdlDocument, path: tuple[PathStep, ...], node: KdlNode, start: int, end: int
) -> tuple[str, Change]:
    text = doc.text
    block = _block_at(doc, path[:-1])
    if block is None or not any(c is node for c in block.children):  # pragma: no cover - defensive
        raise ConfigEditError(f"internal error: {kdl.format_path(path)} is not where its path says")
    prev, nxt = _siblings_around(block, start, end, node)
    gap_before = text[prev.outer_end if prev else block.content_start : start]
    gap_after = text[end : nxt.outer_start if nxt else block.content_end]
    change = Change(
        op="remove",
        path=path,
        before=text[start:end],
        node_text=node.text(text),
        node_offset=node.start - start,
        prev=_node_key(prev) if prev else None,
        next=_node_key(nxt) if nxt else None,
        gap_before=gap_before,
        gap_after=gap_after,
    )
    return text[:start] + text[end:], change


def _op_remove_node(doc: KdlDocument, path: tuple[PathStep, ...], node: KdlNode) -> tuple[str, Change]:
    return _op_remove_span(doc, path, node, node.outer_start, node.outer_end)


def _find_sibling(block: _Block, key: PathStep) -> KdlNode | None:
    return next((c for c in block.children if _step_matches(c, key)), None)


def _op_reinsert(doc: KdlDocument, change: Change) -> tuple[str, Change]:
    """Put back a removed node, as close as possible to where it was."""
    text = doc.text
    parent_path = change.path[:-1]
    block = _block_at(doc, parent_path)
    parent = _resolve(doc, parent_path) if parent_path else None
    if block is None and parent is not None and parent.terminator != "comment":
        stripped = change.before.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            # The edit had added the parent's whole '{...}' block: put the block back.
            at = _entries_end(text, parent)
            return text[:at] + change.before + text[at:], Change(
                op="insert",
                path=change.path,
                after=change.before,
                node_text=change.node_text,
                node_offset=change.node_offset,
            )
    if block is None:
        raise ConfigEditError(
            f"cannot put back {kdl.format_path(change.path)}: {kdl.format_path(parent_path)} no longer exists"
        )
    prev = _find_sibling(block, change.prev) if change.prev else None
    nxt = _find_sibling(block, change.next) if change.next else None
    pos: int | None = None
    gb = change.gap_before or ""
    ga = change.gap_after or ""
    # 1. right after the previous sibling (or the block start), when the text between is unchanged
    anchor = prev.outer_end if prev else (block.content_start if change.prev is None else None)
    if anchor is not None and text.startswith(gb, anchor) and anchor + len(gb) <= block.content_end:
        pos = anchor + len(gb)
    # 2. right before the next sibling (or the block end), when the text between is unchanged
    if pos is None:
        anchor = nxt.outer_start if nxt else (block.content_end if change.next is None else None)
        if anchor is not None and text[:anchor].endswith(ga) and anchor - len(ga) >= block.content_start:
            pos = anchor - len(ga)
    # 3. next to a surviving sibling, whatever is around it
    if pos is None and prev is not None:
        pos = prev.outer_end
    if pos is None and nxt is not None:
        pos = nxt.outer_start
    # 4. at the end of the block
    if pos is None:
        end = block.content_end
        if block.node is not None and text[kdl.line_start(text, end) : end].strip(" \t") == "":
            end = kdl.line_start(text, end)
        pos = max(end, block.content_start)
    new_text = text[:pos] + change.before + text[pos:]
    return new_text, Change(
        op="insert",
        path=change.path,
        after=change.before,
        node_text=change.node_text,
        node_offset=change.node_offset,
    )


def _op_uninsert(doc: KdlDocument, change: Change) -> tuple[str, Change | None, str | None]:
    """Take out a node that an edit inserted. Returns (text, change, note)."""
    node = _resolve(doc, change.path)
    if node is None:
        return doc.text, None, f"{kdl.format_path(change.path)} is already gone; nothing to remove"
    text = doc.text
    if node.text(text) != change.node_text:
        raise ConfigEditError(
            f"{kdl.format_path(change.path)} was changed after the edit (now {node.text(text).strip()!r}, "
            f"the edit wrote {change.node_text.strip()!r}); not reverting it"
        )
    start = node.start - change.node_offset
    if start >= 0 and text.startswith(change.after, start):
        new_text, undo = _op_remove_span(doc, change.path, node, start, start + len(change.after))
    else:
        new_text, undo = _op_remove_node(doc, change.path, node)
    return new_text, undo, None


def _op_unreplace(doc: KdlDocument, change: Change) -> tuple[str, Change]:
    node = _resolve(doc, change.path)
    if node is None or not node.args:
        raise ConfigEditError(f"{kdl.format_path(change.path)} no longer exists; cannot restore {change.before}")
    current = node.args[0].raw
    if current != change.after:
        raise ConfigEditError(
            f"{kdl.format_path(change.path)} was changed after the edit (now {current}, the edit set "
            f"{change.after}); not restoring {change.before}"
        )
    text, undo = _op_replace_first_arg(doc, change.path, change.before)
    assert undo is not None
    return text, undo


# =============================================================================================
# Edits
# =============================================================================================


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
        doc = _reparse(text)
        block = _resolve(doc, block_path)
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
            text, change = _op_replace_first_arg(doc, (*block_path, step), literal)
        else:
            text, change = _op_insert_child(doc, block_path, step, [f"{name} {literal}"])
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
    doc = _reparse(text)
    path = (PathStep("limits"),)
    if _resolve(doc, path) is None:
        lines = ["limits {", *(f"\t{k} {kdl.format_value(v)}" for k, v in values), "}"]
        new_text, change = _op_insert_child(doc, (), PathStep("limits"), lines)
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
    doc = _reparse(text)
    upstream = _resolve(doc, (PathStep("upstreams"), PathStep("upstream", upstream_id)))
    assert upstream is not None
    nodes = _target_nodes(upstream)
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
            doc = _reparse(new_text)
            up = _resolve(doc, base)
            assert up is not None
            victim = next((t for t in _target_nodes(up) if target_address(t) == addr), None)
            if victim is None:
                break
            in_targets_block = victim not in up.children
            path = (
                (*base, PathStep("targets"), PathStep("target", addr))
                if in_targets_block
                else (*base, PathStep("target", addr))
            )
            new_text, change = _op_remove_node(doc, path, victim)
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
    key_problem = _rate_limit_key_problem(key)
    if key_problem:
        raise ConfigEditError(f"rate-limit key: {key_problem}")
    check = _require_valid(text, "enable rate limiting")
    missing_routes = [r for r in routes if r not in check.route_upstreams]
    if missing_routes:
        raise ConfigEditError(
            f"no route {', '.join(repr(r) for r in missing_routes)} (routes: {', '.join(check.routes) or 'none'})"
        )
    doc = _reparse(text)
    rl_filters = _rate_limit_filters(doc)
    for rid in routes:
        route = _resolve(doc, (PathStep("routes"), PathStep("route", rid)))
        assert route is not None
        shadow = [f for f in _route_filter_ids(route) if f in rl_filters]
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
        doc = _reparse(new_text)
        if _resolve(doc, rl_path) is not None:
            new_text = _set_children(new_text, rl_path, values, changes)
        elif _resolve(doc, policies_path) is not None:
            new_text, change = _op_insert_child(doc, policies_path, PathStep("rate-limit"), rl_lines)
            changes.append(change)
        else:
            lines = ["policies {", *("\t" + ln for ln in rl_lines), "}"]
            new_text, change = _op_insert_child(doc, route_path, PathStep("policies"), lines)
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
        doc = _reparse(new_text)
        if change.op == "replace":
            new_text, inverse = _op_unreplace(doc, change)
            changes.append(inverse)
        elif change.op == "insert":
            new_text, maybe, note = _op_uninsert(doc, change)
            if maybe is not None:
                changes.append(maybe)
            if note:
                notes.append(note)
        else:
            # A node is skipped when someone already put it back; but when the edit removed several
            # nodes with the same path (a target listed twice), each is put back.
            if change.path not in reinserted and _resolve(doc, change.path) is not None:
                notes.append(f"{kdl.format_path(change.path)} is already present; not adding it again")
                continue
            new_text, inverse = _op_reinsert(doc, change)
            reinserted.add(change.path)
            changes.append(inverse)
    result = _finish(text, new_text, f"revert:{undo.action}", f"revert ({undo.summary})", changes, name)
    return EditResult(text=result.text, diff=result.diff, undo=result.undo, notes=tuple(notes))
