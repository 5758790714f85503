"""Reading a pod's /admin/config and comparing it with the config the operator wrote."""

from __future__ import annotations

import json
from typing import Any

from support import realpods
from zentinel_operator.core import liveconfig
from zentinel_operator.core.zconfig import check_config

TARGETS = ["127.192.0.2:8000", "127.192.0.3:8000", "127.192.0.4:8000"]


def dump(targets: list[str], *, limits: dict[str, int] | None = None, routes: tuple[str, ...] = ()) -> bytes:
    """The shape of Zentinel 0.6.45's /admin/config (see tests/integration/test_emulator_contract.py)."""
    doc: dict[str, Any] = {
        "timestamp": "2026-12-02T00:00:00Z",
        "request_id": "r",
        "config": {
            "listeners": [{"id": "http", "address": "127.192.0.9:8080"}],
            "routes": [
                {"id": r, "upstream": None if r.startswith(("health", "admin")) else "api"}
                for r in routes or ("health", "admin-upstreams", "admin-config", "api")
            ],
            "upstreams": [{"id": "api", "targets": [{"address": t, "weight": 1} for t in targets]}],
            "limits": {"max_total_connections": 10000, "max_connections_per_client": 1000, **(limits or {})},
        },
    }
    return json.dumps(doc).encode()


def test_the_config_that_runs_matches() -> None:
    expected = check_config(realpods.config(TARGETS))
    live = liveconfig.parse_live_config("edge-a", dump(list(reversed(TARGETS))))
    assert live.error is None and liveconfig.differences(expected, live) == []
    assert liveconfig.live_gap(expected, [live], ["edge-a"]) is None


def test_an_ejection_not_yet_running_is_named() -> None:
    expected = check_config(realpods.config(TARGETS[:2]))
    live = liveconfig.parse_live_config("edge-a", dump(TARGETS))
    assert liveconfig.differences(expected, live) == [
        f"edge-a: upstream 'api' runs targets {sorted(TARGETS)}, expected {sorted(TARGETS[:2])}"
    ]


def test_limits_that_did_not_reach_the_process_are_named() -> None:
    text = realpods.config(TARGETS).replace("max-total-connections 10000", "max-total-connections 5000")
    live = liveconfig.parse_live_config("edge-a", dump(TARGETS))
    assert liveconfig.differences(check_config(text), live) == [
        "edge-a: limits max-total-connections is 10000, expected 5000"
    ]


def test_every_pod_must_run_it_and_an_unread_pod_is_a_gap() -> None:
    expected = check_config(realpods.config(TARGETS))
    good = liveconfig.parse_live_config("edge-a", dump(TARGETS))
    gap = liveconfig.live_gap(expected, [good], ["edge-a", "edge-b"])
    assert gap == "edge-b: /admin/config was not read"
    assert liveconfig.live_gap(expected, [], []) == "no running pod to confirm the change on"


def test_a_missing_route_and_a_leftover_upstream_are_named() -> None:
    expected = check_config(realpods.config(TARGETS))
    doc = json.loads(dump(TARGETS, routes=("health",)))
    doc["config"]["upstreams"].append({"id": "old", "targets": []})
    problems = liveconfig.differences(expected, liveconfig.parse_live_config("p", json.dumps(doc)))
    assert "p: runs upstream 'old' that the config no longer has" in problems
    assert any(p.startswith("p: routes ['admin-config', 'admin-upstreams', 'api'] are not running") for p in problems)


def test_garbage_is_an_error_not_a_crash() -> None:
    for body in (b"not json", b"[]", b'{"config": {"upstreams": [{"targets": []}]}}', b'{"no": 1}'):
        live = liveconfig.parse_live_config("p", body)
        assert live.error is not None and "/admin/config is not Zentinel's config document" in live.error
        assert liveconfig.differences(check_config(realpods.config(TARGETS)), live) == [f"p: {live.error}"]
