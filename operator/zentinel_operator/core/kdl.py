"""A small, position-tracking KDL v2 reader: it finds nodes and their exact spans in the source text.

Zentinel's config is KDL v2. ``ckdl`` (the C parser) is the authority on whether a text parses, but it
keeps no source positions and no comments, so it cannot tell *where* a node is. This module scans the
text itself and returns a tree whose nodes carry character offsets, so that an edit replaces or
inserts a span of text and leaves every other byte (comments, blank lines, formatting) untouched.

:func:`parse` runs ckdl first (KDL v2), then this scanner, and refuses to answer when the two
disagree about the document's content: a span is only trusted when the tree it belongs to is the
same tree the real parser sees. :func:`scan` is the scanner alone (used to put line numbers on
messages about texts ckdl refuses).

Offsets are indices into the Python ``str`` (code points), not UTF-8 bytes.

Spans of a node (see :class:`KdlNode`)::

        target "10.0.0.1:80" weight=1  // primary
    ^   ^                              ^         ^
    |   start                          |         end (after the terminator: here the comment
    outer_start (line start,           |              and its newline)
    own-line nodes only)               outer_end == end for an own-line node ended by a newline

Pure functions only: no I/O (this module lives in the operator's core).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import ckdl

__all__ = [
    "KdlDocument",
    "KdlError",
    "KdlNode",
    "KdlProperty",
    "KdlSyntaxError",
    "KdlValue",
    "PathStep",
    "Scalar",
    "format_path",
    "format_string",
    "format_value",
    "line_start",
    "parse",
    "parse_path",
    "scan",
]

Scalar = str | int | float | bool | None

# KDL v2 newlines (CRLF is one newline) and "unicode-space" (horizontal whitespace).
_NEWLINE_CHARS = frozenset("\r\n\x85\x0b\x0c\u2028\u2029")
_SPACE_CHARS = frozenset(
    "\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)
# Characters that end a bare identifier (besides whitespace and newlines).
_NON_IDENT = frozenset('\\/(){};[]"#=')
_BOM = "\ufeff"

_DECIMAL = re.compile(r"[+-]?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?\Z")
_RADIX = re.compile(r"([+-]?)0(?:(x)([0-9a-fA-F][0-9a-fA-F_]*)|(o)([0-7][0-7_]*)|(b)([01][01_]*))\Z")
_LOOKS_NUMERIC = re.compile(r"[+-]?\.?[0-9]")
_V1_KEYWORDS = {"true": "#true", "false": "#false", "null": "#null", "inf": "#inf", "-inf": "#-inf", "nan": "#nan"}
_KEYWORDS: dict[str, Scalar] = {
    "true": True,
    "false": False,
    "null": None,
    "inf": math.inf,
    "-inf": -math.inf,
    "nan": math.nan,
}
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "b": "\b", "f": "\f", "s": " "}


class KdlError(ValueError):
    """The text is not a KDL v2 document this module can locate nodes in."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.reason = message
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)


class KdlSyntaxError(KdlError):
    """The scanner could not read the text (it carries the position where it stopped)."""


@dataclass(frozen=True)
class KdlValue:
    """One argument or property value. ``start``/``end`` cover the literal itself; ``outer_start``
    also covers a type annotation such as ``(u8)``."""

    value: Scalar
    raw: str
    start: int
    end: int
    outer_start: int
    type_annotation: str | None = None
    kind: Literal["string", "number", "keyword"] = "string"


@dataclass(frozen=True)
class KdlProperty:
    key: str
    key_start: int
    value: KdlValue


