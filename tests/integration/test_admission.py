"""Bad policies are refused at `kubectl apply` time, naming the field and the rule.

The CRDs' schema and CEL rules refuse them with no webhook installed (the session applies crds/ only,
as `kubectl apply -f deploy/` does); the webhook adds only what CEL cannot say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.bad_objects import BAD_POLICIES, BEYOND_SCHEMA, Bad, manifest
from support.kube import Kube, wait_for
from support.operator import OperatorProcess, free_port

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
