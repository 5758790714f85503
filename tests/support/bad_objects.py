"""Bad policies and Zentinels, each with the field it must be refused on.

One table for both readers of the rules: tests/unit/test_policy_rules.py checks that
``core.policy_checks`` names the field (Python, for the Accepted condition and the CLI), and
tests/integration/test_admission.py checks that the API server refuses each one at ``kubectl apply``
with no webhook installed (the CRD's schema and CEL rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEBHOOK = {"name": "hook", "type": "Webhook", "url": "http://127.0.0.1:9/hook"}


@dataclass(frozen=True)
class Bad:
    id: str
    kind: str  # "ZentinelIncidentPolicy" or "Zentinel"
    spec: dict[str, Any]
    field: str  # the field kubectl's error names
    message: str  # in kubectl's error
    python_message: str | None = None  # in core.policy_checks' problem, where the wording differs

    @property
    def python_expected(self) -> str:
        return self.python_message or self.message


def _zen(**extra: Any) -> dict[str, Any]:
    return {"workload": {"name": "edge"}, "config": {"configMapName": "edge"}, **extra}


BAD_POLICIES = [
    Bad(
        "error-rate-out-of-order",
        "ZentinelIncidentPolicy",
        {"thresholds": {"errorRate": {"sev2": 0.01, "sev3": 0.05}}},
        "spec.thresholds.errorRate",
        "sev2 must be greater than sev3; a worse severity needs a worse value",
        python_message="sev2 (0.01) must be greater than sev3 (0.05); a worse severity needs a worse value",
    ),
    Bad(
        "error-rate-out-of-order-across-a-gap",
        "ZentinelIncidentPolicy",
        {"thresholds": {"errorRate": {"sev1": 0.05, "sev3": 0.5}}},
        "spec.thresholds.errorRate",
        "sev1 must be greater than sev3",
        python_message="sev1 (0.05) must be greater than sev3 (0.5)",
    ),
    Bad(
        "error-rate-above-one",
        "ZentinelIncidentPolicy",
        {"thresholds": {"errorRate": {"sev1": 1.5}}},
        "spec.thresholds.errorRate.sev1",
        "above the maximum 1.0",
        python_message="1.5 is above the maximum 1.0",
    ),
    Bad(
        "certificate-days-out-of-order",
        "ZentinelIncidentPolicy",
        {"thresholds": {"certificateDaysLeft": {"sev1": 10, "sev2": 3}}},
        "spec.thresholds.certificateDaysLeft",
        "sev1 must be less than sev2; a worse severity needs fewer days left",
        python_message="sev1 (10.0) must be less than sev2 (3.0)",
    ),
    Bad(
        "undefined-receiver",
        "ZentinelIncidentPolicy",
        {"escalation": {"sev1": {"primary": ["oncall"]}}},
        "spec.escalation.sev1.primary",
        "receiver 'oncall' is not defined in spec.receivers",
    ),
    Bad(
        "undefined-receiver-among-defined-ones",
        "ZentinelIncidentPolicy",
        {"receivers": [WEBHOOK], "escalation": {"sev3": {"secondary": ["hook", "lead"]}}},
        "spec.escalation.sev3.secondary",
        "receiver 'lead' is not defined in spec.receivers",
    ),
    Bad(
        "management-without-management-after",
        "ZentinelIncidentPolicy",
        {"receivers": [WEBHOOK], "escalation": {"sev2": {"management": ["hook"]}}},
        "spec.escalation.sev2.managementAfter",
        "needed when management receivers are set",
    ),
    Bad(
        "slack-without-secret",
        "ZentinelIncidentPolicy",
        {"receivers": [{"name": "chat", "type": "Slack"}]},
        "spec.receivers[0].secretRef",
        "a Slack receiver needs a Secret key holding the incoming-webhook URL",
    ),
    Bad(
        "pagerduty-without-secret",
        "ZentinelIncidentPolicy",
        {"receivers": [WEBHOOK, {"name": "pd", "type": "PagerDuty"}]},
        "spec.receivers[1].secretRef",
        "a PagerDuty receiver needs a Secret key holding the routing key",
    ),
    Bad(
        "webhook-without-url",
        "ZentinelIncidentPolicy",
        {"receivers": [{"name": "hook", "type": "Webhook"}]},
        "spec.receivers[0]",
        "a Webhook receiver needs url or secretRef",
    ),
    Bad(
        "alertmanager-without-url",
        "ZentinelIncidentPolicy",
        {"receivers": [{"name": "am", "type": "Alertmanager"}]},
        "spec.receivers[0].url",
        "an Alertmanager receiver needs Alertmanager's base URL",
    ),
    Bad(
        "receiver-name-twice",
        "ZentinelIncidentPolicy",
        {"receivers": [WEBHOOK, WEBHOOK]},
        "spec.receivers[1]",
        "Duplicate value",
        python_message="the name 'hook' is used more than once",
    ),
    Bad(
        "zero-ttl",
        "ZentinelIncidentPolicy",
        {"remediation": {"actions": {"rateLimit": {"ttl": "0s"}}}},
        "spec.remediation.actions.rateLimit.ttl",
        "must be longer than zero",
    ),
    Bad(
        "zero-response-target",
        "ZentinelIncidentPolicy",
        {"responseTargets": {"sev1": "0m"}},
        "spec.responseTargets.sev1",
        "must be longer than zero",
    ),
    Bad(
        "zero-management-after",
        "ZentinelIncidentPolicy",
        {"escalation": {"sev1": {"managementAfter": "0.0h"}}},
        "spec.escalation.sev1.managementAfter",
        "must be longer than zero",
    ),
    Bad(
        "action-mode-unknown",
        "ZentinelIncidentPolicy",
        {"remediation": {"actions": {"restart": {"mode": "Sometimes"}}}},
        "spec.remediation.actions.restart.mode",
        'Unsupported value: "Sometimes"',
        python_message="Input should be 'Automatic', 'NeedsApproval', 'DryRun' or 'Off'",
    ),
    Bad(
        "duration-not-a-duration",
        "ZentinelIncidentPolicy",
        {"lifecycle": {"reopenWindow": "an hour"}},
        "spec.lifecycle.reopenWindow",
        "should match",
        python_message="String should match pattern",
    ),
    Bad(
        "duration-too-long",
        "ZentinelIncidentPolicy",
        {"lifecycle": {"reopenWindow": "9" * 30 + "h"}},
        "spec.lifecycle.reopenWindow",
        "at most 5 digits before each unit",
    ),
    Bad(
        "positive-duration-too-long",
        "ZentinelIncidentPolicy",
        {"evidence": {"retention": "1d2592000s"}},
        "spec.evidence.retention",
        "at most 5 digits before each unit",
    ),
    Bad(
        "cluster-budget-below-zentinel-budget",
        "ZentinelIncidentPolicy",
        {"remediation": {"budget": {"perZentinel": 5, "perCluster": 2}}},
        "spec.remediation.budget.perCluster",
        "must not be below perZentinel",
        python_message="2 is below perZentinel (5)",
    ),
    Bad(
        "selector-in-without-values",
        "ZentinelIncidentPolicy",
        {"selector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}},
        "spec.selector.matchExpressions[0].values",
        "operator In needs at least one value",
    ),
    Bad(
        "selector-exists-with-values",
        "ZentinelIncidentPolicy",
        {"selector": {"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["edge"]}]}},
        "spec.selector.matchExpressions[0].values",
        "operator Exists takes no values",
    ),
    Bad(
        "selector-unknown-operator",
        "ZentinelIncidentPolicy",
        {"selector": {"matchExpressions": [{"key": "tier", "operator": "Maybe", "values": ["edge"]}]}},
        "spec.selector.matchExpressions[0].operator",
        'Unsupported value: "Maybe"',
        python_message="'Maybe' is not one of In, NotIn, Exists, DoesNotExist",
    ),
    Bad(
        "selector-bad-key",
        "ZentinelIncidentPolicy",
        {"selector": {"matchExpressions": [{"key": "no spaces", "operator": "Exists"}]}},
        "spec.selector.matchExpressions[0].key",
        "should match",
        python_message="'no spaces' is not a valid label key",
    ),
    Bad(
        "selector-bad-label-value",
        "ZentinelIncidentPolicy",
        {"selector": {"matchLabels": {"tier": "not a value"}}},
        "spec.selector.matchLabels.tier",
        "should match",
        python_message="'not a value' is not a valid label value",
    ),
    Bad(
        "cert-manager-issuer-without-certificate",
        "Zentinel",
        _zen(tls=[{"name": "edge", "secretName": "edge-tls", "issuer": {"type": "CertManager"}}]),
        "spec.tls[0].issuer.certificateName",
        "required when issuer.type is CertManager",
    ),
    Bad(
        "ca-secret-issuer-without-ca",
        "Zentinel",
        _zen(tls=[{"name": "edge", "secretName": "edge-tls", "issuer": {"type": "CASecret"}}]),
        "spec.tls[0].issuer.caSecretName",
        "required when issuer.type is CASecret",
    ),
    Bad(
        "tls-name-twice",
        "Zentinel",
        _zen(tls=[{"name": "edge", "secretName": "a"}, {"name": "edge", "secretName": "b"}]),
        "spec.tls[1]",
        "Duplicate value",
        python_message="tls[].name must be unique; repeated: edge",
    ),
]

# What only the admission webhook refuses (core.policy_checks.check_policy_beyond_schema).
BEYOND_SCHEMA = [
    Bad(
        "match-labels-bad-key",
        "ZentinelIncidentPolicy",
        {"selector": {"matchLabels": {"no spaces": "edge"}}},
        "spec.selector.matchLabels",
        "'no spaces' is not a valid label key",
    ),
]


def manifest(case: Bad, name: str = "bad") -> dict[str, Any]:
    return {"apiVersion": "zentinel.io/v1alpha1", "kind": case.kind, "metadata": {"name": name}, "spec": case.spec}