@dataclass(frozen=True, eq=False)
class KdlNode:
    """A node and where it sits in the text.

    - ``start``: first character of the node (its type annotation or name).
    - ``end``: just after its terminator: ``;``, the newline, or a trailing ``//`` comment with its
      newline. A node closed by the parent's ``}`` (or the end of the text) ends after its last token.
    - ``outer_start``/``outer_end``: the span to cut to take the node out cleanly. For a node on lines
      of its own (``own_line``) that is from the start of its first line (indentation included) to
      after the newline that ends it; otherwise the node plus the horizontal whitespace after it.
    - ``children_open``/``children_close``: offsets of ``{`` and ``}`` when the node has children.
    """

    name: str
    name_start: int
    type_annotation: str | None
    start: int
    end: int
    outer_start: int
    outer_end: int
    own_line: bool
    terminator: Literal[";", "newline", "comment", "eof", "none"]
    line: int
    column: int
    args: tuple[KdlValue, ...]
    properties: tuple[KdlProperty, ...]
    children: tuple[KdlNode, ...]
    children_open: int | None
    children_close: int | None

    @property
    def has_children_block(self) -> bool:
        return self.children_open is not None

    @property
    def first_arg(self) -> Scalar:
        """Decoded first positional argument, or None when there is none."""
        return self.args[0].value if self.args else None

    def prop(self, key: str) -> KdlValue | None:
        """Property value by key; the rightmost wins, as in KDL."""
        for p in reversed(self.properties):
            if p.key == key:
                return p.value
        return None

    def children_named(self, name: str) -> list[KdlNode]:
        return [c for c in self.children if c.name == name]

    def child(self, name: str) -> KdlNode | None:
        """First child with this name (what Zentinel's ``children.get(name)`` returns)."""
        for c in self.children:
            if c.name == name:
                return c
        return None

    def text(self, source: str) -> str:
        return source[self.start : self.end]


@dataclass(frozen=True)
class PathStep:
    """One step of a node path: a node name and, optionally, the value of its first argument."""

    name: str
    arg: str | int | None = None

    def matches(self, node: KdlNode) -> bool:
        if node.name != self.name:
            return False
        if self.arg is None:
            return True
        first = node.first_arg
        return type(first) is type(self.arg) and first == self.arg

    def __str__(self) -> str:
        if self.arg is None:
            return self.name
        return f"{self.name} {format_value(self.arg)}"


Matcher = Callable[[KdlNode, PathStep], bool]


def _default_match(node: KdlNode, step: PathStep) -> bool:
    return step.matches(node)


class KdlDocument:
    """The located tree of one text."""

    def __init__(self, text: str, nodes: tuple[KdlNode, ...]) -> None:
        self.text = text
        self.nodes = nodes
        self._newlines: list[int] | None = None

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of ``offset`` (lines counted by ``\\n``)."""
        if self._newlines is None:
            self._newlines = [i for i, c in enumerate(self.text) if c == "\n"]
        line = bisect.bisect_left(self._newlines, offset)
        col_base = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - col_base + 1

    def walk(self) -> Iterator[tuple[KdlNode, tuple[KdlNode, ...]]]:
        """Every node, depth first in document order, with its ancestors (outermost first)."""
        stack: list[tuple[KdlNode, tuple[KdlNode, ...]]] = [(n, ()) for n in reversed(self.nodes)]
        while stack:
            node, parents = stack.pop()
            yield node, parents
            stack.extend((c, (*parents, node)) for c in reversed(node.children))

    def find_all(self, path: str | Sequence[PathStep], *, match: Matcher | None = None) -> list[tuple[KdlNode, ...]]:
        """Every chain ``(ancestor, ..., node)`` whose names/first arguments follow ``path``."""
        steps = parse_path(path) if isinstance(path, str) else tuple(path)
        if not steps:
            return []
        m = match or _default_match
        chains: list[tuple[KdlNode, ...]] = [(n,) for n in self.nodes if m(n, steps[0])]
        for step in steps[1:]:
            chains = [(*chain, c) for chain in chains for c in chain[-1].children if m(c, step)]
        return chains

    def find(self, path: str | Sequence[PathStep], *, match: Matcher | None = None) -> KdlNode | None:
        """First node (in document order) at ``path``, e.g. ``upstreams > upstream "api" > target``."""
        chains = self.find_all(path, match=match)
        return chains[0][-1] if chains else None


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------


def format_string(s: str) -> str:
    """A KDL v2 quoted string literal for ``s``."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in _NEWLINE_CHARS:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_value(v: Scalar) -> str:
    """A KDL v2 literal for a scalar (strings always quoted)."""
    if v is True:
        return "#true"
    if v is False:
        return "#false"
    if v is None:
        return "#null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "#nan"
        if math.isinf(v):
            return "#inf" if v > 0 else "#-inf"
        return repr(v)
    return format_string(v)


