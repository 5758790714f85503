"""``helm uninstall`` leaves nothing stuck in Terminating: the chart's pre-delete hook releases
kopf's finalizers, on the real control plane with the real helm.

As in test_install.py, kwok plays the kubelet: it marks the hook Job's pod Succeeded without
running it. So the test runs the hook's container itself, as a local process with exactly the
hook's command line (read from ``helm get hooks``) and a token of the hook's ServiceAccount (its
RBAC is the chart's, a missing permission fails here), then lets ``helm uninstall`` run the Job
as Helm does. The operator is the local process of test_install.py, under the chart's
ServiceAccount; it is stopped first, as scaling its Deployment to 0 stops the pod.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.kube import Kube, wait_for
from zentinel_devcluster.cluster import Cluster

from . import test_install as install

pytestmark = pytest.mark.integration

helm = install.helm
app_namespace = install.app_namespace
FINALIZER = "operator.zentinel.io/finalizer"


def finalizers(kube: Kube, kind: str, name: str, namespace: str) -> list[str]:
    obj = kube.get(kind, name, namespace) or {}
    return list(obj.get("metadata", {}).get("finalizers") or [])


def test_helm_uninstall_releases_the_finalizers_so_nothing_hangs_in_terminating(
    cluster: Cluster,
    kube: Kube,
    helm: install.Helm,
    namespace: str,
    app_namespace: str,
    tmp_path: Path,
) -> None:
    with install.installed_chart(helm, kube, cluster, namespace, tmp_path) as release:
        hook = f"{release.fullname}-uninstall"
        op = install.start_operator(kube, release, app_namespace, tmp_path)
        try:
            kube.apply(install.policy(), app_namespace)
            for name in ("edge", "doomed"):
                kube.apply(install.zentinel(name), app_namespace)
            for kind, name in (("zen", "edge"), ("zen", "doomed"), ("zipol", "edge")):
                wait_for(
                    lambda kind=kind, name=name: FINALIZER in finalizers(kube, kind, name, app_namespace),
                    timeout=60,
                    what=f"kopf's finalizer on {kind}/{name}",
                )
        finally:
            op.stop()

        # The operator is gone and its finalizer holds: a deleted Zentinel hangs in Terminating.
        kube.run("delete", "zen", "doomed", "-n", app_namespace, "--wait=false")
        doomed = kube.get("zen", "doomed", app_namespace)
        assert doomed is not None and doomed["metadata"].get("deletionTimestamp")

        # The hook, exactly as the chart renders it, under its own ServiceAccount.
        hooks = [d for d in yaml.safe_load_all(helm.run("get", "hooks", release.name, "-n", namespace).stdout) if d]
        (job,) = [d for d in hooks if d["kind"] == "Job"]
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["zentinel-operator"]
        token = install.service_account_kubeconfig(kube, cluster, hook, namespace, tmp_path / "hook.kubeconfig")
        proc = subprocess.run(
            [sys.executable, "-m", "zentinel_operator", *container["args"]],
            env={**os.environ, "KUBECONFIG": str(token)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # The hook releases every object the operator's finalizer holds, cluster-wide: in the session's
        # shared cluster that may include other tests' leftovers, so check this test's three by name.
        for held in (f"zentinels {app_namespace}/doomed", f"zentinels {app_namespace}/edge"):
            assert f"released {held}\n" in proc.stderr, proc.stderr
        assert f"released zentinelincidentpolicies {app_namespace}/edge\n" in proc.stderr, proc.stderr

        # It stopped the operator and removed the webhook configuration nobody serves any more...
        dep = kube.get("deployment", release.fullname, namespace)
        assert dep is not None and dep["spec"]["replicas"] == 0
        assert kube.get("validatingwebhookconfiguration", release.fullname) is None
        # ... and the finalizer: the Terminating Zentinel is gone, the others are free.
        wait_for(lambda: kube.get("zen", "doomed", app_namespace) is None, timeout=30, what="zen/doomed deleted")
        assert finalizers(kube, "zen", "edge", app_namespace) == []
        assert finalizers(kube, "zipol", "edge", app_namespace) == []

        # helm uninstall runs the hook Job (kwok completes its pod) and removes the release.
        out = helm.run("uninstall", release.name, "-n", namespace, "--wait", "--timeout", "2m")
        release.uninstalled = True
        assert "uninstalled" in out.stdout
        assert kube.get("job", hook, namespace) is None  # hook-delete-policy: hook-succeeded
        assert kube.get("serviceaccount", hook, namespace) is None

    # Nothing hangs: the Zentinel, the policy and their whole namespace delete.
    kube.run("delete", "zen/edge", "zipol/edge", "-n", app_namespace, "--timeout=60s")
    kube.run("delete", "namespace", app_namespace, "--timeout=120s")
    assert kube.get("namespace", app_namespace) is None
