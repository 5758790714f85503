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

Modules: ``checks`` (:func:`check_config` and the typed view); ``edits`` (:func:`set_limits`,
:func:`remove_targets`, :func:`enable_rate_limit`, :func:`revert`), built on ``primitives`` (text
operations located by node path) and ``undo`` (:class:`UndoRecord`, :class:`ConfigEditError`).
"""

from .checks import (
    KNOWN_LIMITS_KEYS,
    KNOWN_TOP_LEVEL_BLOCKS,
    RATE_LIMIT_KEYS,
    ConfigCheck,
    HealthCheck,
    RouteRateLimit,
    check_config,
    config_revision,
    target_address,
)
from .edits import enable_rate_limit, remove_targets, revert, set_limits
from .undo import Change, ConfigEditError, EditResult, UndoRecord, unified_diff

__all__ = [
    "KNOWN_LIMITS_KEYS",
    "KNOWN_TOP_LEVEL_BLOCKS",
    "RATE_LIMIT_KEYS",
    "Change",
    "ConfigCheck",
    "ConfigEditError",
    "EditResult",
    "HealthCheck",
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
