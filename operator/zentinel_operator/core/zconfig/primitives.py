"""Comment-preserving text operations on a config, each located by node path.

Locating is Zentinel-aware (a singleton block resolves to the occurrence Zentinel uses, a target is
named by its address); each primitive returns the new text and the :class:`~.undo.Change` that
describes it, so that :mod:`.edits` can record and revert it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zentinel_operator.core import kdl
from zentinel_operator.core.kdl import KdlDocument, KdlNode, PathStep

from .checks import SINGLETONS, target_address
from .undo import Change, ConfigEditError


def _node_key(node: KdlNode) -> PathStep:
    """How a node is named in a path: targets by their address, others by their first string arg."""
    if node.name == "target":
        addr = target_address(node)
        return PathStep("target", addr)
    first = node.first_arg
    if isinstance(first, str) or (isinstance(first, int) and not isinstance(first, bool)):
        return PathStep(node.name, first)
    return PathStep(node.name)


def _step_matches(node: KdlNode, step: PathStep) -> bool:
    if node.name != step.name:
        return False
    if step.arg is None:
        return True
    key = _node_key(node)
    return type(key.arg) is type(step.arg) and key.arg == step.arg


@dataclass(frozen=True)
class _Block:
    """A place children live: a node's ``{...}`` or the document itself (``node is None``)."""

    node: KdlNode | None
    children: tuple[KdlNode, ...]
    content_start: int
    content_end: int


def _doc_block(doc: KdlDocument) -> _Block:
    start = 1 if doc.text.startswith("\ufeff") else 0
    return _Block(None, doc.nodes, start, len(doc.text))


def _node_block(node: KdlNode) -> _Block | None:
    if node.children_open is None or node.children_close is None:
        return None
    return _Block(node, node.children, node.children_open + 1, node.children_close)


def resolve(doc: KdlDocument, path: Sequence[PathStep]) -> KdlNode | None:
    """The node at ``path``. At the top level a singleton block (``limits``, ``system``...) resolves
    to its last occurrence, the one Zentinel uses; below that, the first match (Zentinel reads the
    first child of a name). Repeated list blocks (``routes``, ``upstreams``) are all searched."""
    if not path:
        return None
    first = path[0]
    candidates = [n for n in doc.nodes if _step_matches(n, first)]
    if first.name in SINGLETONS:
        candidates = candidates[-1:]
    for cand in candidates:
        node: KdlNode | None = cand
        for step in path[1:]:
            assert node is not None
            node = next((c for c in node.children if _step_matches(c, step)), None)
            if node is None:
                break
        if node is not None:
            return node
    return None


def _block_at(doc: KdlDocument, parent_path: Sequence[PathStep]) -> _Block | None:
    if not parent_path:
        return _doc_block(doc)
    node = resolve(doc, parent_path)
    return _node_block(node) if node is not None else None


def _indent_unit(doc: KdlDocument) -> str:
    for node, _parents in doc.walk():
        if not node.own_line:
            continue
        own_indent = doc.text[node.outer_start : node.start]
        for c in node.children:
            if c.own_line:
                child_indent = doc.text[c.outer_start : c.start]
                if child_indent.startswith(own_indent) and len(child_indent) > len(own_indent):
                    return child_indent[len(own_indent) :]
    return "    "


def _line_indent(text: str, pos: int) -> str:
    ls = kdl.line_start(text, pos)
    j = ls
    while j < len(text) and text[j] in " \t":
        j += 1
    return text[ls:j]


def _newline(text: str) -> str:
    """The file's newline style (CRLF if it uses any)."""
    return "\r\n" if "\r\n" in text else "\n"


def _render(lines: Sequence[str], indent: str, unit: str, nl: str = "\n") -> str:
    """Own-line rendering of a node given as lines of KDL (nesting shown by leading tabs)."""
    out = []
    for ln in lines:
        depth = len(ln) - len(ln.lstrip("\t"))
        out.append(indent + unit * depth + ln.lstrip("\t") + nl)
    return "".join(out)


def _inline(lines: Sequence[str]) -> str:
    """One-line rendering of the same node: children joined by ``; ``."""
    result = ""
    prev_depth = 0
    for i, ln in enumerate(lines):
        depth = len(ln) - len(ln.lstrip("\t"))
        body = ln.lstrip("\t")
        if i and depth >= prev_depth and not lines[i - 1].endswith("{"):
            result += "; "
        elif i:
            result += " "
        result += body
        prev_depth = depth
    return result


def reparse(text: str) -> KdlDocument:
    try:
        return kdl.parse(text)
    except kdl.KdlError as exc:  # pragma: no cover - the operations below only produce valid KDL
        raise ConfigEditError(f"internal error: an edit produced text that is not KDL v2 ({exc})") from exc


