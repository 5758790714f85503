"""The handlers (the pass and its incident, remediation and evidence shells, the policy and silence handlers)
reach the API only through the client they are given (``api.py``)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import zentinel_operator

PACKAGE = pathlib.Path(zentinel_operator.__file__).parent
SHELLS = [
    "handlers/incidents.py",
    "handlers/remediation.py",
    "handlers/evidence.py",
    "handlers/zentinel.py",
    "handlers/policies.py",
    "handlers/silences.py",
    *(f"remediation/{p.name}" for p in (PACKAGE / "remediation").glob("*.py")),
]
# What of k8s.py calls no API: it describes and classifies errors, and writes a selector as a string.
PURE = {"describe_error", "is_conflict", "is_not_found", "label_selector_string"}


def k8s_uses(source: str) -> set[str]:
    tree = ast.parse(source)
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "k8s":
            used.add(node.attr)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("k8s"):
            used.update(alias.name for alias in node.names)
    return used


@pytest.mark.parametrize("module", sorted(SHELLS))
def test_a_shell_uses_no_api_call_of_k8s(module: str) -> None:
    assert k8s_uses((PACKAGE / module).read_text()) <= PURE


def test_the_check_sees_an_api_call_either_way_it_is_imported() -> None:
    assert k8s_uses("from .. import k8s\nk8s.patch_configmap(ns, name, {})\nk8s.describe_error(e)") == {
        "patch_configmap",
        "describe_error",
    }
    assert k8s_uses("from ..k8s import get_secret, is_conflict") - PURE == {"get_secret"}
