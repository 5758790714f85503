"""kubectl names on the real API server: the kinds' category must never shadow a kind's own name.

kubectl expands a category before it resolves a resource name, so a category called ``zentinel`` made
``kubectl get zentinel edge`` fail ("you must specify only one resource") and ``kubectl delete zentinel
--all`` delete every policy and incident in the namespace as well.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.kube import Kube
from zentinel_operator.models.common import CATEGORY

pytestmark = pytest.mark.integration


def _objects(namespace: str) -> list[dict[str, Any]]:
    zen = {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": "edge", "namespace": namespace},
        "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
    }
    pol = {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge-default", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"tier": "edge"}}},
    }
    inc = {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncident",
        "metadata": {"name": "inc-20261202-001", "namespace": namespace},
        "spec": {
            "zentinelRef": {"name": "edge"},
            "category": "ProcessCrash",
            "fingerprint": "edge/ProcessCrash",
        },
    }
    return [zen, pol, inc]


def _names(kube: Kube, resource: str, namespace: str) -> set[tuple[str, str]]:
    items = json.loads(kube.run("get", resource, "-n", namespace, "-o", "json").stdout)["items"]
    return {(i["kind"], i["metadata"]["name"]) for i in items}


def test_kind_names_resolve_to_their_kind_and_the_category_lists_all_three(kube: Kube, namespace: str) -> None:
    for obj in _objects(namespace):
        kube.apply(obj)

    got = kube.run("get", "zentinel", "edge", "-n", namespace, "-o", "json")
    assert json.loads(got.stdout)["kind"] == "Zentinel"
    kinds = {kind for kind, _ in _names(kube, CATEGORY, namespace)}
    assert kinds == {"Zentinel", "ZentinelIncidentPolicy", "ZentinelIncident"}

    deleted = kube.run("delete", "zentinel", "--all", "-n", namespace)
    assert "edge" in deleted.stdout
    assert _names(kube, CATEGORY, namespace) == {
        ("ZentinelIncidentPolicy", "edge-default"),
        ("ZentinelIncident", "inc-20261202-001"),
    }