def format_path(steps: Sequence[PathStep]) -> str:
    return " > ".join(str(s) for s in steps)


def line_start(text: str, pos: int) -> int:
    """Offset of the first character of the line containing ``pos``."""
    i = pos
    while i > 0 and text[i - 1] not in _NEWLINE_CHARS:
        i -= 1
    return i


# ---------------------------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------------------------


class _Scanner:
    def __init__(self, text: str, *, stop: frozenset[str] = frozenset()) -> None:
        self.stop = stop  # extra characters that end a bare word (">" when reading node paths)
        self.t = text
        self.n = len(text)
        self.i = 1 if text.startswith(_BOM) else 0
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    # -- errors and positions ---------------------------------------------------------------

    def pos(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_left(self._newlines, offset)
        col_base = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - col_base + 1

    def error(self, message: str, at: int | None = None) -> KdlSyntaxError:
        line, col = self.pos(self.i if at is None else at)
        return KdlSyntaxError(message, line=line, column=col)

    # -- character classes ------------------------------------------------------------------

    def newline_len(self, i: int) -> int:
        if i >= self.n:
            return 0
        c = self.t[i]
        if c == "\r" and i + 1 < self.n and self.t[i + 1] == "\n":
            return 2
        return 1 if c in _NEWLINE_CHARS else 0

    def at(self, s: str, i: int | None = None) -> bool:
        return self.t.startswith(s, self.i if i is None else i)

    def is_ident_char(self, c: str) -> bool:
        o = ord(c)
        return not (
            c in _NON_IDENT
            or c in self.stop
            or c in _SPACE_CHARS
            or c in _NEWLINE_CHARS
            or o < 0x20
            or o == 0x7F
            or c == _BOM
            or 0x200E <= o <= 0x200F
            or 0x202A <= o <= 0x202E
            or 0x2066 <= o <= 0x2069
            or 0xD800 <= o <= 0xDFFF
        )

    # -- whitespace and comments --------------------------------------------------------------

    def skip_block_comment(self) -> None:
        start = self.i
        depth = 0
        while self.i < self.n:
            if self.at("/*"):
                depth += 1
                self.i += 2
            elif self.at("*/"):
                depth -= 1
                self.i += 2
                if depth == 0:
                    return
            else:
                self.i += 1
        raise self.error("unterminated /* comment", start)

    def skip_line_comment(self) -> None:
        """At ``//``: skip to just after the newline (or to the end of the text)."""
        while self.i < self.n:
            nl = self.newline_len(self.i)
            if nl:
                self.i += nl
                return
            self.i += 1

    def skip_ws(self) -> bool:
        start = self.i
        while self.i < self.n:
            c = self.t[self.i]
            if c in _SPACE_CHARS:
                self.i += 1
            elif self.at("/*"):
                self.skip_block_comment()
            else:
                break
        return self.i > start

    def skip_escline(self) -> None:
        """At ``\\``: a line continuation (``\\`` then optional space, then a newline, comment or EOF)."""
        at = self.i
        self.i += 1
        self.skip_ws()
        if self.i >= self.n:
            return
        if self.at("//"):
            self.skip_line_comment()
            return
        nl = self.newline_len(self.i)
        if not nl:
            raise self.error("a line continuation '\\' must be followed by a newline or a comment", at)
        self.i += nl

    def skip_node_space(self) -> bool:
        start = self.i
        while self.i < self.n:
            if self.skip_ws():
                continue
            if self.t[self.i] == "\\":
                self.skip_escline()
                continue
            break
        return self.i > start

    def skip_line_space(self, *, allow_semicolons: bool = False) -> None:
        while self.i < self.n:
            if self.skip_node_space():
                continue
            nl = self.newline_len(self.i)
            if nl:
                self.i += nl
            elif self.at("//"):
                self.skip_line_comment()
            elif allow_semicolons and self.t[self.i] == ";":
                self.i += 1
            else:
                break

    # -- nodes ----------------------------------------------------------------------------------

    def parse_document(self) -> tuple[KdlNode, ...]:
        return tuple(self.parse_nodes(None))

    def parse_nodes(self, open_brace: int | None) -> list[KdlNode]:
        nodes: list[KdlNode] = []
        while True:
            self.skip_line_space(allow_semicolons=True)
            if self.i >= self.n:
                if open_brace is not None:
                    raise self.error("this '{' is never closed (missing '}')", open_brace)
                return nodes
            c = self.t[self.i]
            if c == "}":
                if open_brace is None:
                    raise self.error("unexpected '}' (no block is open here)")
                return nodes
            if self.at("/-"):
                self.i += 2
                self.skip_line_space()
                self.parse_node()  # commented out: scanned for its extent only
                continue
            nodes.append(self.parse_node())

    def parse_node(self) -> KdlNode:
        start = self.i
        type_annotation: str | None = None
        if self.i < self.n and self.t[self.i] == "(":
            type_annotation = self.parse_type_annotation()
            self.skip_node_space()
        name_start = self.i
        name_val = self.parse_value_token()
        if name_val.kind != "string":
            raise self.error(f"a node name must be a string, not {name_val.raw!r}", name_start)
        args: list[KdlValue] = []
        props: list[KdlProperty] = []
        children: list[KdlNode] | None = None
        open_pos: int | None = None
        close_pos: int | None = None
        last_end = self.i
        terminator: Literal[";", "newline", "comment", "eof", "none"]
        while True:
            spaced = self.skip_node_space()
            if self.i >= self.n:
                end, terminator = last_end, "eof"
                break
            c = self.t[self.i]
            nl = self.newline_len(self.i)
            if nl:
                self.i += nl
                end, terminator = self.i, "newline"
                break
            if self.at("//"):
                self.skip_line_comment()
                end, terminator = self.i, "comment"
                break
            if c == ";":
                self.i += 1
                end, terminator = self.i, ";"
                break
            if c == "}":
                end, terminator = last_end, "none"
                break
            if self.at("/-"):
                self.i += 2
                self.skip_line_space()
                if self.i >= self.n:
                    raise self.error("'/-' at the end of the text comments out nothing")
                if self.t[self.i] == "{":
                    self.parse_children()
                elif children is not None:
                    raise self.error("only a commented-out '{...}' block may follow a node's children")
                else:
                    self.parse_entry()
                last_end = self.i
                continue
            if children is not None:
                raise self.error("expected ';' or a newline after the node's '}'")
            if c == "{":
                open_pos = self.i
                children = self.parse_children()
                close_pos = self.i - 1
                last_end = self.i
                continue
            if not spaced:
                raise self.error(f"unexpected character {c!r} (entries are separated by spaces)")
            entry = self.parse_entry()
            if isinstance(entry, KdlProperty):
                props.append(entry)
            else:
                args.append(entry)
            last_end = self.i
        outer_start, outer_end, own_line = self.outer_span(start, end, terminator)
        line, col = self.pos(start)
        return KdlNode(
            name=str(name_val.value),
            name_start=name_start,
            type_annotation=type_annotation,
            start=start,
            end=end,
            outer_start=outer_start,
            outer_end=outer_end,
            own_line=own_line,
            terminator=terminator,
            line=line,
            column=col,
            args=tuple(args),
            properties=tuple(props),
            children=tuple(children or ()),
            children_open=open_pos,
            children_close=close_pos,
        )

    def parse_children(self) -> list[KdlNode]:
        open_pos = self.i
        self.i += 1
        kids = self.parse_nodes(open_pos)
        self.i += 1  # the closing brace
        return kids

    def outer_span(self, start: int, end: int, terminator: str) -> tuple[int, int, bool]:
        t = self.t
        ls = line_start(t, start)
        before_ok = all(ch in _SPACE_CHARS or ch == _BOM for ch in t[ls:start])
        j = end
        while j < self.n and t[j] in _SPACE_CHARS:
            j += 1
        hws_end = j
        if terminator in ("newline", "comment"):
            tail_end: int | None = end
        elif j >= self.n:
            tail_end = self.n
        elif self.newline_len(j):
            tail_end = j + self.newline_len(j)
        elif t.startswith("//", j):
            save = self.i
            self.i = j
            self.skip_line_comment()
            tail_end = self.i
            self.i = save
        else:
            tail_end = None
        if before_ok and tail_end is not None:
            return ls, tail_end, True
        return start, hws_end, False

    def parse_type_annotation(self) -> str:
        self.i += 1  # (
        self.skip_node_space()
        v = self.parse_value_token()
        if v.kind != "string":
            raise self.error("a type annotation must be a string", v.start)
        self.skip_node_space()
        if self.i >= self.n or self.t[self.i] != ")":
            raise self.error("expected ')' to close the type annotation")
        self.i += 1
        return str(v.value)

    def parse_entry(self) -> KdlValue | KdlProperty:
        outer = self.i
        if self.t[self.i] == "(":
            ta = self.parse_type_annotation()
            self.skip_node_space()
            v = self.parse_value_token()
            return KdlValue(v.value, v.raw, v.start, v.end, outer, ta, v.kind)
        v = self.parse_value_token()
        if v.kind == "string":
            save = self.i
            self.skip_node_space()
            if self.i < self.n and self.t[self.i] == "=":
                self.i += 1
                self.skip_node_space()
                vouter = self.i
                pta: str | None = None
                if self.i < self.n and self.t[self.i] == "(":
                    pta = self.parse_type_annotation()
                    self.skip_node_space()
                pv = self.parse_value_token()
                return KdlProperty(
                    str(v.value), v.start, KdlValue(pv.value, pv.raw, pv.start, pv.end, vouter, pta, pv.kind)
                )
            self.i = save
        return v

    # -- values ---------------------------------------------------------------------------------

    def parse_value_token(self) -> KdlValue:
        if self.i >= self.n:
            raise self.error("unexpected end of text (a value was expected)")
        start = self.i
        c = self.t[self.i]
        if c == '"':
            value: Scalar = self.read_multiline_string() if self.at('"""') else self.read_quoted_string()
            return KdlValue(value, self.t[start : self.i], start, self.i, start, None, "string")
        if c == "#":
            hashes = 0
            while self.i + hashes < self.n and self.t[self.i + hashes] == "#":
                hashes += 1
            if self.i + hashes < self.n and self.t[self.i + hashes] == '"':
                value = self.read_raw_string(hashes)
                return KdlValue(value, self.t[start : self.i], start, self.i, start, None, "string")
            self.i += 1
            word = self.read_bare()
            if word not in _KEYWORDS:
                raise self.error(
                    f"unknown keyword '#{word}' (KDL v2 has #true, #false, #null, #inf, #-inf, #nan)", start
                )
            return KdlValue(_KEYWORDS[word], self.t[start : self.i], start, self.i, start, None, "keyword")
        word = self.read_bare()
        if not word:
            raise self.error(f"unexpected character {c!r}")
        if _LOOKS_NUMERIC.match(word):
            return KdlValue(self.decode_number(word, start), word, start, self.i, start, None, "number")
        if word in _V1_KEYWORDS:
            raise self.error(
                f"'{word}' is KDL v1 syntax; Zentinel reads KDL v2, where it is written {_V1_KEYWORDS[word]}", start
            )
        return KdlValue(word, word, start, self.i, start, None, "string")

    def read_bare(self) -> str:
        start = self.i
        while self.i < self.n and self.is_ident_char(self.t[self.i]):
            self.i += 1
        return self.t[start : self.i]

    def decode_number(self, word: str, start: int) -> int | float:
        m = _RADIX.match(word)
        if m:
            sign = -1 if m.group(1) == "-" else 1
            if m.group(2):
                return sign * int(m.group(3).replace("_", ""), 16)
            if m.group(4):
                return sign * int(m.group(5).replace("_", ""), 8)
            return sign * int(m.group(7).replace("_", ""), 2)
        if _DECIMAL.match(word):
            plain = word.replace("_", "")
            if "." in plain or "e" in plain or "E" in plain:
                return float(plain)
            return int(plain, 10)
        raise self.error(f"{word!r} is not a valid number", start)

    def read_quoted_string(self) -> str:
        start = self.i
        self.i += 1
        while True:
            if self.i >= self.n:
                raise self.error("unterminated string (missing closing '\"')", start)
            c = self.t[self.i]
            if c == "\\":
                self.skip_escape()
                continue
            if c == '"':
                break
            if self.newline_len(self.i):
                raise self.error('unterminated string: a newline inside "..." (use """ for multi-line strings)', start)
            self.i += 1
        body = self.t[start + 1 : self.i]
        self.i += 1
        return self.unescape(body, start + 1)

    def skip_escape(self) -> None:
        """At a backslash inside a string: step over the escape (a whitespace escape may span lines)."""
        self.i += 1
        if self.i < self.n and (self.t[self.i] in _SPACE_CHARS or self.t[self.i] in _NEWLINE_CHARS):
            while self.i < self.n and (self.t[self.i] in _SPACE_CHARS or self.t[self.i] in _NEWLINE_CHARS):
                self.i += 1
        else:
            self.i += 1

    def read_multiline_string(self) -> str:
        start = self.i
        self.i += 3
        nl = self.newline_len(self.i)
        if not nl:
            raise self.error('a multi-line string must start with """ followed by a newline', start)
        body_start = self.i + nl
        self.i = body_start
        while True:
            if self.i >= self.n:
                raise self.error('unterminated multi-line string (missing closing """)', start)
            if self.t[self.i] == "\\":
                self.skip_escape()
                continue
            if self.at('"""'):
                break
            self.i += 1
        body = self.t[body_start : self.i]
        self.i += 3
        body = _resolve_whitespace_escapes(body)
        return self.unescape(self.dedent(body, start), body_start)

    def read_raw_string(self, hashes: int) -> str:
        start = self.i
        self.i += hashes
        closing = '"' + "#" * hashes
        if self.at('"""'):
            self.i += 3
            nl = self.newline_len(self.i)
            if not nl:
                raise self.error('a multi-line raw string must start with """ followed by a newline', start)
            body_start = self.i + nl
            end = self.t.find('"""' + "#" * hashes, body_start)
            if end < 0:
                raise self.error("unterminated multi-line raw string", start)
            self.i = end + 3 + hashes
            return self.dedent(self.t[body_start:end], start)
        self.i += 1
        end = self.t.find(closing, self.i)
        if end < 0:
            raise self.error("unterminated raw string", start)
        body = self.t[self.i : end]
        if any(ch in _NEWLINE_CHARS for ch in body):
            raise self.error('a newline inside a single-line raw string (use #"""...""")', start)
        self.i = end + len(closing)
        return body

    def dedent(self, body: str, at: int) -> str:
        """KDL v2 multi-line string rules: the last line (only whitespace) is the indent removed from
        every other line; lines of only whitespace become empty; newlines are normalised to LF."""
        lines = _split_lines(body)
        prefix = lines[-1]
        if any(ch not in _SPACE_CHARS for ch in prefix):
            raise self.error('the closing """ of a multi-line string must be on its own line', at)
        out: list[str] = []
        for ln in lines[:-1]:
            if all(ch in _SPACE_CHARS for ch in ln):
                out.append("")
            elif ln.startswith(prefix):
                out.append(ln[len(prefix) :])
            else:
                raise self.error("a line of a multi-line string is indented less than its closing quotes", at)
        return "\n".join(out)

    def unescape(self, body: str, at: int) -> str:
        out: list[str] = []
        j = 0
        n = len(body)
        while j < n:
            c = body[j]
            if c != "\\":
                out.append(c)
                j += 1
                continue
            if j + 1 >= n:
                raise self.error("a string ends with a lone backslash", at + j)
            nxt = body[j + 1]
            if nxt in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[nxt])
                j += 2
            elif nxt == "u":
                m = re.match(r"\{([0-9a-fA-F]{1,6})\}", body[j + 2 :])
                if not m:
                    raise self.error("invalid \\u{...} escape", at + j)
                out.append(chr(int(m.group(1), 16)))
                j += 2 + m.end()
            elif nxt in _SPACE_CHARS or nxt in _NEWLINE_CHARS:
                j += 1
                while j < n and (body[j] in _SPACE_CHARS or body[j] in _NEWLINE_CHARS):
                    j += 1
            else:
                raise self.error(f"invalid escape '\\{nxt}' in a string", at + j)
        return "".join(out)


