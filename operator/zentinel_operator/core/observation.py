"""Everything one pass saw of one Zentinel, typed: the :class:`~.snapshot.Snapshot` triage reads, and the raw
objects and texts it was made from (the Deployment, the pods, the config, the logs and admin pages read).

:func:`zentinel_operator.signals.gather.gather` fills one per pass; triage, the config history, remediation,
evidence and the status all work from it, so nothing is read twice in a pass. When the evidence needs more
than the triage did (every container's log, every pod's pages, the events), the gather module adds it to the
same observation (:func:`zentinel_operator.signals.gather.complete_for_evidence`), reading only what is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .snapshot import Snapshot


@dataclasses.dataclass(frozen=True)
class LogRead:
    """One container log as read: the last ``tail_lines`` lines, or why it could not be read."""

    pod: str
    container: str
    previous: bool
    tail_lines: int
    text: str | None = None  # None: no such log (or it could not be read, see error)
    error: str | None = None

    def last(self, lines: int) -> LogRead:
        """The same read cut to its last ``lines`` lines (what a read with that tail would have answered)."""
        if self.text is None or lines >= self.tail_lines:
            return self
        kept = self.text.splitlines(keepends=True)[-lines:] if lines > 0 else []
        return dataclasses.replace(self, tail_lines=lines, text="".join(kept))


@dataclasses.dataclass(frozen=True)
class Observation:
    """One pass's view of one Zentinel. Parts that could not be read are None or empty (see the snapshot)."""

    snapshot: Snapshot
    deployment: dict[str, Any] | None = None  # as read this pass; None: it does not exist
    pods: tuple[dict[str, Any], ...] = ()  # the Deployment's pods, as listed
    config_text: str | None = None  # the config's current content (None: missing or unreadable)
    config_written_by_operator: bool = False  # the operator wrote this revision (a rollback, an ejection, ...)
    logs: tuple[LogRead, ...] = ()  # every container log read this pass
    pages: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # admin URL -> 2xx body, else None
    events: tuple[Mapping[str, Any], ...] | None = None  # the namespace's Events, once the evidence asked
    events_error: str | None = None

    def log(self, pod: str, container: str, *, previous: bool, lines: int) -> LogRead | None:
        """The log of this container as a read of its last ``lines`` lines would give it, if one was read."""
        for read in self.logs:
            if (read.pod, read.container, read.previous) == (pod, container, previous) and read.tail_lines >= lines:
                return read.last(lines)
        return None

    def page(self, url: str) -> tuple[bool, str | None]:
        """``(read, body)``: whether the URL was fetched this pass, and its 2xx body (None: no good answer)."""
        return url in self.pages, self.pages.get(url)
