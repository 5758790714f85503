"""Cluster policies: which policy governs a Zentinel (one rule, ``core.selection.choose_governing``), what
``status.policy`` says, where the receivers' Secrets are read, and the policy status of both kinds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from support.fake_api import FakeApi
from zentinel_operator import config
from zentinel_operator.core.patches import merge_patch
from zentinel_operator.core.selection import choose_governing, policy_for, secrets_namespace
from zentinel_operator.crdgen import crd_for
from zentinel_operator.handlers import policies as policy_handlers
from zentinel_operator.models import Zentinel, ZentinelClusterIncidentPolicy, ZentinelIncidentPolicy
from zentinel_operator.models.zentinel import PolicyReason, ZentinelStatus
from zentinel_operator.names import KIND_CLUSTER_POLICY, KIND_POLICY

LABELS = {"tier": "edge"}


def pol(name: str, priority: int = 0, tier: str = "edge", namespace: str | None = "shop") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"tier": tier}},
            "priority": priority,
            "thresholds": {"minRequests": abs(priority)},
        },
    }


def cpol(name: str, priority: int = 0, tier: str = "edge") -> dict[str, Any]:
    return pol(name, priority, tier, namespace=None)


# Each scope: nothing, one that does not match, one match, two matches (priority decides),
# two matches of equal priority (name decides).
NAMESPACED = {
    "none": ([], None),
    "other": ([pol("x", tier="internal")], None),
    "one": ([pol("a")], "a"),
    "priority": ([pol("a", 1), pol("b", 5), pol("c", 9, tier="internal")], "b"),
    "name": ([pol("m"), pol("k")], "k"),
}
CLUSTER = {
    "none": ([], None),
    "other": ([cpol("cx", tier="internal")], None),
    "one": ([cpol("ca")], "ca"),
    "priority": ([cpol("ca", -1), cpol("cb", 3)], "cb"),
    "name": ([cpol("cz"), cpol("cy")], "cy"),
}


@pytest.mark.parametrize(("local", "shared"), list(itertools.product(NAMESPACED, CLUSTER)))
def test_choose_governing_every_combination(local: str, shared: str) -> None:
    namespaced, local_winner = NAMESPACED[local]
    cluster, cluster_winner = CLUSTER[shared]
    got = choose_governing(LABELS, namespaced, cluster)
    if local_winner is None and cluster_winner is None:
        assert got is None
        return
    assert got is not None
    st = got.status
    if local_winner is not None:  # a namespaced policy that selects wins over any cluster policy
        assert (st.kind, st.name, st.namespace, got.cluster) == (KIND_POLICY, local_winner, "shop", False)
        if cluster_winner is not None:
            assert st.reason == PolicyReason.SHADOWS_CLUSTER_POLICY
            assert f"shadows {KIND_CLUSTER_POLICY} {cluster_winner}" in st.message
        else:
            assert st.reason == PolicyReason.SELECTED and "shadows" not in st.message
    else:
        assert (st.kind, st.name, st.namespace, got.cluster) == (KIND_CLUSTER_POLICY, cluster_winner, "", True)
        assert st.reason == PolicyReason.SELECTED
        assert f"no {KIND_POLICY} in the namespace does" in st.message
    assert got.body["metadata"]["name"] == st.name
    assert st.name in st.message


def test_the_message_names_the_candidates_that_lost() -> None:
    got = choose_governing(LABELS, [pol("a", 1), pol("b", 5)], [])
    assert got is not None
    assert got.status.message == (
        f"{KIND_POLICY} shop/b (priority 5) selects this Zentinel, over 1 more of its scope (a) by priority, then name"
    )


def test_a_cluster_policy_outranks_nothing_namespaced_whatever_its_priority() -> None:
    got = choose_governing(LABELS, [pol("low", -100)], [cpol("high", 1000)])
    assert got is not None and got.status.name == "low" and got.status.reason == PolicyReason.SHADOWS_CLUSTER_POLICY


def test_an_unreadable_policy_is_no_candidate() -> None:
    broken = {"metadata": {"name": "broken"}, "spec": {"priority": "high"}}
    got = choose_governing(LABELS, [], [broken, cpol("ok")])
    assert got is not None and got.status.name == "ok"


def test_secrets_namespace() -> None:
    local = choose_governing(LABELS, [pol("a")], [cpol("c")])
    shared = choose_governing(LABELS, [], [cpol("c")])
    assert secrets_namespace(local, "shop", "zentinel-system") == "shop"
    assert secrets_namespace(shared, "shop", "zentinel-system") == "zentinel-system"
    assert secrets_namespace(None, "shop", "zentinel-system") == "shop"


def test_operator_namespace_setting() -> None:
    assert config.load({"ZENTINEL_OPERATOR_POD_NAMESPACE": "ops"}).operator_namespace() == "ops"
    assert config.load({"ZENTINEL_OPERATOR_LEASE_NAMESPACE": "lease-ns"}).operator_namespace() == "lease-ns"


def zen(labels: dict[str, str]) -> Zentinel:
    return Zentinel.model_validate(
        {
            "metadata": {"name": "edge", "namespace": "shop", "labels": labels},
            "spec": {"workload": {"name": "edge"}, "config": {"configMapName": "edge-config"}},
        }
    )


def test_policy_for_gives_the_governing_policy_and_its_spec() -> None:
    governing, spec = policy_for(zen(LABELS), [pol("a", 7)], [cpol("c", 3)])
    assert governing is not None and governing.status.name == "a" and spec.thresholds.min_requests == 7
    governing, spec = policy_for(zen(LABELS), [], [cpol("c", 3)])
    assert governing is not None and governing.cluster and spec.thresholds.min_requests == 3
    governing, spec = policy_for(zen({}), [pol("a", 7)], [cpol("c", 3)])
    assert governing is None and spec.thresholds.min_requests == 20  # the defaults


def test_status_policy_as_stored_and_unchanged_means_no_patch() -> None:
    governing = choose_governing(LABELS, [], [cpol("c")])
    assert governing is not None
    st = ZentinelStatus(policy=governing.status)
    stored = st.dump()
    assert stored["policy"] == {
        "kind": KIND_CLUSTER_POLICY,
        "name": "c",
        "namespace": "",
        "reason": "Selected",
        "message": governing.status.message,
    }
    assert merge_patch(stored, ZentinelStatus(policy=governing.status).dump()) == {}
    shadowed = choose_governing(LABELS, [pol("a")], [cpol("c")])
    assert shadowed is not None
    patch = merge_patch(stored, ZentinelStatus(policy=shadowed.status).dump())
    assert patch["policy"]["reason"] == "ShadowsClusterPolicy" and patch["policy"]["namespace"] == "shop"
    assert merge_patch(stored, ZentinelStatus().dump()) == {"policy": None}  # no policy any more: removed


def test_the_cluster_kind_is_cluster_scoped_with_the_same_spec_schema() -> None:
    cluster, namespaced = crd_for(ZentinelClusterIncidentPolicy), crd_for(ZentinelIncidentPolicy)
    assert cluster["spec"]["scope"] == "Cluster" and namespaced["spec"]["scope"] == "Namespaced"
    assert cluster["spec"]["names"]["shortNames"] == ["zcip"]

    def spec_schema(crd: dict[str, Any]) -> Any:
        schema = dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])
        schema.pop("description")  # names the kind
        return schema

    assert spec_schema(cluster) == spec_schema(namespaced)


# ------------------------------------------------------------------------------- policy status
def test_a_cluster_policy_counts_the_zentinels_it_governs_across_namespaces() -> None:
    api = FakeApi()
    calls = api.status_patches
    zentinels = {"shop": [("edge", LABELS), ("api", {"tier": "api"})], "blog": [("edge", LABELS)]}
    namespaced = {"blog": [pol("local", namespace="blog")]}  # shadows the cluster policy in blog
    body = {**cpol("ca"), "metadata": {"name": "ca", "generation": 2}}
    assert policy_handlers.reconcile_cluster(
        body, zentinels=zentinels, policies=namespaced, cluster_policies=[body], api=api
    )
    ((plural, ns, name, patch),) = calls
    assert (plural, ns, name) == ("zentinelclusterincidentpolicies", None, "ca")
    assert patch["selected"] == ["shop/edge"] and patch["selectedZentinels"] == 1
    assert {c["type"]: c["status"] for c in patch["conditions"]} == {"Accepted": "True", "Ready": "True"}
    # Unchanged: nothing written.
    stored = {**body, "status": patch}
    assert not policy_handlers.reconcile_cluster(
        stored, zentinels=zentinels, policies=namespaced, cluster_policies=[stored], api=api
    )
    assert len(calls) == 1


def test_a_namespaced_policy_counts_what_it_governs_over_cluster_policies() -> None:
    api = FakeApi()
    calls = api.status_patches
    body = {**pol("local"), "metadata": {"name": "local", "namespace": "shop", "generation": 1}}
    zentinels = [("edge", LABELS), ("api", {"tier": "api"})]
    policy_handlers.reconcile(body, zentinels=zentinels, policies=[body], cluster_policies=[cpol("ca", 99)], api=api)
    ((plural, ns, name, patch),) = calls
    assert (plural, ns, name, patch["selected"]) == ("zentinelincidentpolicies", "shop", "local", ["edge"])


def test_triage_names_the_governing_policy_and_its_scope() -> None:
    from zentinel_operator.cli.triage import governing_label

    assert governing_label(choose_governing(LABELS, [pol("a")], [cpol("c")])) == "policy a"
    assert governing_label(choose_governing(LABELS, [], [cpol("c")])) == "cluster policy c"
    assert governing_label(None) == "defaults (no policy selects this Zentinel)"