def _split_lines(body: str) -> list[str]:
    lines: list[str] = []
    cur: list[str] = []
    j = 0
    while j < len(body):
        c = body[j]
        if c == "\r" and j + 1 < len(body) and body[j + 1] == "\n":
            lines.append("".join(cur))
            cur = []
            j += 2
            continue
        if c in _NEWLINE_CHARS:
            lines.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        j += 1
    lines.append("".join(cur))
    return lines


def _resolve_whitespace_escapes(body: str) -> str:
    """Drop ``\\`` + whitespace runs (done before dedenting), leaving other escapes for later."""
    out: list[str] = []
    j = 0
    n = len(body)
    while j < n:
        c = body[j]
        if c == "\\" and j + 1 < n:
            nxt = body[j + 1]
            if nxt in _SPACE_CHARS or nxt in _NEWLINE_CHARS:
                j += 1
                while j < n and (body[j] in _SPACE_CHARS or body[j] in _NEWLINE_CHARS):
                    j += 1
                continue
            out.append(body[j : j + 2])
            j += 2
            continue
        out.append(c)
        j += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def scan(text: str) -> KdlDocument:
    """Locate nodes with this module's scanner alone (no ckdl). Raises :class:`KdlSyntaxError`."""
    return KdlDocument(text, _Scanner(text).parse_document())


