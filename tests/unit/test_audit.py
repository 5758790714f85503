"""The dev cluster's audit log reader: one entry per request, one audited user's if asked."""

from __future__ import annotations

import json
from pathlib import Path

from zentinel_devcluster import audit


def _event(user: str, verb: str, stage: str, resource: str) -> dict[str, object]:
    return {
        "verb": verb,
        "stage": stage,
        "user": {"username": user},
        "objectRef": {"resource": resource},
        "requestURI": f"/api/v1/{resource}",
    }


def _log(tmp_path: Path) -> Path:
    first, second = audit.AUDITED_USERS[:2]
    events = [
        _event(first, "get", "ResponseComplete", "pods"),
        _event(first, "watch", "ResponseStarted", "pods"),
        _event(first, "watch", "ResponseComplete", "pods"),  # a watch counts when it opens, not again when it ends
        _event(second, "list", "ResponseComplete", "configmaps"),
        _event(second, "get", "ResponseComplete", "leases"),
    ]
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "not json\n")
    return path


def test_every_audited_user_is_in_the_policy() -> None:
    rule = audit.policy()["rules"][0]
    assert rule["users"] == list(audit.AUDITED_USERS)
    assert len(set(audit.AUDITED_USERS)) == len(audit.AUDITED_USERS) >= 2


def test_counts_are_everyones_or_one_users(tmp_path: Path) -> None:
    log = _log(tmp_path)
    end = log.stat().st_size
    first, second = audit.AUDITED_USERS[:2]
    assert audit.counts(log, 0, end) == {
        ("get", "pods"): 1,
        ("watch", "pods"): 1,
        ("list", "configmaps"): 1,
        ("get", "leases"): 1,
    }
    assert audit.counts(log, 0, end, first) == {("get", "pods"): 1, ("watch", "pods"): 1}
    assert audit.counts(log, 0, end, second) == {("list", "configmaps"): 1, ("get", "leases"): 1}
    assert audit.counts(log, 0, end, "someone-else") == {}
