"""scripts/chart_readme.py: the chart README's Values table, generated from values.yaml's comments."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "zentinel-incident-operator"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_readme", REPO / "scripts" / "chart_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chart_readme"] = module
    spec.loader.exec_module(module)
    return module


chart_readme = _load()

VALUES = """\
# The file's header: not a key's description.

image:
  # Where the image is.
  repository: zentinel  # an inline comment is not part of the default
  # Empty: the chart's appVersion.
  tag: ""

# Which namespaces.
#   []      every namespace
#   [a, b]  only these | those
watchNamespaces: []

# Resources of the container.
resources:
  limits:
    memory: 512Mi
"""


def test_rows_take_the_comment_above_each_key() -> None:
    rows = [(r.key, r.default, r.description) for r in chart_readme.rows(VALUES)]
    assert rows == [
        ("image.repository", "zentinel", "Where the image is."),
        ("image.tag", '""', "Empty: the chart's appVersion."),
        ("watchNamespaces", "[]", "Which namespaces.<br>[]      every namespace<br>[a, b]  only these \\| those"),
        ("resources", "", "Resources of the container."),
        ("resources.limits.memory", "512Mi", ""),
    ]


def test_an_undocumented_value_is_refused_with_its_line_and_key() -> None:
    with pytest.raises(chart_readme.ValuesError, match=r"values.yaml:4: image.tag has no comment"):
        chart_readme.rows("image:\n  # documented\n  repository: x\n  tag: y\n")
    with pytest.raises(chart_readme.ValuesError, match=r"values.yaml:1: not a `key: value` line"):
        chart_readme.rows("- a list at the top\n")


def test_render_replaces_only_what_is_between_the_markers() -> None:
    readme = "# Chart\n\nprose\n\n<!-- values:begin -->\nold table\n<!-- values:end -->\n\nmore prose\n"
    out = chart_readme.render(readme, VALUES)
    assert out.startswith("# Chart\n\nprose\n\n<!-- values:begin -->\n| key | default | description |\n")
    assert "old table" not in out and out.endswith("<!-- values:end -->\n\nmore prose\n")
    assert "| `image.repository` | `zentinel` | Where the image is. |" in out
    assert chart_readme.render(out, VALUES) == out  # idempotent
    with pytest.raises(chart_readme.ValuesError, match="markers"):
        chart_readme.render("no markers", VALUES)


def test_the_committed_readme_is_generated_from_values_yaml() -> None:
    assert (CHART / "README.md").read_text() == chart_readme.expected(CHART)


def test_every_value_of_the_chart_has_a_row() -> None:
    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [k for key, value in node.items() for k in leaves(value, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    values_text = (CHART / "values.yaml").read_text()
    keys = {r.key for r in chart_readme.rows(values_text) if r.default}
    assert keys == set(leaves(yaml.safe_load(values_text)))
