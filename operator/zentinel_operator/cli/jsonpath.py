"""``-o jsonpath=TEMPLATE``: kubectl's JSONPath templates, evaluated with jsonpath-ng. Pure.

kubectl's syntax is a template, not a plain JSONPath: literal text with ``{...}`` actions in it,
``{.items[*].metadata.name}`` (several results joined by a space), ``{"\\n"}`` string literals,
``{range .items[*]}...{end}`` loops and ``@`` for the current object. A template without any ``{``
is taken as one expression, as kubectl does (``-o jsonpath=.metadata.name``). Each expression is
handed to jsonpath-ng as ``$`` + the expression; strings print as they are, everything else as
JSON. Missing fields print nothing, as with ``kubectl get`` (it allows missing keys).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as _parse

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class TemplateError(ValueError):
    """The template cannot be read; the message says where."""


@dataclasses.dataclass(frozen=True)
class _Text:
    text: str


@dataclasses.dataclass(frozen=True)
class _Expr:
    source: str
    compiled: Any


@dataclasses.dataclass(frozen=True)
class _Range:
    over: _Expr
    body: tuple[_Text | _Expr | _Range, ...]


_Node = _Text | _Expr | _Range


def _compile(expr: str) -> _Expr:
    text = expr.strip()
    if text in ("", "@", "$"):
        text = "$"
    elif text.startswith("@"):
        text = "$" + text[1:]
    elif text.startswith((".", "[")):
        text = "$" + text
    elif not text.startswith("$"):
        text = "$." + text
    try:
        return _Expr(expr, _parse(text))
    except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError) as e:
        raise TemplateError(f"jsonpath {{{expr}}}: {' '.join(str(e).split())}") from None


def _string(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _actions(template: str) -> list[tuple[str, str]]:
    """``("text", ...)`` and ``("action", ...)`` pieces, in order; ``{`` inside a string literal counts as text."""
    pieces: list[tuple[str, str]] = []
    i, start = 0, 0
    while i < len(template):
        if template[i] != "{":
            i += 1
            continue
        if i > start:
            pieces.append(("text", template[start:i]))
        j, quote = i + 1, False
        while j < len(template) and (quote or template[j] != "}"):
            if template[j] == '"' and template[j - 1] != "\\":
                quote = not quote
            j += 1
        if j >= len(template):
            raise TemplateError(f"unclosed action in template: {template[i:]!r}")
        pieces.append(("action", template[i + 1 : j]))
        i = start = j + 1
    if start < len(template):
        pieces.append(("text", template[start:]))
    return pieces


def compile_template(template: str) -> tuple[_Node, ...]:
    """The template's nodes; raises :class:`TemplateError` for a bad one."""
    if not template.strip():
        raise TemplateError("the jsonpath template is empty")
    if "{" not in template:
        template = "{" + template + "}"
    stack: list[tuple[_Expr | None, list[_Node]]] = [(None, [])]
    for kind, piece in _actions(template):
        body = stack[-1][1]
        if kind == "text":
            body.append(_Text(piece))
            continue
        action = piece.strip()
        if action.startswith('"') and action.endswith('"') and len(action) >= 2:
            body.append(_Text(_string(action[1:-1])))
        elif action.startswith("range ") or action == "range":
            stack.append((_compile(action[len("range") :]), []))
        elif action == "end":
            over, nodes = stack.pop()
            if over is None or not stack:
                raise TemplateError("{end} without {range ...}")
            stack[-1][1].append(_Range(over, tuple(nodes)))
        else:
            body.append(_compile(action))
    if len(stack) != 1:
        raise TemplateError("{range ...} without {end}")
    return tuple(stack[0][1])


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _run(nodes: tuple[_Node, ...], data: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Expr):
            out.append(" ".join(_show(m.value) for m in node.compiled.find(data)))
        else:
            for match in node.over.compiled.find(data):
                items = match.value if isinstance(match.value, list) else [match.value]
                for item in items:
                    _run(node.body, item, out)


def render(template: str, data: Any) -> str:
    """``template`` applied to ``data`` (plain JSON-like values)."""
    out: list[str] = []
    _run(compile_template(template), data, out)
    return "".join(out)
