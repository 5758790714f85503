"""The API server's own record of one user's requests: an audit log of the ``audited`` user only.

The dev cluster's API server logs every request of ``AUDITED_USER`` (and nobody else's) at the Metadata
level, so a test or a benchmark that runs the operator with ``Cluster.audited_kubeconfig`` can count the
operator's requests by verb and resource (``apiserver_request_total`` has no user label).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

AUDITED_USER = "zentinel-audited"


def policy() -> dict[str, Any]:
    """Metadata of the audited user's requests (no bodies: nothing secret is written down), nothing else."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "users": [AUDITED_USER]}, {"level": "None"}],
    }


def requests(log: Path, start: int, end: int) -> list[dict[str, Any]]:
    """The audited requests logged between two byte offsets of the log, one entry per request: a watch when it
    opens (stage ResponseStarted), every other request when it completes."""
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
        out.append(ev)
    return out


def resource_of(ev: dict[str, Any]) -> str:
    """``resource[/subresource]`` of an audited request (the path of a non-resource one)."""
    ref = ev.get("objectRef") or {}
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return resource or str(ev.get("requestURI", "?")).split("?")[0]


def counts(log: Path, start: int, end: int) -> dict[tuple[str, str], int]:
    """The audited requests between two byte offsets, counted by (verb, resource[/subresource])."""
    return dict(collections.Counter((ev.get("verb", "?"), resource_of(ev)) for ev in requests(log, start, end)))
