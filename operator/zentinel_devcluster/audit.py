"""The API server's own record of one user's requests: an audit log of the ``audited`` user only.

The dev cluster's API server logs every request of the ``AUDITED_USERS`` (and nobody else's) at the Metadata
level, so a test or a benchmark that runs the operator with ``Cluster.audited_kubeconfig`` can count the
operator's requests by verb and resource (``apiserver_request_total`` has no user label). The further users
(``Cluster.audited_kubeconfigs``) tell several operator processes apart, one shard each.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

AUDITED_USER = "zentinel-audited"
AUDITED_USERS = (AUDITED_USER, *(f"{AUDITED_USER}-{i}" for i in range(1, 4)))


def policy() -> dict[str, Any]:
    """Metadata of the audited user's requests (no bodies: nothing secret is written down), nothing else."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "users": list(AUDITED_USERS)}, {"level": "None"}],
    }


def requests(log: Path, start: int, end: int, user: str | None = None) -> list[dict[str, Any]]:
    """The audited requests logged between two byte offsets of the log, one entry per request: a watch when it
    opens (stage ResponseStarted), every other request when it completes; only ``user``'s if given."""
    with log.open("rb") as f:
        f.seek(start)
        data = f.read(max(0, end - start))
    out = []
    for line in data.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        verb, stage = ev.get("verb", "?"), ev.get("stage")
        if stage not in ("ResponseStarted", "ResponseComplete") or (verb == "watch") != (stage == "ResponseStarted"):
            continue
        if user is not None and (ev.get("user") or {}).get("username") != user:
            continue
        out.append(ev)
    return out


def resource_of(ev: dict[str, Any]) -> str:
    """``resource[/subresource]`` of an audited request (the path of a non-resource one)."""
    ref = ev.get("objectRef") or {}
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return resource or str(ev.get("requestURI", "?")).split("?")[0]


def counts(log: Path, start: int, end: int, user: str | None = None) -> dict[tuple[str, str], int]:
    """The audited requests between two byte offsets (only ``user``'s if given), by (verb, resource[/subresource])."""
    events = requests(log, start, end, user)
    return dict(collections.Counter((ev.get("verb", "?"), resource_of(ev)) for ev in events))