def op_replace_first_arg(doc: KdlDocument, path: tuple[PathStep, ...], literal: str) -> tuple[str, Change | None]:
    node = resolve(doc, path)
    if node is None or not node.args:
        raise ConfigEditError(f"cannot find a value at {kdl.format_path(path)}")
    arg = node.args[0]
    if arg.raw == literal:
        return doc.text, None
    text = doc.text[: arg.start] + literal + doc.text[arg.end :]
    return text, Change(op="replace", path=path, before=arg.raw, after=literal)


def op_insert_child(
    doc: KdlDocument, parent_path: tuple[PathStep, ...], step: PathStep, lines: Sequence[str]
) -> tuple[str, Change]:
    """Insert a new child node (given as lines, see :func:`_render`) at the end of the parent's
    block, following the block's layout. At the top level it goes after the last node."""
    text = doc.text
    unit = _indent_unit(doc)
    nl = _newline(text)
    if not parent_path:
        last = doc.nodes[-1] if doc.nodes else None
        pos = last.outer_end if last is not None else len(text)
        prefix = "" if pos == 0 or text[pos - 1] == "\n" else nl
        prefix += nl if pos > 0 else ""
        inserted = prefix + _render(lines, "", unit, nl)
        node_offset = len(prefix)
    else:
        parent = resolve(doc, parent_path)
        if parent is None:
            raise ConfigEditError(f"cannot find {kdl.format_path(parent_path)}")
        if parent.children_open is None or parent.children_close is None:
            # No children block yet: add one after the node's last entry.
            if parent.terminator == "comment":
                raise ConfigEditError(f"{kdl.format_path(parent_path)} ends in a comment; add a '{{ }}' block by hand")
            anchor = _entries_end(text, parent)
            if parent.own_line:
                indent = text[parent.outer_start : parent.start]
                inserted = " {" + nl + _render(lines, indent + unit, unit, nl) + indent + "}"
                node_offset = 2 + len(nl) + len(indent + unit)
            else:
                inserted = " { " + _inline(lines) + " }"
                node_offset = 3
            pos = anchor
        else:
            close = parent.children_close
            own_line_close = text[kdl.line_start(text, close) : close].strip(" \t") == ""
            if own_line_close:
                own = [c for c in parent.children if c.own_line]
                indent = text[own[0].outer_start : own[0].start] if own else _line_indent(text, parent.start) + unit
                pos = kdl.line_start(text, close)
                inserted = _render(lines, indent, unit, nl)
                node_offset = len(indent)
            elif parent.children and parent.children[-1].terminator == "none":
                # `{ a 1 }` -> `{ a 1; new 2 }`
                pos = parent.children[-1].end
                inserted = "; " + _inline(lines)
                node_offset = 2
            elif parent.children:
                # `{ a 1; }` -> `{ a 1; new 2; }`
                pos = parent.children[-1].outer_end
                inserted = _inline(lines) + "; "
                node_offset = 0
            else:
                pos = parent.children_open + 1
                inserted = " " + _inline(lines) + " "
                node_offset = 1
    new_text = text[:pos] + inserted + text[pos:]
    new_doc = reparse(new_text)
    node = resolve(new_doc, (*parent_path, step))
    if node is None:  # pragma: no cover - defensive
        raise ConfigEditError(f"internal error: inserted node {step} not found after insertion")
    if node.start != pos + node_offset:
        # The path resolves to another node of the same name: the insertion would not be the one
        # Zentinel reads.
        raise ConfigEditError(f"{kdl.format_path((*parent_path, step))} already exists elsewhere; not adding another")
    return new_text, Change(
        op="insert",
        path=(*parent_path, step),
        after=inserted,
        node_text=node.text(new_text),
        node_offset=node_offset,
    )


def _entries_end(text: str, node: KdlNode) -> int:
    """Where a node without a children block ends, before its terminator."""
    return node.start + len(text[node.start : node.end].rstrip(" \t\r\n\x0b\x0c\x85\u2028\u2029;"))


def _siblings_around(
    block: _Block, start: int, end: int, exclude: KdlNode | None
) -> tuple[KdlNode | None, KdlNode | None]:
    prev = nxt = None
    for c in block.children:
        if c is exclude:
            continue
        if c.outer_end <= start:
            prev = c
        elif c.outer_start >= end and nxt is None:
            nxt = c
    return prev, nxt


