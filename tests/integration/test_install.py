"""The chart and deploy/ installed into the real control plane, and the operator proven to work
under exactly the chart's RBAC.

kwok plays the kubelet, so the operator's pod is admitted and marked Running but its container
never runs. The test therefore runs the operator as a local process with the environment the
chart gives the container and the credentials the chart gives the pod: a token of the chart's
ServiceAccount (``kubectl create token``), not the admin's. A permission missing from the chart
makes the operator fail here, and its log must show no Forbidden/403.

The chart's admission webhook is served the same way: the certificate comes from the Secret the
chart generated (as the pod would mount it), and the webhook Service, which kube-proxy would route
to the pod, is pointed at the local process (an ExternalName Service to 127.0.0.1; the API server
resolves a webhook Service that way, and verifies the certificate for ``<svc>.<ns>.svc``).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import crash
from support.bad_objects import BEYOND_SCHEMA
from support.kube import Kube, condition, deployment, open_incident, running_pods, wait_for
from support.operator import OperatorProcess, free_port, listening
from zentinel_devcluster import tools
from zentinel_devcluster.cluster import Cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "zentinel-incident-operator"
DEPLOY = REPO / "deploy"
DEPLOY_NAMESPACE = "zentinel-system"
DEPLOY_NAME = "zentinel-incident-operator"
CRDS = (
    "zentinels.zentinel.io",
    "zentinelincidentpolicies.zentinel.io",
    "zentinelclusterincidentpolicies.zentinel.io",
    "zentinelincidents.zentinel.io",
    "zentinelsilences.zentinel.io",
)
# What a pod gets locally instead: its own ports and addresses (set by OperatorProcess / below).
LOCAL_ONLY = {
    "ZENTINEL_OPERATOR_METRICS_PORT",
    "ZENTINEL_OPERATOR_METRICS_ADDR",
    "ZENTINEL_OPERATOR_LIVENESS_ENDPOINT",
    "ZENTINEL_OPERATOR_WEBHOOK_ADDR",
    "ZENTINEL_OPERATOR_WEBHOOK_PORT",
    "ZENTINEL_OPERATOR_WEBHOOK_CERT_DIR",
}
DENIED = re.compile(r"forbidden|\b403\b|not enough permissions", re.IGNORECASE)


# ----------------------------------------------------------------------------------- helpers
class Helm:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def helm(cluster: Cluster) -> Helm:
    tools.ensure(["helm"])
    return Helm(tools.binary("helm"), cluster.kubeconfig)


@pytest.fixture
def app_namespace(kube: Kube, namespace: str) -> Iterator[str]:
    """A second namespace for the Zentinel workload, apart from the operator's own."""
    name = f"app-{secrets.token_hex(4)}"
    kube.run("create", "namespace", name)
    wait_for(lambda: kube.get("serviceaccount", "default", name), timeout=30, what="default ServiceAccount")
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


def service_account_kubeconfig(kube: Kube, cluster: Cluster, sa: str, namespace: str, path: Path) -> Path:
    """A kubeconfig whose only credential is a token of ``sa`` (TokenRequest), as in the pod."""
    token = kube.run("create", "token", sa, "-n", namespace, "--duration=2h").stdout.strip()
    admin = json.loads(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": server}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": "test", "user": sa}}],
        "current-context": sa,
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def can_i(kube: Kube, kubeconfig: Path, *args: str) -> bool:
    return kube.run("auth", "can-i", *args, kubeconfig=kubeconfig, check=False).stdout.strip() == "yes"


def container_env(manifest: str) -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def zentinel(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": name, "labels": {"tier": "edge"}},
        "spec": {"workload": {"name": name}, "config": {"configMapName": f"{name}-config"}},
    }


def policy(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "receivers": [
            {"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"},
            {"name": "lead", "type": "Webhook", "url": "http://127.0.0.1:9/lead"},
        ],
        "escalation": {
            "sev1": {"primary": ["oncall"], "secondary": ["lead"]},
            "sev2": {"primary": ["oncall"], "secondary": ["lead"]},
            "sev3": {"primary": ["oncall"], "secondary": ["lead"]},
        },
        "responseTargets": {"sev1": "3s", "sev2": "3s", "sev3": "3s", "sev4": "3s"},
        "lifecycle": {"resolveAfter": "1m", "reopenWindow": "10m"},
    }
    base.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "edge"},
        "spec": base,
    }


