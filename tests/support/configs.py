"""Zentinel configurations for tests (KDL v2, as Zentinel 0.6 reads them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GOOD = """\
// Edge proxy used by the integration tests.
schema-version "1.0"

system {
    worker-threads 2
    max-connections 10000
    auto-reload #true
}

listeners {
    listener "http" {
        address "0.0.0.0:8080"
        protocol "http"
    }
}

routes {
    route "api" {
        matches { path-prefix "/api" }
        upstream "api"
    }
    route "web" {
        matches { path-prefix "/" }
        upstream "web"
    }
}

upstreams {
    upstream "api" {
        target "10.0.1.10:8000" weight=1
        target "10.0.1.11:8000" weight=1
        target "10.0.1.12:8000" weight=1
    }
    upstream "web" {
        target "10.0.2.10:8000" weight=1
        target "10.0.2.11:8000" weight=1
    }
}

limits {
    max-total-connections 10000
    max-connections-per-client 100
}
"""

# Parses as KDL but is not a Zentinel config: an unknown top-level block and no `system`.
BAD = """\
// A broken edit: `sytem` is misspelled.
sytem {
    worker-threads 2
}
upstreams {
    upstream "api" {
        target "10.0.1.10:8000"
    }
}
"""


def edge_policy(**spec: Any) -> dict[str, Any]:
    """The policy ``edge`` for the ``tier: edge`` Zentinels, with ``spec`` beside its selector."""
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": {"selector": {"matchLabels": {"tier": "edge"}}, **spec},
    }


def configmap(name: str, text: str = GOOD, key: str = "zentinel.kdl") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {key: text}}


def upstream_health(unhealthy: tuple[str, ...] = ()) -> Callable[[Any], None]:
    """Set up an emulator's /admin/upstreams for GOOD's upstreams, these targets unhealthy."""

    def setup(emu: Any) -> None:
        for upstream, targets in (
            ("api", ("10.0.1.10:8000", "10.0.1.11:8000", "10.0.1.12:8000")),
            ("web", ("10.0.2.10:8000", "10.0.2.11:8000")),
        ):
            for addr in targets:
                emu.set_target(upstream, addr, "unhealthy" if addr in unhealthy else "healthy")

    return setup