def parse(text: str) -> KdlDocument:
    """Parse ``text`` as KDL v2 with ckdl (the authority), then locate its nodes.

    Raises :class:`KdlError` when ckdl refuses the text (with a line number when the scanner can
    point at the problem) or when the scanner's tree differs from ckdl's (then no span is trusted).
    """
    try:
        reference = ckdl.parse(text, version=2)
    except Exception as exc:  # ckdl.ParseError, and whatever the C side raises on odd input
        raise _explain_refusal(text, str(exc)) from exc
    try:
        doc = scan(text)
    except KdlSyntaxError as exc:
        raise KdlError(f"the locator cannot read a text ckdl accepts ({exc}); refusing to locate nodes") from exc
    problem = _compare_nodes(doc.nodes, list(reference.nodes), "")
    if problem:
        raise KdlError(f"the locator and ckdl disagree about this document ({problem}); refusing to locate nodes")
    return doc


def _explain_refusal(text: str, ckdl_message: str) -> KdlError:
    line = col = None
    detail = ckdl_message or "syntax error"
    try:
        scan(text)
    except KdlSyntaxError as exc:
        line, col, detail = exc.line, exc.column, f"{exc.reason} (ckdl: {ckdl_message})"
    except Exception:  # noqa: S110 - a locator bug must not hide ckdl's refusal; tests/fuzz finds them
        pass
    hint = ""
    try:
        ckdl.parse(text, version=1)
        hint = "; the text parses as KDL v1, but Zentinel reads KDL v2 (write #true/#false/#null, not true/false/null)"
    except Exception:  # noqa: S110 - only used to add a hint
        pass
    return KdlError(f"not valid KDL v2: {detail}{hint}", line=line, column=col)