def denied_lines(log: str) -> list[str]:
    # A namespace left over by another test and being deleted refuses new objects with a 403 that
    # has nothing to do with RBAC; every other Forbidden is a permission the chart lacks.
    messages = ((line, re.sub(r"^\[[^\]]*\]", "", line)) for line in log.splitlines())  # not the timestamp
    return [line for line, msg in messages if DENIED.search(msg) and "being terminated" not in msg]


def point_webhook_service_at_local_process(kube: Kube, name: str, namespace: str, port: int) -> None:
    """What kube-proxy would do for the pod: the API server resolves the webhook Service to
    ``127.0.0.1:<port>`` (an ExternalName Service) and still verifies ``<svc>.<ns>.svc``."""
    kube.run("delete", "service", name, "-n", namespace)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1", "ports": [{"name": "webhook", "port": port}]},
        }
    )


def _validate_handler_ids() -> set[str]:
    """Ids of registration.py's @kopf.on.validate handlers (``id=``, else the function name)."""
    tree = ast.parse((REPO / "operator" / "zentinel_operator" / "registration.py").read_text())
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and ast.unparse(dec.func) == "kopf.on.validate":
                    explicit = [k.value for k in dec.keywords if k.arg == "id"]
                    ids.add(ast.literal_eval(explicit[0]) if explicit else node.name)
    return ids


# The chart's webhook paths are /validate-policy and /validate-cluster-policy: kopf answers them only
# when the handlers carry those ids (a service path cannot contain '_', a function name can).
WEBHOOK_PATHS_SERVED = _validate_handler_ids() == {"validate-policy", "validate-cluster-policy"}


@dataclasses.dataclass
class Release:
    name: str
    namespace: str
    fullname: str
    notes: str
    env: dict[str, str]
    sa_kubeconfig: Path
    webhook_port: int
    uninstalled: bool = False


@contextlib.contextmanager
def installed_chart(
    helm: Helm, kube: Kube, cluster: Cluster, namespace: str, tmp_path: Path, *values: str
) -> Iterator[Release]:
    """``helm install`` (and ``helm uninstall`` afterwards, unless the test did)."""
    name = f"zio-{secrets.token_hex(3)}"
    webhook_port = free_port()
    out = helm.run(
        "install",
        name,
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "3m",
        "--set",
        f"webhook.service.port={webhook_port}",
        *values,
        timeout=240,
    ).stdout
    release: Release | None = None
    try:
        fullname = f"{name}-zentinel-incident-operator"
        env = container_env(helm.run("get", "manifest", name, "-n", namespace).stdout)
        sa = service_account_kubeconfig(kube, cluster, fullname, namespace, tmp_path / f"{name}.kubeconfig")
        release = Release(name, namespace, fullname, out, env, sa, webhook_port)
        yield release
    finally:
        if release is None or not release.uninstalled:
            helm.run("uninstall", name, "-n", namespace, "--wait", "--timeout", "2m", check=False)


def start_operator(kube: Kube, release: Release, watched: str, tmp_path: Path) -> OperatorProcess:
    """The operator as the chart's pod would run: its env, its ServiceAccount's token, its webhook
    certificate (from the chart's Secret), and the webhook Service routed to it."""
    secret = kube.get("secret", f"{release.fullname}-webhook-tls", release.namespace)
    assert secret is not None, "the chart generated no webhook certificate"
    cert_dir = tmp_path / "webhook-tls"
    cert_dir.mkdir(exist_ok=True)
    for key in ("tls.crt", "tls.key", "ca.crt"):
        (cert_dir / key).write_bytes(base64.b64decode(secret["data"][key]))
    point_webhook_service_at_local_process(kube, f"{release.fullname}-webhook", release.namespace, release.webhook_port)
    local = {k: v for k, v in release.env.items() if k.startswith("ZENTINEL_OPERATOR_") and k not in LOCAL_ONLY}
    local.setdefault("ZENTINEL_OPERATOR_NAMESPACES", "")  # unset in the pod: every namespace
    local.update(
        {
            "ZENTINEL_OPERATOR_WEBHOOK_ADDR": "127.0.0.1",
            "ZENTINEL_OPERATOR_WEBHOOK_PORT": str(release.webhook_port),
            "ZENTINEL_OPERATOR_WEBHOOK_CERT_DIR": str(cert_dir),
            "ZENTINEL_OPERATOR_SCAN_INTERVAL": "1",
        }
    )
    op = OperatorProcess(release.sa_kubeconfig, watched, tmp_path, local)
    op.start()  # returns once the liveness probe answers, which a standby does too
    # Active (it holds the Lease, kopf runs) and serving the webhook the chart routes to it.
    wait_for(lambda: listening(release.webhook_port), timeout=120, what="the operator serving its webhook")
    return op


