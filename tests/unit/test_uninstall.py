"""helm uninstall's pre-delete hook: what the chart renders, and what ``release-finalizers`` patches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from zentinel_devcluster import tools
from zentinel_operator import uninstall
from zentinel_operator.__main__ import main as operator_main

from .test_chart import FULLNAME, NAMESPACE, only, render, rules

HOOK = f"{FULLNAME}-uninstall"
FINALIZER = "operator.zentinel.io/finalizer"
OBJECTS = {("zentinel.io", plural, verb) for plural in uninstall.PLURALS for verb in ("list", "patch")}
CLUSTER_OBJECTS = {("zentinel.io", plural, verb) for plural in uninstall.CLUSTER_PLURALS for verb in ("list", "patch")}


@pytest.fixture(scope="module")
def helm() -> Path:
    tools.ensure(["helm"])
    return tools.binary("helm")


def hook_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    job: dict[str, Any] = only(docs, "Job", HOOK, NAMESPACE)
    return job


def test_the_hook_is_a_pre_delete_job_running_release_finalizers(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"operator": {"kopfPrefix": "ops.example.com"}, "nodeSelector": {"pool": "ops"}})
    job = hook_job(docs)
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    assert "hook-succeeded" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    operator_pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == operator_pod["containers"][0]["image"]
    assert c["command"] == ["zentinel-operator"]
    assert c["args"] == [
        "release-finalizers",
        f"--namespace={NAMESPACE}",
        f"--deployment={FULLNAME}",
        "--finalizer=ops.example.com/finalizer",
        "--watch-namespaces=",
        f"--webhook-configuration={FULLNAME}",
        "--timeout=120",
    ]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == operator_pod["securityContext"]
    assert pod["nodeSelector"] == {"pool": "ops"} and pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == HOOK
    # The args parse: the CLI accepts exactly what the chart passes.
    with pytest.raises(SystemExit) as e:
        operator_main([*c["args"], "--help"])
    assert e.value.code == 0


def test_the_hooks_rbac_is_only_what_it_does(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    role = only(docs, "Role", HOOK, NAMESPACE)
    # It scales its own operator, nothing else (rules() writes resourceNames as verb[name]).
    own = f"[{FULLNAME}]"
    assert rules(role) == {
        ("apps", "deployments", "get" + own),
        ("apps", "deployments", "patch" + own),
        ("", "pods", "list"),
    }
    cluster = only(docs, "ClusterRole", HOOK)
    assert rules(cluster) == OBJECTS | CLUSTER_OBJECTS | {
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "delete" + own)
    }
    for binding in (only(docs, "RoleBinding", HOOK, NAMESPACE), only(docs, "ClusterRoleBinding", HOOK)):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": HOOK, "namespace": NAMESPACE}]


def test_the_hook_in_namespaced_mode_touches_only_the_watched_namespaces(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"watchNamespaces": ["team-a", "team-b"], "webhook": {"enabled": False}})
    assert "--watch-namespaces=team-a,team-b" in hook_job(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
    # Cluster-wide only the cluster-scoped kind.
    assert rules(only(docs, "ClusterRole", HOOK)) == CLUSTER_OBJECTS
    for ns in ("team-a", "team-b"):
        assert rules(only(docs, "Role", HOOK, ns)) == OBJECTS


def test_the_hook_deletes_the_operator_managed_webhook_configuration(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"webhook": {"managedBy": "operator"}})
    args = hook_job(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--webhook-configuration=validating.zentinel.io" in args


def test_no_hook_when_disabled(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"uninstallHook": {"enabled": False}})
    assert not [d for d in docs if d["metadata"]["name"] == HOOK]


# ------------------------------------------------------------------------- release-finalizers
def body(name: str, finalizers: list[str], rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": name, "finalizers": finalizers, "resourceVersion": rv}}


def test_without_finalizer_keeps_everyone_elses() -> None:
    patch = uninstall.without_finalizer(body("edge", ["a/x", FINALIZER, "b/y"], rv="7"), FINALIZER)
    assert patch == {"metadata": {"finalizers": ["a/x", "b/y"], "resourceVersion": "7"}}
    assert uninstall.without_finalizer(body("edge", ["a/x"]), FINALIZER) is None
    assert uninstall.without_finalizer({"metadata": {"name": "x"}}, FINALIZER) is None


def test_without_finalizer_releases_every_shards_finalizer_too() -> None:
    held = ["a/x", f"{FINALIZER}-shard-1", f"{FINALIZER}-shard-12", f"{FINALIZER}-shardy"]
    patch = uninstall.without_finalizer(body("edge", held, rv="3"), FINALIZER)
    assert patch == {"metadata": {"finalizers": ["a/x", f"{FINALIZER}-shardy"], "resourceVersion": "3"}}


def test_release_patches_each_held_object_once_and_retries_a_conflict() -> None:
    store = {
        "zentinels": [body("edge", [FINALIZER]), body("free", [])],
        "zentinelincidentpolicies": [body("edge", ["other/keep", FINALIZER])],
        "zentinelincidents": [],
        "zentinelsilences": [body("upgrade", [FINALIZER])],  # the silence timer holds one too
        "zentinelclusterincidentpolicies": [
            {"metadata": {"name": "everyone", "finalizers": [FINALIZER], "resourceVersion": "3"}}
        ],
    }
    patched: list[tuple[str, str, dict[str, Any]]] = []
    conflicts = {"zentinelincidentpolicies": 1}

    def lister(plural: str, namespace: str | None) -> list[dict[str, Any]]:
        assert namespace in {None, "shop"}
        return store[plural]

    def patcher(plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        assert namespace == ("" if plural in uninstall.CLUSTER_PLURALS else "shop")
        if conflicts.get(plural):
            conflicts[plural] -= 1
            store[plural] = [body(name, ["other/keep", "late/one", FINALIZER], rv="2")]
            raise ApiException(status=409)
        patched.append((plural, name, patch))

    assert uninstall.release(FINALIZER, lister=lister, patcher=patcher) == 4
    assert patched == [
        ("zentinels", "edge", {"metadata": {"finalizers": [], "resourceVersion": "1"}}),
        # Re-read after the conflict: the finalizer added meanwhile stays.
        (
            "zentinelincidentpolicies",
            "edge",
            {"metadata": {"finalizers": ["other/keep", "late/one"], "resourceVersion": "2"}},
        ),
        ("zentinelsilences", "upgrade", {"metadata": {"finalizers": [], "resourceVersion": "1"}}),
        # Cluster-scoped: patched with namespace "" (k8s.patch_cluster_custom).
        ("zentinelclusterincidentpolicies", "everyone", {"metadata": {"finalizers": [], "resourceVersion": "3"}}),
    ]


def test_release_refuses_other_errors() -> None:
    def patcher(plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        uninstall.release(FINALIZER, ["shop"], lister=lambda p, ns: [body("edge", [FINALIZER])], patcher=patcher)