def _ckdl_value(v: Any) -> tuple[Scalar, str | None]:
    if isinstance(v, ckdl.Value):
        return v.value, v.type_annotation
    return v, None


def _same_scalar(a: Scalar, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, float) or isinstance(b, float):
        return False
    return type(a) is type(b) and a == b


def _compare_nodes(mine: Sequence[KdlNode], theirs: list[Any], where: str) -> str | None:
    if len(mine) != len(theirs):
        return f"{where or 'document'}: {len(mine)} nodes located, ckdl reads {len(theirs)}"
    for node, ref in zip(mine, theirs, strict=True):
        here = f"{where} > {node.name}" if where else node.name
        if node.name != ref.name:
            return f"{here}: node name {node.name!r} vs {ref.name!r}"
        if node.type_annotation != ref.type_annotation:
            return f"{here}: type annotation differs"
        ref_args = list(ref.args)
        if len(node.args) != len(ref_args):
            return f"{here}: {len(node.args)} arguments vs {len(ref_args)}"
        for a, r in zip(node.args, ref_args, strict=True):
            rv, rt = _ckdl_value(r)
            if not _same_scalar(a.value, rv) or a.type_annotation != rt:
                return f"{here}: argument {a.raw!r} reads differently"
        mine_props: dict[str, KdlValue] = {}
        for p in node.properties:
            mine_props[p.key] = p.value
        ref_props = dict(ref.properties)
        if set(mine_props) != set(ref_props):
            return f"{here}: property keys differ"
        for key, val in mine_props.items():
            rv, rt = _ckdl_value(ref_props[key])
            if not _same_scalar(val.value, rv) or val.type_annotation != rt:
                return f"{here}: property {key!r} reads differently"
        problem = _compare_nodes(node.children, list(ref.children), here)
        if problem:
            return problem
    return None


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def parse_path(path: str) -> tuple[PathStep, ...]:
    """``'upstreams > upstream "api" > target "10.0.0.1:80"'`` -> steps. Names and arguments are
    written as in KDL (quoted or bare strings, numbers)."""
    steps: list[PathStep] = []
    sc = _Scanner(path, stop=frozenset(">"))
    while True:
        sc.skip_ws()
        if sc.i >= sc.n:
            raise KdlError(f"node path {path!r} is empty or ends with '>'")
        try:
            name = sc.parse_value_token()
        except KdlSyntaxError as exc:
            raise KdlError(f"bad node path {path!r}: {exc.reason}") from exc
        if name.kind != "string":
            raise KdlError(f"path step {name.raw!r} is not a node name")
        sc.skip_ws()
        arg: str | int | None = None
        if sc.i < sc.n and sc.t[sc.i] != ">":
            try:
                v = sc.parse_value_token()
            except KdlSyntaxError as exc:
                raise KdlError(f"bad node path {path!r}: {exc.reason}") from exc
            if isinstance(v.value, bool) or not isinstance(v.value, str | int):
                raise KdlError(f"path argument {v.raw!r} must be a string or an integer")
            arg = v.value
            sc.skip_ws()
        steps.append(PathStep(str(name.value), arg))
        if sc.i >= sc.n:
            break
        if sc.t[sc.i] != ">":
            raise KdlError(f"expected '>' in path {path!r} at offset {sc.i}")
        sc.i += 1
    return tuple(steps)