def drop_finalizers(kube: Kube, namespace: str, *objects: tuple[str, str]) -> None:
    """Once the operator is gone, release what its finalizers hold (as an admin would)."""
    for kind, name in objects:
        patch = '{"metadata":{"finalizers":null}}'
        kube.run("patch", kind, name, "-n", namespace, "--type=merge", "-p", patch, check=False)
        kube.run("delete", kind, name, "-n", namespace, "--wait=false", "--ignore-not-found", check=False)


# ------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_helm_install_and_the_operator_works_under_the_charts_rbac(
    mode: str,
    cluster: Cluster,
    kube: Kube,
    helm: Helm,
    namespace: str,
    app_namespace: str,
    tmp_path: Path,
) -> None:
    values = ["--set", f"watchNamespaces={{{app_namespace}}}"] if mode == "namespaced" else []
    with installed_chart(helm, kube, cluster, namespace, tmp_path, *values) as release:
        assert "STATUS: deployed" in release.notes
        assert "kubectl get zentinelincidents" in release.notes  # NOTES.txt
        fullname, sa_config = release.fullname, release.sa_kubeconfig
        # The chart's pod was admitted and (kwok) runs; its env is what the local process gets.
        dep = kube.get("deployment", fullname, namespace)
        assert dep is not None and dep["status"].get("availableReplicas") == 2  # the active and a standby
        assert release.env.get("ZENTINEL_OPERATOR_NAMESPACES") == (app_namespace if mode == "namespaced" else None)
        assert release.env["ZENTINEL_OPERATOR_WEBHOOK_MANAGED"] == "false"

        # Least privilege, as the API server sees it.
        assert can_i(kube, sa_config, "patch", "zentinels.zentinel.io/status", "-n", app_namespace)
        assert can_i(kube, sa_config, "delete", "pods", "-n", app_namespace)
        assert not can_i(kube, sa_config, "create", "pods", "-n", app_namespace)
        assert not can_i(kube, sa_config, "delete", "secrets", "-n", app_namespace)
        assert not can_i(kube, sa_config, "update", "zentinelincidentpolicies.zentinel.io", "-n", app_namespace)
        assert not can_i(kube, sa_config, "create", "validatingwebhookconfigurations")
        # Leader election: its own Lease only, in the release's namespace.
        assert can_i(kube, sa_config, "update", f"leases.coordination.k8s.io/{fullname}", "-n", namespace)
        assert not can_i(kube, sa_config, "update", "leases.coordination.k8s.io/other", "-n", namespace)
        assert not can_i(kube, sa_config, "create", "leases.coordination.k8s.io", "-n", app_namespace)
        assert can_i(kube, sa_config, "watch", "customresourcedefinitions")
        # Cluster policies (cluster-scoped) in either mode: read and status; their Secrets only where the
        # operator runs, read only.
        assert can_i(kube, sa_config, "watch", "zentinelclusterincidentpolicies.zentinel.io")
        assert can_i(kube, sa_config, "patch", "zentinelclusterincidentpolicies.zentinel.io/status")
        assert not can_i(kube, sa_config, "update", "zentinelclusterincidentpolicies.zentinel.io")
        assert can_i(kube, sa_config, "get", "secrets", "-n", namespace)
        if mode == "namespaced":
            assert not can_i(kube, sa_config, "list", "pods", "-n", namespace)
            assert not can_i(kube, sa_config, "list", "zentinels.zentinel.io", "--all-namespaces")
            assert can_i(kube, sa_config, "watch", "namespaces")
        else:
            assert can_i(kube, sa_config, "list", "zentinels.zentinel.io", "--all-namespaces")
            assert not can_i(kube, sa_config, "list", "namespaces")

        op = start_operator(kube, release, app_namespace, tmp_path)
        try:
            # A policy and a Zentinel: the operator picks them up and writes their status.
            kube.apply(policy(), app_namespace)
            kube.apply(deployment("edge", replicas=3), app_namespace)
            pods = running_pods(kube, app_namespace, "app=edge", 3)
            kube.apply(zentinel("edge"), app_namespace)
            wait_for(
                lambda: kube.status("zen", "edge", app_namespace).get("summary", {}).get("pods") == "3/3",
                timeout=60,
                what="Zentinel status written by the operator",
            )
            wait_for(
                lambda: (
                    (c := condition(kube.get("zipol", "edge", app_namespace), "Accepted")) and c["status"] == "True"
                ),
                timeout=60,
                what="policy Accepted=True",
            )

            # Pods crash-loop: an incident opens, and escalates past the 3 s response target.
            crash.crash_loop(kube, pods[0], restarts=5)
            inc = wait_for(lambda: open_incident(kube, app_namespace), timeout=60, what="ProcessCrash incident")
            assert inc is not None
            name = inc["metadata"]["name"]
            escalated = wait_for(
                lambda: (
                    (o := kube.get("zinc", name, app_namespace))
                    and (c := condition(o, "Escalated"))
                    and c["status"] == "True"
                    and o
                ),
                timeout=60,
                what="Escalated=True",
            )
            assert escalated and escalated["status"]["escalationLevel"] == "secondary"
            assert name in kube.status("zen", "edge", app_namespace).get("incidents", [])
            time.sleep(3)  # a few more passes (1 s interval) under the chart's RBAC
        except BaseException:
            print(f"\n--- operator log ---\n{op.logs()[-8000:]}")
            raise
        finally:
            op.stop()
        denied = denied_lines(op.logs())
        assert not denied, "the chart's RBAC lacks a permission:\n" + "\n".join(denied[:20])

        uninstalled = helm.run("uninstall", release.name, "-n", namespace, "--wait", "--timeout", "2m")
        release.uninstalled = True
        assert "uninstalled" in uninstalled.stdout

    # helm uninstall removes the operator, keeps the CRDs and the incidents.
    for crd in CRDS:
        assert kube.get("crd", crd) is not None, crd
    assert kube.get("zinc", name, app_namespace) is not None
    assert name in kube.run("get", "zentinelincidents", "-n", app_namespace).stdout
    assert kube.get("validatingwebhookconfiguration", fullname) is None
    assert kube.get("clusterrole", f"{fullname}-framework") is None
    assert kube.get("deployment", fullname, namespace) is None
    drop_finalizers(kube, app_namespace, ("zen", "edge"), ("zipol", "edge"))


