#!/usr/bin/env python3
"""The Values table of the chart's README.md, generated from the comments in values.yaml.

    scripts/chart_readme.py            rewrite the table in charts/zentinel-incident-operator/README.md
    scripts/chart_readme.py --check    exit 1 when the committed table differs
                                       (scripts/sync-manifests --check checks it too)

Each key's description is the comment block right above it in values.yaml; a comment line indented
further than the first (a list of choices, say) starts a new line in the cell. Every value that
has no description of its own must sit under a key that has one, or the generator refuses
(every key is documented, in one place). Maps with values are expanded to one row per value;
empty maps and lists, and flow-style values (``[ALL]``), are one row.

The table replaces what lies between ``<!-- values:begin -->`` and ``<!-- values:end -->``.
Standard library only: values.yaml is block-style YAML (one ``key: value`` a line) and this reads
it line by line, which is what keeps the comments. (helm-docs does the same for Go-template
charts; a script here needs no Go toolchain in CI and its output is checked like deploy/.)
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "zentinel-incident-operator"
BEGIN = "<!-- values:begin -->"
END = "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?: (?P<value>.*))?$")


class ValuesError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    default: str
    description: str


def _description(comments: list[str]) -> str:
    """Comment lines (without ``#``) joined into one cell; deeper-indented lines start new lines."""
    if not comments:
        return ""
    base = _indent(comments[0])
    parts: list[str] = []
    for line in comments:
        text = line.strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if not text:
            continue
        if parts and _indent(line) > base:
            parts.append("<br>" + text)
        else:
            parts.append((" " if parts else "") + text)
    return "".join(parts).replace("|", "\\|")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _strip_inline_comment(value: str) -> str:
    """``value  # note`` -> ``value`` (outside quotes)."""
    quote = ""
    for i, ch in enumerate(value):
        if ch in "\"'" and not quote:
            quote = ch
        elif ch == quote:
            quote = ""
        elif ch == "#" and not quote and (i == 0 or value[i - 1] == " "):
            return value[:i].rstrip()
    return value.rstrip()


def rows(text: str) -> list[Row]:
    """One row per value of values.yaml, and one per map that has a comment (see the module docstring)."""
    result: list[Row] = []
    stack: list[tuple[int, str, str]] = []  # (indent, key, description) of the enclosing maps
    comments: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped:
            comments = []  # a comment describes the key right below it, not one after a blank line
            continue
        if stripped.startswith("#"):
            comments.append(stripped[2:] if stripped.startswith("# ") else stripped[1:])
            continue
        m = KEY.match(raw)
        if not m:
            raise ValuesError(f"values.yaml:{number}: not a `key: value` line (block-style YAML only): {raw!r}")
        indent, key = len(m["indent"]), m["key"]
        value = _strip_inline_comment(m["value"] or "")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        description = _description(comments)
        comments = []
        path = ".".join([*(k for _, k, _ in stack), key])
        if value == "":
            stack.append((indent, key, description))
            if description:
                result.append(Row(path, "", description))
            continue
        if not description and not any(d for _, _, d in stack):
            raise ValuesError(f"values.yaml:{number}: {path} has no comment above it (nor does any key it is under)")
        result.append(Row(path, value, description))
    return result


def table(text: str) -> str:
    out = ["| key | default | description |", "|---|---|---|"]
    out += [f"| `{r.key}` | {_code(r.default)} | {r.description} |" for r in rows(text)]
    return "\n".join(out) + "\n"


def _code(value: str) -> str:
    return f"`{value}`".replace("|", "\\|") if value else ""


def render(readme: str, values_text: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise ValuesError(f"README.md has no {BEGIN} ... {END} markers to put the table between")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(values_text)}{END}{tail}"


def expected(chart: Path = CHART) -> str:
    return render((chart / "README.md").read_text(), (chart / "values.yaml").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chart_readme.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when README.md drifts")
    args = parser.parse_args(argv)
    readme = CHART / "README.md"
    try:
        want = expected()
    except ValuesError as e:
        print(f"chart_readme: {e}", file=sys.stderr)
        return 1
    have = readme.read_text()
    if have == want:
        print("chart_readme: README.md's Values table matches values.yaml")
        return 0
    if args.check:
        sys.stderr.writelines(list(difflib.unified_diff(have.splitlines(True), want.splitlines(True), n=1))[:40])
        print(
            "chart_readme: README.md's Values table drifts from values.yaml; run scripts/chart_readme.py",
            file=sys.stderr,
        )
        return 1
    readme.write_text(want)
    print(f"wrote {readme.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
