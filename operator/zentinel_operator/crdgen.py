"""Generate the CustomResourceDefinitions (and their field reference) from the pydantic models.

``python -m zentinel_operator.crdgen write`` writes ``crds/*.yaml`` and ``docs/crd-reference.md``;
``... check`` exits 1 and names the files that drift from the models. The chart and ``deploy/``
copy the CRDs from ``crds/`` (see ``scripts/sync-manifests``), with their own drift check.

pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3.0 schema: no
``$ref``, a ``type`` everywhere, ``nullable`` instead of ``anyOf [X, null]``, boolean
``exclusiveMinimum``. :func:`to_structural` does that translation.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .models import ALL_KINDS
from .models.common import CATEGORY, CRDInfo, KModel
from .names import GROUP, VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
REFERENCE = REPO_ROOT / "docs" / "crd-reference.md"

_DROP = {"title", "$defs", "x-zentinel-format"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = copy.deepcopy(defs[name])
            extra = {k: v for k, v in node.items() if k != "$ref"}
            target.update(extra)
            return _resolve(target, defs)
        return {k: _resolve(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, defs) for v in node]
    return node


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    # Optional[X] -> X (absence means unset; the operator never writes explicit nulls).
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"]
            if len(options) == 1:
                merged = dict(options[0])
                for k, v in node.items():
                    if k != key:
                        merged.setdefault(k, v)
                node = merged
            else:
                raise ValueError(f"cannot express {key} with several non-null types structurally: {node}")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    if node.get("default") is None:
        node.pop("default", None)
    for k in list(node):
        if k in _DROP:
            node.pop(k)
    if "properties" in node:
        node["properties"] = {k: _structural(v) for k, v in node["properties"].items()}
        node.setdefault("type", "object")
    if "items" in node:
        node["items"] = _structural(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
    elif node.get("additionalProperties") is True:
        node.pop("additionalProperties")
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "format" in node and node["format"] not in {"date-time", "int32", "int64", "byte", "date"}:
        node.pop("format")
    return node


def to_structural(model: type[KModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    resolved = _resolve(schema, defs)
    result: dict[str, Any] = _structural(resolved)
    return result


def _without_defaults(node: Any) -> Any:
    """Status is written by the operator: no defaults (they would fill in on every read)."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def crd_for(model: type[Any]) -> dict[str, Any]:
    assert issubclass(model, CRDInfo) and issubclass(model, KModel)
    fields = model.model_fields
    spec_model = fields["spec"].annotation  # metadata is the API server's; only spec and status are ours
    status_model = fields["status"].annotation
    assert isinstance(spec_model, type) and isinstance(status_model, type)
    spec_schema = to_structural(spec_model)
    status_schema: dict[str, Any] = _without_defaults(to_structural(status_model))
    spec_schema["description"] = spec_model.__doc__.strip() if spec_model.__doc__ else f"{model.kind} spec."
    status_schema["description"] = "Written by the operator."
    root = {
        "type": "object",
        "description": model.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{model.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "zentinel-incident-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": model.scope,
            "names": {
                "kind": model.kind,
                "listKind": f"{model.kind}List",
                "plural": model.plural,
                "singular": model.singular,
                "shortNames": list(model.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": model.printer_columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_crds() -> dict[Path, str]:
    header = "# Generated from the pydantic models by `python -m zentinel_operator.crdgen write`. Do not edit.\n"
    out = {}
    for model in ALL_KINDS:
        crd = crd_for(model)
        text = header + yaml.safe_dump(crd, sort_keys=False, width=100)
        out[CRD_DIR / f"{GROUP}_{model.plural}.yaml"] = text
    out[REFERENCE] = render_reference()
    return out


_CEL_STRING = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def _rule_notes(node: dict[str, Any]) -> str:
    """The CEL rules on ``node`` as kubectl reports them, each message once with the fields it names.

    A ``messageExpression`` is shown by its literal parts (``receiver '…' is not defined``)."""
    by_text: dict[str, list[str]] = {}
    for r in node.get("x-kubernetes-validations", []):
        text = r.get("message") or "…".join(a or b for a, b in _CEL_STRING.findall(r["messageExpression"]))
        by_text.setdefault(text, []).append(r.get("fieldPath", "").lstrip("."))
    parts = []
    for text, paths in by_text.items():
        named = ", ".join(f"`{p}`" for p in dict.fromkeys(paths) if p)
        parts.append(f"{named}: {text}" if named else text)
    return "; ".join(parts).replace("|", "\\|")


def _walk_reference(schema: dict[str, Any], path: str, required: set[str], rows: list[str]) -> None:
    for name, prop in schema.get("properties", {}).items():
        full = f"{path}.{name}" if path else name
        typ = prop.get("type", "object")
        if typ == "array":
            item_type = prop.get("items", {}).get("type", "object")
            typ = f"[]{item_type}"
        notes = []
        if "enum" in prop:
            notes.append("one of " + ", ".join(f"`{v}`" for v in prop["enum"]))
        if "default" in prop and not isinstance(prop["default"], dict | list):
            notes.append(f"default `{prop['default']}`")
        for k, label in (
            ("minimum", "min"),
            ("maximum", "max"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("pattern", "pattern"),
        ):
            if k in prop:
                notes.append(f"{label} `{prop[k]}`")
        if name in required:
            notes.append("**required**")
        if prop.get("x-kubernetes-validations"):
            notes.append("kubectl apply refuses with: " + _rule_notes(prop))
        desc = " ".join(prop.get("description", "").split())
        extra = f" ({'; '.join(notes)})" if notes else ""
        rows.append(f"| `{full}` | {typ} | {desc}{extra} |".replace("\n", " "))
        child = prop.get("items", {}) if prop.get("type") == "array" else prop
        if child.get("properties"):
            _walk_reference(
                child,
                full + ("[]" if prop.get("type") == "array" else ""),
                set(child.get("required", [])),
                rows,
            )


def render_reference() -> str:
    lines = [
        "# Custom resource reference",
        "",
        "Generated from the pydantic models (`operator/zentinel_operator/models/`) by",
        "`python -m zentinel_operator.crdgen write`; CI fails when it drifts. Group `zentinel.io`, version `v1alpha1`.",
        "",
    ]
    for model in ALL_KINDS:
        crd = crd_for(model)
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        names = crd["spec"]["names"]
        lines += [
            f"## {model.kind}",
            "",
            model.description,
            "",
            f"Short names: {', '.join('`' + s + '`' for s in names['shortNames'])}; category `{CATEGORY}`"
            + ("; cluster-scoped." if model.scope == "Cluster" else "."),
            "",
            "Columns of `kubectl get "
            + names["plural"]
            + "` (`-o wide` adds those marked wide): "
            + ", ".join(
                c["name"] + (" (wide)" if c.get("priority") else "") for c in version["additionalPrinterColumns"]
            )
            + ".",
            "",
        ]
        for part in ("spec", "status"):
            sub = schema["properties"][part]
            lines += [f"### {model.kind}.{part}", ""]
            if sub.get("x-kubernetes-validations"):
                lines += [f"kubectl apply refuses a `{part}` with: {_rule_notes(sub)}", ""]
            lines += ["| field | type | description |", "|---|---|---|"]
            rows: list[str] = []
            _walk_reference(sub, part, set(sub.get("required", [])), rows)
            lines += [*rows, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zentinel_operator.crdgen")
    parser.add_argument("mode", choices=["write", "check"])
    args = parser.parse_args(argv)
    rendered = render_crds()
    drift = [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]
    if args.mode == "check":
        if drift:
            for p in drift:
                print(
                    f"drift: {p.relative_to(REPO_ROOT)} differs from the models; run "
                    "`python -m zentinel_operator.crdgen write`",
                    file=sys.stderr,
                )
            return 1
        print(f"crds: {len(rendered)} files match the models")
        return 0
    for p, text in rendered.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    print(f"wrote {len(rendered)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
