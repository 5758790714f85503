"""Match container log lines against the runbook's causes, using the messages real Zentinel writes.

Zentinel (0.6.x) writes "Failed to load configuration file" when it cannot read its config (at start
it then exits; on a reload it keeps serving the old config), "Configuration validation failed - new
configuration REJECTED" when a reload is refused, TLS errors such as "Failed to load certificate" or
"Certificate/key mismatch", and the OS error "Address already in use" when a port is taken.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..core.redact import redact_line
from ..core.snapshot import LogCause, LogMatch

_PATTERNS: tuple[tuple[LogCause, re.Pattern[str]], ...] = (
    (
        LogCause.CONFIG_REJECTED,
        re.compile(
            r"new configuration REJECTED|Rejected configuration change|Auto-reload failed|Poll-triggered reload failed",
            re.IGNORECASE,
        ),
    ),
    (
        LogCause.CONFIG_ERROR,
        re.compile(
            r"Failed to load configuration|Configuration (schema )?validation failed|Failed to parse (KDL|config)",
            re.IGNORECASE,
        ),
    ),
    (LogCause.ADDRESS_IN_USE, re.compile(r"address already in use|address in use|EADDRINUSE|os error 98", re.I)),
    (
        LogCause.CERTIFICATE_ERROR,
        re.compile(
            r"Failed to load (certificate|private key)|Certificate/key mismatch|Invalid certificate|"
            r"TLS certificate reload failed|certificate (has )?expired|bad certificate",
            re.IGNORECASE,
        ),
    ),
    (LogCause.OUT_OF_MEMORY, re.compile(r"memory allocation of \d+ bytes failed|out of memory|\bOOM\b", re.I)),
)

_MAX_LINE = 400
# A later successful reload voids the reload failures before it: the process runs the new config.
_RELOADED = re.compile(r"Configuration reload completed successfully", re.IGNORECASE)
_VOIDED_BY_RELOAD = (LogCause.CONFIG_REJECTED, LogCause.CONFIG_ERROR)


def match_lines(pod: str, container: str, text: str | None, *, previous: bool) -> list[LogMatch]:
    """Every line of ``text`` that names a runbook cause (one match per line, the first cause wins);
    config errors and rejections before a later "Configuration reload completed successfully" are dropped."""
    if not text:
        return []
    found: list[LogMatch] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if _RELOADED.search(line):
            found = [m for m in found if m.cause not in _VOIDED_BY_RELOAD]
            continue
        for cause, pattern in _PATTERNS:
            if pattern.search(line):
                found.append(  # matched lines reach findings, events and notifications: never with a secret
                    LogMatch(
                        pod=pod, container=container, previous=previous, cause=cause, line=redact_line(line)[:_MAX_LINE]
                    )
                )
                break
    return found


def newest_per_cause(matches: Iterable[LogMatch], limit: int = 3) -> tuple[LogMatch, ...]:
    """Keep the last ``limit`` matches of each cause (logs can repeat a line thousands of times)."""
    by_cause: dict[LogCause, list[LogMatch]] = {}
    for m in matches:
        by_cause.setdefault(m.cause, []).append(m)
    result: list[LogMatch] = []
    for cause in LogCause:
        result += by_cause.get(cause, [])[-limit:]
    return tuple(result)
