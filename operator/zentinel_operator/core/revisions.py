"""Config revision history and the last-known-good rule (pure).

A revision is the sha256 of the ConfigMap content. It becomes *proven good* only after every pod
ran Ready on it, with the config valid and no open incident on the Zentinel, for the policy's
``provenGoodAfter``; the operator only ever rolls back to a proven-good revision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from ..models.zentinel import ConfigRevision
from .durations import parse_duration
from .snapshot import Snapshot


def snapshot_name(zentinel: str, revision: str) -> str:
    """Name of the ConfigMap that keeps a copy of one revision."""
    return f"{zentinel}-config-{revision}"[:253]


def all_pods_ready(snapshot: Snapshot) -> bool:
    w = snapshot.workload
    if not w.exists or w.desired == 0:
        return False
    live = [p for p in snapshot.pods if not p.deleting]
    ready = [p for p in live if p.ready and p.restart_growth == 0]
    return len(ready) >= w.desired and len(ready) == len(live)


@dataclasses.dataclass(frozen=True)
class HistoryUpdate:
    revisions: list[ConfigRevision]
    last_known_good: str | None
    new_snapshot: str | None  # revision whose content must be saved now
    pruned: list[str]  # revisions whose snapshots can be deleted
    became_good: str | None  # revision proven good in this pass


def update_history(
    revisions: Sequence[ConfigRevision],
    *,
    zentinel: str,
    current: str | None,
    current_valid: bool,
    snapshot: Snapshot,
    open_incidents: int,
    now: dt.datetime,
    proven_good_after: str,
    limit: int,
    last_known_good: str | None,
) -> HistoryUpdate:
    revs = [r.model_copy(deep=True) for r in revisions]
    new_snapshot = None
    if current is not None and not any(r.revision == current for r in revs):
        revs.append(
            ConfigRevision(
                revision=current,
                first_seen=now,
                snapshot=snapshot_name(zentinel, current),
                proven_good=False,
                valid=current_valid,
            )
        )
        new_snapshot = current
    became_good = None
    healthy = current_valid and open_incidents == 0 and all_pods_ready(snapshot)
    for rev in revs:
        if rev.revision != current:
            rev.healthy_since = None
            continue
        rev.valid = current_valid
        if not healthy:
            rev.healthy_since = None
        elif rev.healthy_since is None:
            rev.healthy_since = now
        elif not rev.proven_good and now - rev.healthy_since >= parse_duration(proven_good_after):
            rev.proven_good = True
            rev.proven_at = now
            became_good = rev.revision
    good = [r for r in revs if r.proven_good]
    lkg = max(good, key=lambda r: r.proven_at or r.first_seen).revision if good else last_known_good
    # Bounded history: the newest `limit`, plus the last known good and the current one always.
    keep = {r.revision for r in revs[-limit:]} | {x for x in (lkg, current) if x}
    pruned = [r.revision for r in revs if r.revision not in keep]
    revs = [r for r in revs if r.revision in keep]
    return HistoryUpdate(revs, lkg, new_snapshot, pruned, became_good)