@pytest.mark.xfail(
    not WEBHOOK_PATHS_SERVED,
    reason="registration.py's validation handlers need id='validate-policy' and 'validate-cluster-policy' "
    "(the chart's webhook paths); "
    "with the default id (the function name) kopf runs no handler and admits",
    strict=True,
)
def test_the_charts_webhook_refuses_a_bad_policy(
    cluster: Cluster,
    kube: Kube,
    helm: Helm,
    namespace: str,
    app_namespace: str,
    tmp_path: Path,
) -> None:
    """The chart's ValidatingWebhookConfiguration (service clientConfig, Helm-generated CA in
    caBundle) reaches the operator serving the chart's certificate, and the operator refuses what the
    CRD's schema and CEL rules cannot (those the API server refuses before calling any webhook)."""
    with installed_chart(
        helm, kube, cluster, namespace, tmp_path, "--set", f"watchNamespaces={{{app_namespace}}}"
    ) as r:
        op = start_operator(kube, r, app_namespace, tmp_path)
        try:
            case = BEYOND_SCHEMA[0]
            bad = policy(**case.spec)

            def refused() -> str | None:
                proc = kube.run("apply", "-n", app_namespace, "-f", "-", input=json.dumps(bad), check=False)
                assert proc.returncode != 0, "the webhook admitted a bad policy"
                # Until the operator serves, the API server reports that it cannot call the webhook.
                return proc.stderr if case.message in proc.stderr else None

            message = wait_for(refused, timeout=60, interval=1, what="the webhook refusing a bad policy")
            assert message and "denied the request" in message and f"{case.field}: {case.message}" in message
            # The same check for a cluster policy, through its own entry (/validate-cluster-policy).
            bad_cluster = {**bad, "kind": "ZentinelClusterIncidentPolicy", "metadata": {"name": "bad-everyone"}}
            proc = kube.run("apply", "-f", "-", input=json.dumps(bad_cluster), check=False)
            assert proc.returncode != 0 and "denied the request" in proc.stderr, proc.stderr
            assert f"{case.field}: {case.message}" in proc.stderr
            assert kube.get("zcip", "bad-everyone") is None
            kube.apply(policy(), app_namespace)  # a good one passes the same webhook
            wait_for(
                lambda: (
                    (c := condition(kube.get("zipol", "edge", app_namespace), "Accepted")) and c["status"] == "True"
                ),
                timeout=60,
                what="policy Accepted=True",
            )
            # kopf removes its finalizer (an UPDATE, through the same webhook).
            kube.run("delete", "zipol", "edge", "-n", app_namespace, "--timeout=60s")
        finally:
            op.stop()
            drop_finalizers(kube, app_namespace, ("zipol", "edge"))


