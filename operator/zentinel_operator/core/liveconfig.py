"""What a Zentinel process really runs, from its own ``/admin/config``, against what the operator wrote.

A ConfigMap reaches the pods with a delay (the kubelet's volume refresh, then Zentinel's reload or a
rolling restart), a reload can be rejected, and Zentinel has shipped settings that parse and do
nothing. So a config change is verified on the live process: every pod's ``/admin/config`` must show
the upstream targets, the routes and the limits of the config in the ConfigMap.

Pure: the gather step fetches the documents, this module reads and compares them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .zconfig import ConfigCheck

# /admin/config names limits in snake case; the KDL in kebab case.
_LIMIT_KEYS = ("max-total-connections", "max-connections-per-client")


@dataclass(frozen=True)
class LiveConfig:
    """One pod's running config, as far as the operator compares it (``error`` when unreadable)."""

    pod: str
    upstreams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    route_upstreams: dict[str, str | None] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def parse_live_config(pod: str, body: bytes | str) -> LiveConfig:
    """Read ``/admin/config``; anything but the documented shape is an ``error``, never an exception."""
    try:
        doc = json.loads(body)
        cfg = doc["config"]
        upstreams = {
            str(u["id"]): tuple(sorted(str(t["address"]) for t in u.get("targets") or []))
            for u in cfg.get("upstreams") or []
        }
        routes = {
            str(r["id"]): (None if r.get("upstream") is None else str(r["upstream"])) for r in cfg.get("routes") or []
        }
        raw_limits = cfg.get("limits") or {}
        limits = {
            key: int(raw_limits[key.replace("-", "_")])
            for key in _LIMIT_KEYS
            if isinstance(raw_limits.get(key.replace("-", "_")), int)
        }
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return LiveConfig(pod=pod, error=f"/admin/config is not Zentinel's config document ({type(e).__name__}: {e})")
    return LiveConfig(pod=pod, upstreams=upstreams, route_upstreams=routes, limits=limits)


def differences(expected: ConfigCheck, live: LiveConfig) -> list[str]:
    """What the pod runs that differs from ``expected``: empty when the expected config is the live one."""
    if live.error is not None:
        return [f"{live.pod}: {live.error}"]
    out: list[str] = []
    for upstream, targets in sorted(expected.upstreams.items()):
        running = live.upstreams.get(upstream)
        if running is None:
            out.append(f"{live.pod}: upstream {upstream!r} is not running")
        elif tuple(sorted(targets)) != running:
            out.append(f"{live.pod}: upstream {upstream!r} runs targets {list(running)}, expected {sorted(targets)}")
    for upstream in sorted(set(live.upstreams) - set(expected.upstreams)):
        out.append(f"{live.pod}: runs upstream {upstream!r} that the config no longer has")
    missing_routes = sorted(set(expected.routes) - set(live.route_upstreams))
    if missing_routes:
        out.append(f"{live.pod}: routes {missing_routes} are not running")
    for key in _LIMIT_KEYS:
        want = expected.limits.get(key)
        if want is not None and live.limits.get(key) != want:
            out.append(f"{live.pod}: limits {key} is {live.limits.get(key)}, expected {want}")
    return out


def live_gap(expected: ConfigCheck, lives: Sequence[LiveConfig], pods: Sequence[str]) -> str | None:
    """Why ``expected`` is not yet what every pod in ``pods`` runs (None: it is, on every one)."""
    if not pods:
        return "no running pod to confirm the change on"
    by_pod: Mapping[str, LiveConfig] = {lc.pod: lc for lc in lives}
    problems: list[str] = []
    for pod in pods:
        live = by_pod.get(pod)
        problems += [f"{pod}: /admin/config was not read"] if live is None else differences(expected, live)
    return (
        "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "") if problems else None
    )
