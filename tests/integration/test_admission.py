"""Bad policies are refused at `kubectl apply` time, naming the field and the rule.

The CRDs' schema and CEL rules refuse them with no webhook installed (the session applies crds/ only,
as `kubectl apply -f deploy/` does); the webhook adds only what CEL cannot say.
"""

from __future__ import annotations

import importlib
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.bad_objects import BAD_POLICIES, BEYOND_SCHEMA, Bad, manifest
from support.kube import Kube, wait_for
from support.operator import OperatorProcess, free_port
from zentinel_operator.core.policy_checks import check_policy
from zentinel_operator.models.policy import MAX_RECEIVERS, MAX_RECEIVERS_PER_LEVEL, RUNGS, ZentinelIncidentPolicySpec

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {
        "ZENTINEL_OPERATOR_WEBHOOK_ENABLED": "true",
        "ZENTINEL_OPERATOR_WEBHOOK_ADDR": "127.0.0.1",
        "ZENTINEL_OPERATOR_WEBHOOK_HOST": "127.0.0.1",
        "ZENTINEL_OPERATOR_WEBHOOK_PORT": str(free_port()),
    }


@pytest.fixture
def webhook(kube: Kube, operator: OperatorProcess) -> Iterator[None]:
    wait_for(
        lambda: kube.get("validatingwebhookconfiguration", "validating.zentinel.io"),
        timeout=60,
        what="the operator's ValidatingWebhookConfiguration",
    )
    yield
    kube.run("delete", "validatingwebhookconfiguration", "validating.zentinel.io", "--ignore-not-found")