def test_helm_upgrade_keeps_the_webhook_certificate(kube: Kube, helm: Helm, namespace: str) -> None:
    """The Helm-generated certificate is looked up and reused, not regenerated on every upgrade."""
    release = f"zio-{secrets.token_hex(3)}"
    fullname = f"{release}-zentinel-incident-operator"
    helm.run("install", release, str(CHART), "-n", namespace, "--set", "webhook.failurePolicy.policies=Ignore")
    try:
        before = kube.get("secret", f"{fullname}-webhook-tls", namespace)
        vwc_before = kube.get("validatingwebhookconfiguration", fullname)
        helm.run("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--set", "operator.scanInterval=20")
        after = kube.get("secret", f"{fullname}-webhook-tls", namespace)
        vwc_after = kube.get("validatingwebhookconfiguration", fullname)
        assert before and after and vwc_before and vwc_after
        assert after["data"] == before["data"]
        # One entry per policy kind (namespaced and cluster), the same CA in each.
        assert [w["clientConfig"]["caBundle"] for w in vwc_after["webhooks"]] == [before["data"]["ca.crt"]] * 2
        env = container_env(helm.run("get", "manifest", release, "-n", namespace).stdout)
        assert env["ZENTINEL_OPERATOR_SCAN_INTERVAL"] == "20"
    finally:
        helm.run("uninstall", release, "-n", namespace, "--wait", check=False)


@pytest.fixture
def deployed(kube: Kube) -> Iterator[None]:
    def gone() -> bool:
        return kube.get("namespace", DEPLOY_NAMESPACE) is None

    if not gone():  # a previous run's namespace may still be terminating
        kube.run("delete", "-f", str(DEPLOY / "20-operator.yaml"), "--ignore-not-found", "--wait=false")
        kube.run("delete", "namespace", DEPLOY_NAMESPACE, "--ignore-not-found", "--wait=false")
        wait_for(gone, timeout=120, what=f"namespace {DEPLOY_NAMESPACE} gone")
    yield
    kube.run("delete", "-f", str(DEPLOY / "20-operator.yaml"), "--ignore-not-found", "--wait=false", check=False)
    kube.run("delete", "namespace", DEPLOY_NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


def test_kubectl_apply_deploy_installs_everything(cluster: Cluster, kube: Kube, deployed: None, tmp_path: Path) -> None:
    applied = kube.run("apply", "-f", str(DEPLOY))
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr
    out = applied.stdout
    assert f"namespace/{DEPLOY_NAMESPACE} created" in out
    for crd in CRDS:
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in out
    assert f"deployment.apps/{DEPLOY_NAME} created" in out
    # The namespace enforces the restricted Pod Security Standard: the pod is admitted only if it meets it.
    wait_for(
        lambda: (
            ((kube.get("deployment", DEPLOY_NAME, DEPLOY_NAMESPACE) or {}).get("status") or {}).get("availableReplicas")
            == 2
        ),
        timeout=90,
        what="the operator Deployment available",
    )
    sa_config = service_account_kubeconfig(kube, cluster, DEPLOY_NAME, DEPLOY_NAMESPACE, tmp_path / "sa.kubeconfig")
    assert can_i(kube, sa_config, "list", "zentinels.zentinel.io", "--all-namespaces")
    assert can_i(kube, sa_config, "create", "zentinelincidents.zentinel.io", "-n", "default")
    assert can_i(kube, sa_config, "get", "pods", "--subresource=log", "-n", "default")
    assert not can_i(kube, sa_config, "create", "validatingwebhookconfigurations")
    assert not can_i(kube, sa_config, "create", "pods", "-n", "default")
    # Applying again changes nothing (idempotent, no generated values).
    pdb = f"poddisruptionbudget.policy/{DEPLOY_NAME}"
    again = kube.run("apply", "-f", str(DEPLOY)).stdout
    # kubectl always sends a PodDisruptionBudget's selector (its patch strategy is "replace") and so says
    # "configured" for it; the object itself must not change (kubectl diff is empty, the generation stays).
    assert all(line.endswith(" unchanged") or line == f"{pdb} configured" for line in again.splitlines()), again
    assert kube.run("diff", "-f", str(DEPLOY), check=False).stdout == ""
    assert kube.get("pdb", DEPLOY_NAME, DEPLOY_NAMESPACE)["metadata"]["generation"] == 1  # type: ignore[index]
