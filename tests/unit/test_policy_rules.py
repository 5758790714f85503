"""The rules in the CRDs (schema and CEL) and in core.policy_checks say the same thing.

The API server's side of the same table runs in tests/integration/test_admission.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from support.bad_objects import BAD_POLICIES, BEYOND_SCHEMA, Bad
from zentinel_operator.core.policy_checks import check_policy, check_policy_beyond_schema, check_zentinel
from zentinel_operator.crdgen import CRD_DIR
from zentinel_operator.models.common import POSITIVE_DURATION_MESSAGE


def _problems(case: Bad) -> list[str]:
    return check_policy(case.spec) if case.kind == "ZentinelIncidentPolicy" else check_zentinel(case.spec)


@pytest.mark.parametrize("case", BAD_POLICIES + BEYOND_SCHEMA, ids=lambda c: c.id)
def test_python_checks_name_the_field_the_crd_names(case: Bad) -> None:
    problems = _problems(case)
    matching = [
        p
        for p in problems
        if (path := p.split(": ", 1)[0]) and (case.field.startswith(path) or path.startswith(case.field))
    ]
    assert matching, f"no problem on {case.field}: {problems}"
    assert any(case.python_expected in p for p in matching), matching


@pytest.mark.parametrize("case", BAD_POLICIES, ids=lambda c: c.id)
def test_the_webhook_leaves_schema_rules_to_the_api_server(case: Bad) -> None:
    if case.kind == "ZentinelIncidentPolicy":
        assert check_policy_beyond_schema(case.spec) == []


@pytest.mark.parametrize("case", BEYOND_SCHEMA, ids=lambda c: c.id)
def test_the_webhook_keeps_what_cel_cannot_say(case: Bad) -> None:
    assert any(p.startswith(case.field + ": ") and case.message in p for p in check_policy_beyond_schema(case.spec))


def _crd_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / f"zentinel.io_{plural}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _positive_duration_paths(node: dict[str, Any], path: str) -> set[str]:
    found = set()
    if any(r.get("message") == POSITIVE_DURATION_MESSAGE for r in node.get("x-kubernetes-validations", [])):
        found.add(path)
    for name, child in (node.get("properties") or {}).items():
        found |= _positive_duration_paths(child, f"{path}.{name}")
    return found


def test_positive_durations_are_the_same_fields_in_cel_and_python() -> None:
    from zentinel_operator.core.policy_checks import _duration_fields
    from zentinel_operator.models.policy import ZentinelIncidentPolicySpec

    python = {path for path, _, positive in _duration_fields(ZentinelIncidentPolicySpec()) if positive}
    assert _positive_duration_paths(_crd_schema("zentinelincidentpolicies"), "spec") == python


def test_cel_rules_have_bounded_lists_to_iterate() -> None:
    """The API server rejects a CRD whose CEL cost estimate is unbounded: every list a rule walks has maxItems."""
    spec = _crd_schema("zentinelincidentpolicies")
    assert spec["properties"]["receivers"]["maxItems"] == 32
    for sev in ("sev1", "sev2", "sev3", "sev4"):
        for level in ("primary", "secondary", "management"):
            prop = spec["properties"]["escalation"]["properties"][sev]["properties"][level]
            assert prop["maxItems"] == 16 and prop["items"]["maxLength"] == 63


def _paths_with_message(node: dict[str, Any], path: str, message: str) -> set[str]:
    found = set()
    if any(r.get("message") == message for r in node.get("x-kubernetes-validations", [])):
        found.add(path)
    for name, child in (node.get("properties") or {}).items():
        found |= _paths_with_message(child, f"{path}.{name}", message)
    return found


def test_every_duration_is_bounded_in_cel_and_python() -> None:
    """No duration the API server accepts overflows the operator's date arithmetic."""
    from zentinel_operator.core.durations import parse_duration
    from zentinel_operator.core.policy_checks import _duration_fields
    from zentinel_operator.models.common import DURATION_DIGITS_MESSAGE, DURATION_MAX_LENGTH
    from zentinel_operator.models.policy import ZentinelIncidentPolicySpec

    python = {path for path, _, _ in _duration_fields(ZentinelIncidentPolicySpec())}
    assert _paths_with_message(_crd_schema("zentinelincidentpolicies"), "spec", DURATION_DIGITS_MESSAGE) == python
    longest = ("99999d" * DURATION_MAX_LENGTH)[: DURATION_MAX_LENGTH - DURATION_MAX_LENGTH % 6]
    assert check_policy({"lifecycle": {"reopenWindow": longest}}) == []
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + parse_duration(longest)  # no OverflowError
