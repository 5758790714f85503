"""core.watch_map: which Zentinels a change to a pod, a Deployment, a ConfigMap or a Secret concerns."""

from __future__ import annotations

from typing import Any

import pytest

from zentinel_operator.core.watch_map import Kind, Watched, concerned, selects, watched


def zentinel(name: str, workload: str, config_map: str, tls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"workload": {"name": workload}, "config": {"configMapName": config_map}, "tls": tls or []},
        "status": {"health": "Healthy"},
    }


EDGE = watched(
    zentinel(
        "edge",
        "edge",
        "edge-config",
        tls=[
            {"name": "web", "secretName": "edge-tls", "caSecretName": "edge-ca"},
            {"name": "api", "secretName": "api-tls", "issuer": {"type": "CASecret", "caSecretName": "issuing-ca"}},
        ],
    )
)
INTERNAL = watched(zentinel("internal", "internal", "internal-config", tls=[{"name": "web", "secretName": "edge-tls"}]))
ZENTINELS = [z for z in (EDGE, INTERNAL) if z is not None]
SELECTORS: dict[str, Any] = {
    "edge": {"matchLabels": {"app": "edge"}},
    "internal": {
        "matchLabels": {"app": "internal"},
        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}],
    },
    "other": {"matchLabels": {"app": "other"}},
}


def test_a_zentinel_names_its_workload_its_config_and_every_secret_its_certificates_are_read_from() -> None:
    assert (
        Watched(
            name="edge",
            workload="edge",
            config_map="edge-config",
            secrets=frozenset({"edge-tls", "edge-ca", "api-tls", "issuing-ca"}),
        )
        == EDGE
    )


def test_a_zentinel_the_pass_would_refuse_still_names_what_it_names() -> None:
    assert watched({"metadata": {"name": "half"}, "spec": {"workload": {"name": "edge"}, "tls": ["junk"]}}) == Watched(
        name="half", workload="edge"
    )
    assert watched({"metadata": {}, "spec": {}}) is None


@pytest.mark.parametrize(
    ("kind", "name", "labels", "expected"),
    [
        (Kind.DEPLOYMENT, "edge", {}, ["edge"]),
        (Kind.DEPLOYMENT, "other", {}, []),
        (Kind.POD, "edge-7d9-abc", {"app": "edge", "pod-template-hash": "7d9"}, ["edge"]),
        (Kind.POD, "internal-1", {"app": "internal"}, ["internal"]),
        (Kind.POD, "internal-canary", {"app": "internal", "track": "canary"}, []),  # matchExpressions count
        (Kind.POD, "other-1", {"app": "other"}, []),  # a Deployment no Zentinel watches
        (Kind.POD, "loose", {}, []),
        (Kind.CONFIGMAP, "edge-config", {}, ["edge"]),
        # The config snapshots and evidence bundles the operator writes concern nobody: no pass loop.
        (Kind.CONFIGMAP, "edge-config-3f1c0a9b2d4e5f60", {"zentinel.io/zentinel": "edge"}, []),
        (Kind.CONFIGMAP, "inc-20261127-001-detection", {}, []),
        (Kind.SECRET, "edge-tls", {}, ["edge", "internal"]),  # one Secret, two Zentinels
        (Kind.SECRET, "issuing-ca", {}, ["edge"]),
        (Kind.SECRET, "slack-webhook", {}, []),
    ],
)
def test_an_object_concerns_the_zentinels_whose_pass_reads_it(
    kind: Kind, name: str, labels: dict[str, str], expected: list[str]
) -> None:
    assert concerned(kind, name, labels, ZENTINELS, SELECTORS) == expected


def test_a_pod_concerns_nobody_while_its_deployment_is_unknown() -> None:
    assert concerned(Kind.POD, "edge-1", {"app": "edge"}, ZENTINELS, {}) == []


@pytest.mark.parametrize(
    "selector",
    [None, {}, {"matchLabels": {}}, {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}],
)
def test_an_empty_or_unreadable_selector_selects_nothing(selector: Any) -> None:
    assert not selects(selector, {"app": "edge"})