def policy(spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "ZentinelIncidentPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


def apply(kube: Kube, namespace: str, text: str) -> Any:
    return kube.run("apply", "-n", namespace, "-f", "-", input=text, check=False)


PLURALS = {"ZentinelIncidentPolicy": "zentinelincidentpolicies", "Zentinel": "zentinels"}


@pytest.mark.parametrize("case", BAD_POLICIES, ids=lambda c: c.id)
def test_crd_refuses_without_any_webhook(kube: Kube, namespace: str, case: Bad) -> None:
    assert kube.get("validatingwebhookconfiguration", "validating.zentinel.io") is None
    proc = apply(kube, namespace, json.dumps(manifest(case)))
    assert proc.returncode != 0, f"{case.id} was accepted"
    assert "denied the request" not in proc.stderr  # the API server's own validation, no webhook
    assert f"{case.field}: " in proc.stderr, proc.stderr
    assert case.message in proc.stderr, proc.stderr
    assert kube.get(PLURALS[case.kind], "bad", namespace) is None


@pytest.mark.parametrize("case", BEYOND_SCHEMA, ids=lambda c: c.id)
def test_webhook_refuses_what_cel_cannot_say(kube: Kube, namespace: str, webhook: None, case: Bad) -> None:
    proc = apply(kube, namespace, json.dumps(manifest(case)))
    assert proc.returncode != 0
    assert "denied the request" in proc.stderr
    assert f"{case.field}: {case.message}" in proc.stderr, proc.stderr
    assert kube.get(PLURALS[case.kind], "bad", namespace) is None


def test_with_the_webhook_installed_the_schema_still_answers_first(kube: Kube, namespace: str, webhook: None) -> None:
    case = BAD_POLICIES[0]
    proc = apply(kube, namespace, json.dumps(manifest(case)))
    assert proc.returncode != 0 and "denied the request" not in proc.stderr
    assert f"{case.field}: " in proc.stderr and case.message in proc.stderr


def test_schema_refuses_bad_durations_and_enums(kube: Kube, namespace: str) -> None:
    proc = apply(kube, namespace, policy({"lifecycle": {"resolveAfter": "five minutes"}}))
    assert proc.returncode != 0 and "spec.lifecycle.resolveAfter" in proc.stderr
    proc = apply(kube, namespace, policy({"remediation": {"defaultMode": "Sometimes"}}))
    assert proc.returncode != 0 and "spec.remediation.defaultMode" in proc.stderr
    assert 'supported values: "Automatic", "NeedsApproval", "DryRun", "Off"' in proc.stderr


def test_valid_policy_is_accepted_and_counts_its_zentinels(kube: Kube, namespace: str, webhook: None) -> None:
    spec = {
        "selector": {"matchLabels": {"tier": "edge"}},
        "receivers": [{"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/hook"}],
        "escalation": {"sev1": {"primary": ["oncall"]}},
    }
    proc = apply(kube, namespace, policy(spec))
    assert proc.returncode == 0, proc.stderr
    for name, tier in (("a", "edge"), ("b", "edge"), ("c", "internal")):
        kube.apply(
            {
                "apiVersion": "zentinel.io/v1alpha1",
                "kind": "Zentinel",
                "metadata": {"name": name, "labels": {"tier": tier}},
                "spec": {"workload": {"name": name}, "config": {"configMapName": name}},
            },
            namespace,
        )
    st = wait_for(
        lambda: (
            ((kube.get("zipol", "p", namespace) or {}).get("status") or {}).get("selectedZentinels") == 2
            and kube.get("zipol", "p", namespace)
        ),
        timeout=60,
        what="selectedZentinels == 2",
    )
    assert st["status"]["selected"] == ["a", "b"]
    out = kube.run("get", "zipol", "-n", namespace).stdout.splitlines()
    assert out[0].split()[:2] == ["NAME", "SELECTED"] and out[1].split()[:2] == ["p", "2"]


def test_severity_override_without_reason_is_refused_by_the_schema(kube: Kube, namespace: str) -> None:
    inc = {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncident",
        "metadata": {"name": "inc-20261127-001"},
        "spec": {
            "zentinelRef": {"name": "edge"},
            "category": "HighErrorRate",
            "fingerprint": "edge/HighErrorRate",
            "severityOverride": "SEV4",
        },
    }
    proc = apply(kube, namespace, json.dumps(inc))
    assert proc.returncode != 0
    assert "severityOverrideReason is required" in proc.stderr


REPO = Path(__file__).resolve().parents[2]
WEBHOOK_AT = "http://127.0.0.1:9/hook"


def _documented_policies() -> list[tuple[str, dict[str, Any]]]:
    """The policies a user copies: examples/ and the chart's NOTES (its heredoc, templates left out)."""
    out = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ZentinelIncidentPolicy":
                out.append((f"examples/{path.name}", doc))
    notes = (REPO / "charts/zentinel-incident-operator/templates/NOTES.txt").read_text()
    for block in re.findall(r"<<YAML\n(.*?)\n\s*YAML", notes, re.S):
        doc = yaml.safe_load(textwrap.dedent(block))
        if doc.get("kind") == "ZentinelIncidentPolicy":
            out.append(("chart NOTES.txt", doc))
    return out


def _suite_policies() -> list[tuple[str, dict[str, Any]]]:
    """What the other integration tests apply, built by their own helpers (so this list cannot drift)."""

    def mod(name: str) -> Any:
        return importlib.import_module(f"integration.test_{name}")

    hook = [{"name": "hook", "type": "Webhook", "url": WEBHOOK_AT}]
    ref = {"name": "paging"}
    every_type = [
        {"name": "chat", "type": "Slack", "secretRef": {**ref, "key": "slack-url"}},
        {"name": "pager", "type": "PagerDuty", "secretRef": {**ref, "key": "routing-key"}, "url": WEBHOOK_AT},
        {"name": "hook", "type": "Webhook", "url": WEBHOOK_AT, "tokenSecretRef": {**ref, "key": "hook-token"}},
        {"name": "am", "type": "Alertmanager", "url": "http://127.0.0.1:9"},
    ]
    restart = {"restart": {"mode": "Automatic"}}
    return [
        ("test_triage", mod("triage").policy()),
        ("test_cli", mod("cli").policy()),
        ("test_incidents", mod("incidents").policy()),
        ("test_install", mod("install").policy()),
        ("test_prometheus_source", mod("prometheus_source").policy()),
        ("test_evidence", mod("evidence").policy(retention="5s")),
        ("test_remediation", mod("remediation").policy(actions={"memoryLimit": {"mode": "Automatic", "cap": "700Mi"}})),
        ("test_runbook_e2e", mod("runbook_e2e").policy(restart)),
        ("test_notifications", mod("notifications").policy(hook, ["hook"])),
        ("test_notifications-every-type", mod("notifications").policy(every_type, [r["name"] for r in every_type])),
    ]


def _largest_policy() -> dict[str, Any]:
    """Every list at its maxItems and every rung set: the CEL rules' runtime cost stays within the limit."""
    receivers = [{"name": f"r{i}", "type": "Webhook", "url": WEBHOOK_AT} for i in range(MAX_RECEIVERS)]
    names = [r["name"] for r in receivers]
    level = names[-MAX_RECEIVERS_PER_LEVEL:]
    spec = ZentinelIncidentPolicySpec().dump()  # every default written out
    spec["receivers"] = receivers
    spec["escalation"] = {
        sev: {"primary": level, "secondary": level, "management": level, "managementAfter": "30m"} for sev in RUNGS
    }
    return {"kind": "ZentinelIncidentPolicy", "spec": spec}


GOOD_POLICIES = [
    *_documented_policies(),
    *_suite_policies(),
    ("empty", {"kind": "ZentinelIncidentPolicy", "spec": {}}),
    ("every-list-full", _largest_policy()),
]


@pytest.mark.parametrize("source,doc", GOOD_POLICIES, ids=[g[0] for g in GOOD_POLICIES])
def test_good_policies_are_accepted_without_any_webhook(
    kube: Kube, namespace: str, source: str, doc: dict[str, Any]
) -> None:
    assert kube.get("validatingwebhookconfiguration", "validating.zentinel.io") is None
    body = {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncidentPolicy",
        "metadata": {"name": "good"},
        "spec": doc["spec"],
    }
    proc = apply(kube, namespace, json.dumps(body))
    assert proc.returncode == 0, f"{source}: {proc.stderr}"
    stored = kube.get("zipol", "good", namespace)
    assert stored is not None
    assert check_policy(stored["spec"]) == []  # and the operator's own checks agree: Accepted=True
