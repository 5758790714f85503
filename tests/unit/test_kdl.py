"""The position-tracking KDL v2 locator: it must read what ckdl reads, and its spans must be exact."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ckdl
import pytest

from zentinel_operator.core import kdl
from zentinel_operator.core.kdl import KdlError, KdlNode, KdlSyntaxError, PathStep

FIXTURES = Path(__file__).parent / "fixtures" / "kdl"
FIXTURE_FILES = sorted(FIXTURES.glob("*.kdl"))


def read(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def plain(v: Any) -> Any:
    """ckdl value -> (value, annotation), comparable with ours."""
    if isinstance(v, ckdl.Value):
        return (plain(v.value)[0], v.type_annotation)
    if isinstance(v, float) and math.isnan(v):
        return ("nan", None)
    return (v, None)


def ours(v: kdl.KdlValue) -> Any:
    if isinstance(v.value, float) and math.isnan(v.value):
        return ("nan", v.type_annotation)
    return (v.value, v.type_annotation)


def tree_of_ckdl(nodes: Any) -> list[Any]:
    return [
        (
            n.name,
            n.type_annotation,
            [(type(plain(a)[0]).__name__, plain(a)) for a in n.args],
            {k: (type(plain(v)[0]).__name__, plain(v)) for k, v in n.properties.items()},
            tree_of_ckdl(n.children),
        )
        for n in nodes
    ]


def tree_of_ours(nodes: tuple[KdlNode, ...]) -> list[Any]:
    out = []
    for n in nodes:
        props: dict[str, Any] = {}
        for p in n.properties:
            props.pop(p.key, None)  # rightmost wins, keeps first-seen order like ckdl's dict
            props[p.key] = (type(ours(p.value)[0]).__name__, ours(p.value))
        first_seen = list(dict.fromkeys(p.key for p in n.properties))
        props = {k: props[k] for k in first_seen}
        out.append(
            (
                n.name,
                n.type_annotation,
                [(type(ours(a)[0]).__name__, ours(a)) for a in n.args],
                props,
                tree_of_ours(n.children),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Agreement with ckdl
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_trees_match_ckdl_exactly(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    doc = kdl.parse(text)
    assert tree_of_ours(doc.nodes) == tree_of_ckdl(ckdl.parse(text, version=2).nodes)


SYNTAX_SAMPLES = {
    "escapes": r'n "tab\there" "q\"uote" "back\\slash" "nl\n" "\u{1F600}" "s\spc" "ws \
           continues"',
    "raw strings": 'n #"C:\\path\\"# ##"has "# inside"## #""#',
    "multi-line": 'n """\n    first\n      indented\n\n    last\n    """ x=1',
    "multi-line raw": 'n #"""\n  a "quoted" \\n\n  """#',
    "multi-line whitespace escape": 'n """\n    joined \\\n        here\n    """',
    "numbers": "n 0 -1 +2 1_000 0xff 0o17 0b1010 1.5 -2.5e3 1E-2 #inf #-inf #nan",
    "keywords": "n #true #false #null",
    "annotations": "(tag)n (u8)1 x=(i64)2 (  spaced  ) 3",
    "properties": 'n a=1 "quoted key"=2 a = 3 b= #false c ="s"',
    "identifiers": "n - +x foo.bar a-b-c _x éü",
    "slashdash": "n /- 1 2 /- k=v /-\n   3 { a; /- b; c } /- { gone }\n/- skipped 1 { x }\nm",
    "nested block comments": "n /* outer /* inner */ still */ 1\n/* top\n level */ m 2",
    "line continuation": "n 1 \\  // comment after continuation\n  2 \\\n  3\nm",
    "terminators": "a; b 1;c { d; e }; f\r\ng\n",
    "bom": "\ufeffn 1",
    "empty children": "n {}\nm { }\no {\n}",
    "type on node and quoted name": '("t")"node name" 1',
}


@pytest.mark.parametrize("src", list(SYNTAX_SAMPLES.values()), ids=list(SYNTAX_SAMPLES))
def test_syntax_samples_read_like_ckdl(src: str) -> None:
    doc = kdl.parse(src)
    assert tree_of_ours(doc.nodes) == tree_of_ckdl(ckdl.parse(src, version=2).nodes)


def test_multiline_string_is_dedented_per_kdl_v2() -> None:
    doc = kdl.parse('n """\n    first\n      indented\n\n    last\n    """')
    assert doc.nodes[0].first_arg == "first\n  indented\n\nlast"


@pytest.mark.parametrize(
    "s",
    ["plain", 'q"uote', "back\\slash", "multi\nline", "tab\t", "\x01ctrl", "ünïcode", "", "#hash", "line\u2028sep"],
)
def test_format_string_reads_back(s: str) -> None:
    literal = kdl.format_string(s)
    assert ckdl.parse(f"n {literal}", version=2).nodes[0].args[0] == s
    assert kdl.parse(f"n {literal}").nodes[0].first_arg == s


@pytest.mark.parametrize("v", [0, -7, 12345678901234, True, False, None, 1.5, math.inf, -math.inf, "s"])
def test_format_value_reads_back(v: kdl.Scalar) -> None:
    got = kdl.parse(f"n {kdl.format_value(v)}").nodes[0].first_arg
    assert type(got) is type(v)
    assert got == v


# ---------------------------------------------------------------------------------------------
# Spans
# ---------------------------------------------------------------------------------------------


def all_nodes(doc: kdl.KdlDocument) -> list[tuple[KdlNode, tuple[KdlNode, ...]]]:
    return list(doc.walk())


SPAN_TEXTS = [p.read_bytes().decode("utf-8") for p in FIXTURE_FILES] + list(SYNTAX_SAMPLES.values())
SPAN_IDS = [p.name for p in FIXTURE_FILES] + list(SYNTAX_SAMPLES)


@pytest.mark.parametrize("text", SPAN_TEXTS, ids=SPAN_IDS)
def test_every_node_text_is_a_complete_node(text: str) -> None:
    """text[start:end] of every node parses on its own to exactly that node."""
    doc = kdl.parse(text)
    for node, _parents in all_nodes(doc):
        alone = ckdl.parse(node.text(text), version=2).nodes
        assert len(alone) == 1, node.text(text)
        assert tree_of_ckdl(alone) == tree_of_ours((node,))


def without(tree: list[Any], index_path: list[int]) -> list[Any]:
    """``tree`` (as built by tree_of_ours) minus the node at ``index_path``."""
    head, *rest = index_path
    if not rest:
        return tree[:head] + tree[head + 1 :]
    name, ann, args, props, children = tree[head]
    return [*tree[:head], (name, ann, args, props, without(children, rest)), *tree[head + 1 :]]


@pytest.mark.parametrize("text", SPAN_TEXTS, ids=SPAN_IDS)
def test_cutting_any_outer_span_removes_exactly_that_node(text: str) -> None:
    """Removing text[outer_start:outer_end] leaves a document that parses to the same tree minus
    that one node, for every node in every fixture and syntax sample."""
    doc = kdl.parse(text)
    full = tree_of_ours(doc.nodes)
    for node, parents in all_nodes(doc):
        index_path = []
        level = doc.nodes
        for anc in (*parents, node):
            index_path.append(next(i for i, c in enumerate(level) if c is anc))
            level = anc.children
        cut = text[: node.outer_start] + text[node.outer_end :]
        assert tree_of_ours(kdl.parse(cut).nodes) == without(full, index_path), (node.name, node.line)


def test_spans_of_an_own_line_node_with_trailing_comment() -> None:
    text = 'upstream "a" {\n    target "10.0.0.1:80" weight=1  // primary\n    target "10.0.0.2:80"\n}\n'
    doc = kdl.parse(text)
    t = doc.find('upstream "a" > target "10.0.0.1:80"')
    assert t is not None
    assert t.own_line
    assert t.terminator == "comment"
    assert text[t.start : t.end] == 'target "10.0.0.1:80" weight=1  // primary\n'
    assert text[t.outer_start : t.outer_end] == '    target "10.0.0.1:80" weight=1  // primary\n'
    assert (t.line, t.column) == (2, 5)
    assert t.prop("weight") is not None
    assert text[t.args[0].start : t.args[0].end] == '"10.0.0.1:80"'


def test_spans_with_semicolons_and_a_final_node_before_the_brace() -> None:
    text = "limits { a 1; b 2 }\n"
    doc = kdl.parse(text)
    limits = doc.nodes[0]
    a, b = limits.children
    assert (a.terminator, text[a.start : a.end], text[a.outer_start : a.outer_end]) == (";", "a 1;", "a 1; ")
    assert (b.terminator, text[b.start : b.end], text[b.outer_start : b.outer_end]) == ("none", "b 2", "b 2 ")
    assert not a.own_line
    assert limits.children_open is not None and limits.children_close is not None
    assert text[limits.children_open] == "{" and text[limits.children_close] == "}"
    assert limits.own_line and text[limits.outer_start : limits.outer_end] == text


def test_own_line_node_ended_by_semicolon_takes_the_rest_of_the_line() -> None:
    text = "n {\n    a 1;   // why\n    b 2\n}"
    a = kdl.parse(text).nodes[0].children[0]
    assert a.terminator == ";"
    assert text[a.outer_start : a.outer_end] == "    a 1;   // why\n"


def test_two_nodes_on_one_line_are_not_own_line() -> None:
    text = "    a 1; b 2\n"
    a, b = kdl.parse(text).nodes
    assert not a.own_line
    assert text[a.outer_start : a.outer_end] == "a 1; "
    assert not b.own_line  # something precedes it on the line
    assert text[b.start : b.end] == "b 2\n"


def test_crlf_and_missing_final_newline() -> None:
    text = "a 1\r\nb {\r\n    c 2\r\n}"
    a, b = kdl.parse(text).nodes
    assert text[a.start : a.end] == "a 1\r\n"
    assert text[b.outer_start : b.outer_end] == "b {\r\n    c 2\r\n}"
    assert b.terminator == "eof"
    c = b.children[0]
    assert text[c.outer_start : c.outer_end] == "    c 2\r\n"


def test_children_block_followed_by_comment() -> None:
    text = 'route "api" { upstream "x" } // the api\nnext 1\n'
    route = kdl.parse(text).nodes[0]
    assert text[route.start : route.end] == 'route "api" { upstream "x" } // the api\n'


def test_slashdashed_nodes_are_invisible_but_do_not_shift_spans() -> None:
    text = "/- gone {\n  x 1\n}\nkept 2\n"
    doc = kdl.parse(text)
    assert [n.name for n in doc.nodes] == ["kept"]
    assert text[doc.nodes[0].start :].startswith("kept 2")


def test_line_col() -> None:
    doc = kdl.parse("a 1\nbb 2\n  c 3\n")
    assert doc.line_col(0) == (1, 1)
    assert doc.line_col(4) == (2, 1)
    c = doc.nodes[2]
    assert doc.line_col(c.start) == (3, 3) == (c.line, c.column)


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def test_parse_path() -> None:
    assert kdl.parse_path('upstreams > upstream "api" > target "10.0.0.1:80"') == (
        PathStep("upstreams"),
        PathStep("upstream", "api"),
        PathStep("target", "10.0.0.1:80"),
    )
    assert kdl.parse_path('a>b 3> c #"raw"#') == (PathStep("a"), PathStep("b", 3), PathStep("c", "raw"))
    assert kdl.format_path(kdl.parse_path('routes > route "api" > policies')) == 'routes > route "api" > policies'


@pytest.mark.parametrize("bad", ["", "a >", "a > > b", "a b c", "a #true", '"unterminated'])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(KdlError):
        kdl.parse_path(bad)


def test_find_in_fixture() -> None:
    text = read("production.kdl")
    doc = kdl.parse(text)
    limits = doc.find("limits")
    assert limits is not None and limits.child("max-total-connections") is not None
    policies = doc.find('routes > route "api" > policies')
    assert policies is not None
    assert text[policies.start :].startswith("policies {")
    target = doc.find('upstreams > upstream "api" > target "10.0.1.11:8080"')
    assert target is not None
    assert text[target.outer_start : target.outer_end] == '        target "10.0.1.11:8080" weight=3   // api-1\n'
    assert doc.find('upstreams > upstream "nope"') is None
    assert doc.find('upstreams > upstream "api" > target "10.0.1.13:8080"') is None  # slashdashed
    assert len(doc.find_all("upstreams > upstream")) == 2
    assert [c[-1].first_arg for c in doc.find_all("routes > route")] == ["health", "api", "catalog"]


# ---------------------------------------------------------------------------------------------
# Refusals, with positions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "line", "needle"),
    [
        ("a {\n  b 1\n", 1, "never closed"),
        ('a "oops\nb 2\n', 1, "unterminated string"),
        ("system {\n    auto-reload true\n}\n", 2, "#true"),
        ("a 1\n}\n", 2, "unexpected '}'"),
        ("a 0x\n", 1, "not a valid number"),
        ("a #maybe\n", 1, "unknown keyword"),
        ("a /* never closed\n", 1, "unterminated /*"),
        ("a 1 \\ 2\n", 1, "line continuation"),
    ],
)
def test_scan_errors_carry_line_numbers(src: str, line: int, needle: str) -> None:
    with pytest.raises(KdlSyntaxError) as e:
        kdl.scan(src)
    assert e.value.line == line
    assert needle in str(e.value)
    with pytest.raises(KdlError) as e2:
        kdl.parse(src)
    assert e2.value.line == line
    assert "not valid KDL v2" in str(e2.value)


def test_v1_document_gets_a_hint() -> None:
    with pytest.raises(KdlError) as e:
        kdl.parse("system {\n    auto-reload true\n}\n")
    assert "KDL v1" in str(e.value)


def test_disagreement_with_ckdl_is_detected() -> None:
    mine = kdl.scan("a 1 x=2 { b }").nodes
    assert kdl._compare_nodes(mine, list(ckdl.parse("a 1 x=2 { b }", version=2).nodes), "") is None
    assert "argument" in (kdl._compare_nodes(mine, list(ckdl.parse("a 2 x=2 { b }", version=2).nodes), "") or "")
    assert "property" in (kdl._compare_nodes(mine, list(ckdl.parse("a 1 x=3 { b }", version=2).nodes), "") or "")
    assert "nodes" in (kdl._compare_nodes(mine, list(ckdl.parse("a 1 x=2 { b; c }", version=2).nodes), "") or "")
    assert "name" in (kdl._compare_nodes(mine, list(ckdl.parse("z 1 x=2 { b }", version=2).nodes), "") or "")
    # bool/int confusion is a disagreement (True == 1 in Python)
    one = kdl.scan("a 1").nodes
    assert kdl._compare_nodes(one, list(ckdl.parse("a #true", version=2).nodes), "") is not None


@pytest.mark.parametrize("text", ["c /-", "node /-\n", "a /- ", "_/-\r Pr_/-\r"])
def test_a_dangling_slashdash_is_a_syntax_error_with_its_place(text: str) -> None:
    """Found by atheris (tests/fuzz/atheris_kdl.py): the locator read past the end of the text."""
    with pytest.raises(kdl.KdlSyntaxError) as scanned:
        kdl.scan(text)
    assert "comments out nothing" in str(scanned.value)
    with pytest.raises(KdlError) as parsed:
        kdl.parse(text)
    assert "not valid KDL v2" in str(parsed.value) and parsed.value.line is not None