def _op_remove_span(
    doc: KdlDocument, path: tuple[PathStep, ...], node: KdlNode, start: int, end: int
) -> tuple[str, Change]:
    text = doc.text
    block = _block_at(doc, path[:-1])
    if block is None or not any(c is node for c in block.children):  # pragma: no cover - defensive
        raise ConfigEditError(f"internal error: {kdl.format_path(path)} is not where its path says")
    prev, nxt = _siblings_around(block, start, end, node)
    gap_before = text[prev.outer_end if prev else block.content_start : start]
    gap_after = text[end : nxt.outer_start if nxt else block.content_end]
    change = Change(
        op="remove",
        path=path,
        before=text[start:end],
        node_text=node.text(text),
        node_offset=node.start - start,
        prev=_node_key(prev) if prev else None,
        next=_node_key(nxt) if nxt else None,
        gap_before=gap_before,
        gap_after=gap_after,
    )
    return text[:start] + text[end:], change


def op_remove_node(doc: KdlDocument, path: tuple[PathStep, ...], node: KdlNode) -> tuple[str, Change]:
    return _op_remove_span(doc, path, node, node.outer_start, node.outer_end)


def _find_sibling(block: _Block, key: PathStep) -> KdlNode | None:
    return next((c for c in block.children if _step_matches(c, key)), None)


def op_reinsert(doc: KdlDocument, change: Change) -> tuple[str, Change]:
    """Put back a removed node, as close as possible to where it was."""
    text = doc.text
    parent_path = change.path[:-1]
    block = _block_at(doc, parent_path)
    parent = resolve(doc, parent_path) if parent_path else None
    if block is None and parent is not None and parent.terminator != "comment":
        stripped = change.before.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            # The edit had added the parent's whole '{...}' block: put the block back.
            at = _entries_end(text, parent)
            return text[:at] + change.before + text[at:], Change(
                op="insert",
                path=change.path,
                after=change.before,
                node_text=change.node_text,
                node_offset=change.node_offset,
            )
    if block is None:
        raise ConfigEditError(
            f"cannot put back {kdl.format_path(change.path)}: {kdl.format_path(parent_path)} no longer exists"
        )
    prev = _find_sibling(block, change.prev) if change.prev else None
    nxt = _find_sibling(block, change.next) if change.next else None
    pos: int | None = None
    gb = change.gap_before or ""
    ga = change.gap_after or ""
    # 1. right after the previous sibling (or the block start), when the text between is unchanged
    anchor = prev.outer_end if prev else (block.content_start if change.prev is None else None)
    if anchor is not None and text.startswith(gb, anchor) and anchor + len(gb) <= block.content_end:
        pos = anchor + len(gb)
    # 2. right before the next sibling (or the block end), when the text between is unchanged
    if pos is None:
        anchor = nxt.outer_start if nxt else (block.content_end if change.next is None else None)
        if anchor is not None and text[:anchor].endswith(ga) and anchor - len(ga) >= block.content_start:
            pos = anchor - len(ga)
    # 3. next to a surviving sibling, whatever is around it
    if pos is None and prev is not None:
        pos = prev.outer_end
    if pos is None and nxt is not None:
        pos = nxt.outer_start
    # 4. at the end of the block
    if pos is None:
        end = block.content_end
        if block.node is not None and text[kdl.line_start(text, end) : end].strip(" \t") == "":
            end = kdl.line_start(text, end)
        pos = max(end, block.content_start)
    new_text = text[:pos] + change.before + text[pos:]
    return new_text, Change(
        op="insert",
        path=change.path,
        after=change.before,
        node_text=change.node_text,
        node_offset=change.node_offset,
    )


def op_uninsert(doc: KdlDocument, change: Change) -> tuple[str, Change | None, str | None]:
    """Take out a node that an edit inserted. Returns (text, change, note)."""
    node = resolve(doc, change.path)
    if node is None:
        return doc.text, None, f"{kdl.format_path(change.path)} is already gone; nothing to remove"
    text = doc.text
    if node.text(text) != change.node_text:
        raise ConfigEditError(
            f"{kdl.format_path(change.path)} was changed after the edit (now {node.text(text).strip()!r}, "
            f"the edit wrote {change.node_text.strip()!r}); not reverting it"
        )
    start = node.start - change.node_offset
    if start >= 0 and text.startswith(change.after, start):
        new_text, undo = _op_remove_span(doc, change.path, node, start, start + len(change.after))
    else:
        new_text, undo = op_remove_node(doc, change.path, node)
    return new_text, undo, None


def op_unreplace(doc: KdlDocument, change: Change) -> tuple[str, Change]:
    node = resolve(doc, change.path)
    if node is None or not node.args:
        raise ConfigEditError(f"{kdl.format_path(change.path)} no longer exists; cannot restore {change.before}")
    current = node.args[0].raw
    if current != change.after:
        raise ConfigEditError(
            f"{kdl.format_path(change.path)} was changed after the edit (now {current}, the edit set "
            f"{change.after}); not restoring {change.before}"
        )
    text, undo = op_replace_first_arg(doc, change.path, change.before)
    assert undo is not None
    return text, undo
