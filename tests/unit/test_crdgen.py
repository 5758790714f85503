"""The CRDs are generated from the models, structural, and committed without drift."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from zentinel_operator import crdgen
from zentinel_operator.models import ALL_KINDS


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.get("properties", {}).items():
            out += _walk(v, f"{path}.{k}")
        if "items" in node:
            out += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("model", ALL_KINDS, ids=lambda m: m.kind)
def test_schema_is_structural(model: type[Any]) -> None:
    crd = crdgen.crd_for(model)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = json.dumps(schema)
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "const"):
        assert forbidden not in text, forbidden
    for path, node in _walk(schema):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node:
                assert isinstance(node[bound], bool), path


def test_names_categories_and_short_names() -> None:
    names = {m.kind: crdgen.crd_for(m)["spec"]["names"] for m in ALL_KINDS}
    assert names["Zentinel"]["shortNames"] == ["zen"]
    assert names["ZentinelIncidentPolicy"]["shortNames"] == ["zipol"]
    assert names["ZentinelIncident"]["shortNames"] == ["zinc"]
    assert all(n["categories"] == ["zentinel-all"] for n in names.values())
    # kubectl expands a category before it resolves a name: a category spelled like any name of any
    # kind makes `kubectl get|delete <that name>` act on every kind of the category.
    every_name = {n[k] for n in names.values() for k in ("kind", "plural", "singular")}
    every_name |= {s for n in names.values() for s in n["shortNames"]}
    assert not {c.lower() for n in names.values() for c in n["categories"]} & {x.lower() for x in every_name}


def test_incident_printer_columns() -> None:
    from zentinel_operator.models import ZentinelIncident

    cols = crdgen.crd_for(ZentinelIncident)["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [c["name"] for c in cols if not c.get("priority")]
    wide = [c["name"] for c in cols if c.get("priority")]
    assert default == ["Severity", "Category", "Zentinel", "State", "Acked-By", "Age"]
    assert {"Count", "Summary"} <= set(wide)


def test_enums_and_required_fields_reach_the_schema() -> None:
    from zentinel_operator.models import ZentinelIncident

    schema = crdgen.crd_for(ZentinelIncident)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert set(spec["required"]) == {"zentinelRef", "category", "fingerprint"}
    assert "HighErrorRate" in spec["properties"]["category"]["enum"]
    status = schema["properties"]["status"]
    assert status["properties"]["severity"]["enum"] == ["SEV1", "SEV2", "SEV3", "SEV4"]
    conds = status["properties"]["conditions"]
    assert conds["x-kubernetes-list-type"] == "map"
    assert "default" not in json.dumps(status)


def test_committed_files_match_the_models() -> None:
    drift = [p for p, text in crdgen.render_crds().items() if not p.exists() or p.read_text() != text]
    assert drift == [], f"run `python -m zentinel_operator.crdgen write`: {drift}"


def test_check_mode_reports_drift(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    rendered = crdgen.render_crds()
    moved = {tmp_path / p.name: text for p, text in rendered.items()}
    for p, text in moved.items():
        p.write_text(text)
    victim = next(iter(moved))
    victim.write_text(victim.read_text() + "# edited by hand\n")
    monkeypatch.setattr(crdgen, "render_crds", lambda: moved)
    monkeypatch.setattr(crdgen, "REPO_ROOT", tmp_path)
    assert crdgen.main(["check"]) == 1
    assert victim.name in capsys.readouterr().err
    victim.write_text(moved[victim])
    assert crdgen.main(["check"]) == 0


def test_yaml_round_trips() -> None:
    for path, text in crdgen.render_crds().items():
        if path.suffix == ".yaml":
            assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def _rules(node: dict[str, Any]) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = node.get("x-kubernetes-validations", [])
    return rules


def _policy_spec() -> dict[str, Any]:
    from zentinel_operator.models import ZentinelIncidentPolicy

    schema = crdgen.crd_for(ZentinelIncidentPolicy)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: dict[str, Any] = schema["properties"]["spec"]
    return spec


def test_the_policy_crd_carries_the_cel_rules() -> None:
    """The rules item 1 of issue 14 asks for reach the generated CRD, each naming its field."""
    spec = _policy_spec()
    props = spec["properties"]
    error_rate = props["thresholds"]["properties"]["errorRate"]
    order = [r for r in _rules(error_rate) if "must be greater than" in r.get("message", "")]
    # Every pair of rungs that can be neighbours among the set ones: 4 choose 2.
    assert len(order) == 6
    assert any(r["message"].startswith("sev2 must be greater than sev3") for r in order)
    upper = [r for r in _rules(error_rate) if r.get("fieldPath") == ".sev1"]
    assert upper and upper[0]["rule"] == "!has(self.sev1) || self.sev1 <= 1.0"
    days = props["thresholds"]["properties"]["certificateDaysLeft"]
    assert any("must be less than" in r.get("message", "") for r in _rules(days))
    # Receivers named by the escalation matrix must exist: one rule per severity and level.
    receiver_paths = {r["fieldPath"] for r in _rules(spec) if "spec.receivers" in r.get("messageExpression", "")}
    assert receiver_paths == {
        f".escalation.{sev}.{level}"
        for sev in ("sev1", "sev2", "sev3", "sev4")
        for level in ("primary", "secondary", "management")
    }
    for sev in ("sev1", "sev2", "sev3", "sev4"):
        level = props["escalation"]["properties"][sev]
        assert [r["fieldPath"] for r in _rules(level)] == [".managementAfter"]
        assert [r["rule"] for r in _rules(level["properties"]["managementAfter"])] == [
            "!self.matches('(^|[a-z])[0-9]{6,}')",  # at most 5 digits before each unit
            "self.matches('[1-9]')",  # longer than zero
        ]
    receiver = props["receivers"]["items"]
    assert {r.get("fieldPath") for r in _rules(receiver)} == {".secretRef", ".url", None}
    budget = props["remediation"]["properties"]["budget"]
    assert [r["fieldPath"] for r in _rules(budget)] == [".perCluster"]
    # Modes are enums; the schema refuses anything else.
    modes = ["Automatic", "NeedsApproval", "DryRun", "Off"]
    assert props["remediation"]["properties"]["defaultMode"]["enum"] == modes
    actions = props["remediation"]["properties"]["actions"]["properties"]
    assert all(a["properties"]["mode"]["enum"] == modes for a in actions.values())


def test_every_cel_rule_has_a_message_and_a_relative_field_path() -> None:
    for model in ALL_KINDS:
        schema = crdgen.crd_for(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            for rule in _rules(node):
                assert rule.get("message") or rule.get("messageExpression"), (model.kind, path, rule)
                assert rule.get("fieldPath", ".").startswith("."), (model.kind, path, rule)
