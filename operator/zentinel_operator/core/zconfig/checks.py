"""Checking a Zentinel config: what the real parser accepts, and the typed view the operator reads.

:func:`check_config` is the one judge of a config text; the package docstring lists what it follows.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from zentinel_operator.core import kdl
from zentinel_operator.core.kdl import KdlDocument, KdlNode, Scalar

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
SINGLETONS = frozenset({"system", "server", "waf", "limits", "observability", "rate-limits", "cache"})

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


_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?\Z")


def config_revision(text: str) -> str:
    """Content address of a config text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


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


def _identified(
    top: Sequence[KdlNode], block: str, kind: str, a_kind: str, seen: Collection[str], errors: list[str]
) -> Iterator[tuple[str, KdlNode]]:
    """Each ``kind`` node of the ``block`` blocks with its id, as Zentinel's parser takes them: one without an
    id, or with an id ``seen`` already (the caller's, as it grows), is an error and is skipped."""
    for parent in (n for n in top if n.name == block):
        for node in parent.children_named(kind):
            nid = node.first_arg
            if not isinstance(nid, str):
                errors.append(f'{_at(node)}{a_kind} needs an id, e.g. {kind} "api" {{ ... }}')
            elif nid in seen:
                errors.append(f"{_at(node)}duplicate {kind} id '{nid}'")
            else:
                yield nid, node


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


def target_nodes(upstream: KdlNode) -> list[KdlNode]:
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
    addrs = [a for a in (target_address(t) for t in target_nodes(upstream)) if a is not None]
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


def rate_limit_key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return "the key must be a string"
    if key in RATE_LIMIT_KEYS:
        return None
    if key.startswith("header:"):
        return None if key[len("header:") :].strip() else "'header:' needs a header name, e.g. header:X-API-Key"
    return f"unknown key {key!r} (valid: {', '.join(RATE_LIMIT_KEYS)}, or header:<name>)"


def rate_limit_filters(doc: KdlDocument) -> dict[str, KdlNode]:
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


def route_filter_ids(route: KdlNode) -> list[str]:
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
    for name in sorted({n.name for n in top if n.name in SINGLETONS}):
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
    for uid, up in _identified(top, "upstreams", "upstream", "an upstream", upstreams, errors):
        addrs = _upstream_targets(up)
        upstreams[uid] = tuple(addrs)
        check = _http_health_check(up)
        if check is not None:
            health_checks[uid] = check
        if not addrs and up.child("discovery") is None:
            errors.append(f"{_at(up)}upstream '{uid}' has no targets (add target \"host:port\" or a discovery block)")
        for dup in sorted({a for a in addrs if addrs.count(a) > 1}):
            warnings.append(f"{_at(up)}upstream '{uid}' lists target '{dup}' {addrs.count(dup)} times")
        for t in target_nodes(up):
            addr = target_address(t)
            if addr is None:
                warnings.append(f"{_at(t)}a target of upstream '{uid}' has no address and is skipped by Zentinel")
                continue
            problem = _address_problem(addr)
            if problem:
                errors.append(f"{_at(t)}upstream '{uid}' target '{addr}' is not host:port: {problem}")
        shorthand = up.child("address")
        if shorthand is not None and not target_nodes(up) and isinstance(shorthand.first_arg, str):
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
    rl_filters = rate_limit_filters(doc)

    # -- routes -------------------------------------------------------------------------------------
    routes: list[str] = []
    route_upstreams: dict[str, str | None] = {}
    route_rate_limits: dict[str, RouteRateLimit] = {}
    for rid, r in _identified(top, "routes", "route", "a route", route_upstreams, errors):
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
        for fid in route_filter_ids(r):
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
            key_problem = rate_limit_key_problem(rl_key)
            if key_problem:
                errors.append(f"{_at(key_node or rl)}route '{rid}' rate-limit: {key_problem}")
            if rps is not None and not key_problem:
                route_rate_limits[rid] = RouteRateLimit(rps, burst if burst is not None else rps, str(rl_key))
            shadowing = [f for f in route_filter_ids(r) if f in rl_filters]
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
