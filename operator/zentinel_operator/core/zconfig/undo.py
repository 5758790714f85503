"""What an edit did, described so that it can be undone later: :class:`Change`, :class:`UndoRecord`
and :class:`EditResult`, plus the refusal every edit raises (:class:`ConfigEditError`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from zentinel_operator.core.kdl import PathStep


class ConfigEditError(ValueError):
    """An edit (or revert) was refused; ``str(exc)`` says why in words a person can act on."""


ChangeOp = Literal["replace", "insert", "remove"]


@dataclass(frozen=True)
class Change:
    """One primitive text change, described by node paths and texts (never by offsets).

    - ``replace``: the first argument of the node at ``path`` went from ``before`` to ``after``
      (literal source text, e.g. ``10000`` -> ``500``).
    - ``insert``: the text ``after`` was inserted; it holds the node at ``path`` starting
      ``node_offset`` characters in, and that node's own text is ``node_text``.
    - ``remove``: the text ``before`` (holding the node at ``path``, whose own text is ``node_text``)
      was cut out of its parent. ``prev``/``next`` name the siblings around it and
      ``gap_before``/``gap_after`` the exact text between them and the cut, so that putting it
      back lands it where it was.
    """

    op: ChangeOp
    path: tuple[PathStep, ...]
    before: str = ""
    after: str = ""
    node_text: str = ""
    node_offset: int = 0
    prev: PathStep | None = None
    next: PathStep | None = None
    gap_before: str | None = None
    gap_after: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "op": self.op,
            "path": [_step_to_json(s) for s in self.path],
            "before": self.before,
            "after": self.after,
            "nodeText": self.node_text,
            "nodeOffset": self.node_offset,
            "prev": _step_to_json(self.prev) if self.prev else None,
            "next": _step_to_json(self.next) if self.next else None,
            "gapBefore": self.gap_before,
            "gapAfter": self.gap_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Change:
        op = data.get("op")
        if op not in ("replace", "insert", "remove"):
            raise ConfigEditError(f"undo record: unknown change {op!r}")
        raw_path = data.get("path")
        if not isinstance(raw_path, list) or not raw_path:
            raise ConfigEditError("undo record: a change has no node path")
        prev, nxt = data.get("prev"), data.get("next")
        node_offset = data.get("nodeOffset", 0)
        if not isinstance(node_offset, int) or isinstance(node_offset, bool):
            raise ConfigEditError("undo record: nodeOffset must be an integer")
        return cls(
            op=op,
            path=tuple(_step_from_json(s) for s in raw_path),
            before=_str_field(data, "before"),
            after=_str_field(data, "after"),
            node_text=_str_field(data, "nodeText"),
            node_offset=node_offset,
            prev=_step_from_json(prev) if prev is not None else None,
            next=_step_from_json(nxt) if nxt is not None else None,
            gap_before=_opt_str_field(data, "gapBefore"),
            gap_after=_opt_str_field(data, "gapAfter"),
        )


@dataclass(frozen=True)
class UndoRecord:
    """What an edit did, enough to revert it later. JSON-serialisable through :meth:`to_dict`."""

    action: str
    summary: str
    changes: tuple[Change, ...]
    before_revision: str
    after_revision: str

    FORMAT_VERSION = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.FORMAT_VERSION,
            "action": self.action,
            "summary": self.summary,
            "beforeRevision": self.before_revision,
            "afterRevision": self.after_revision,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> UndoRecord:
        if not isinstance(data, Mapping):
            raise ConfigEditError("undo record: expected an object")
        if data.get("version") != cls.FORMAT_VERSION:
            raise ConfigEditError(f"undo record: unsupported format version {data.get('version')!r}")
        changes = data.get("changes")
        if not isinstance(changes, list):
            raise ConfigEditError("undo record: 'changes' must be a list")
        parsed: list[Change] = []
        for c in changes:
            if not isinstance(c, Mapping):
                raise ConfigEditError("undo record: each change must be an object")
            parsed.append(Change.from_dict(c))
        return cls(
            action=_str_field(data, "action"),
            summary=_str_field(data, "summary"),
            changes=tuple(parsed),
            before_revision=_str_field(data, "beforeRevision"),
            after_revision=_str_field(data, "afterRevision"),
        )


@dataclass(frozen=True)
class EditResult:
    """The edited text, a unified diff from the input, and how to undo it. ``notes`` says what a
    revert skipped because it was already in place."""

    text: str
    diff: str
    undo: UndoRecord
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.undo.changes)


def _step_to_json(step: PathStep) -> list[object]:
    return [step.name] if step.arg is None else [step.name, step.arg]


def _step_from_json(raw: object) -> PathStep:
    if isinstance(raw, list) and raw and isinstance(raw[0], str) and len(raw) <= 2:
        if len(raw) == 1:
            return PathStep(raw[0])
        arg = raw[1]
        if isinstance(arg, str) or (isinstance(arg, int) and not isinstance(arg, bool)):
            return PathStep(raw[0], arg)
    raise ConfigEditError(f"undo record: bad path step {raw!r}")


def _str_field(data: Mapping[str, object], key: str) -> str:
    v = data.get(key, "")
    if not isinstance(v, str):
        raise ConfigEditError(f"undo record: {key!r} must be a string")
    return v


def _opt_str_field(data: Mapping[str, object], key: str) -> str | None:
    v = data.get(key)
    if v is not None and not isinstance(v, str):
        raise ConfigEditError(f"undo record: {key!r} must be a string or null")
    return v


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff (``a/name`` -> ``b/name``); empty when the texts are equal."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
    )
    out: list[str] = []
    for ln in lines:
        out.append(ln)
        if not ln.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)
