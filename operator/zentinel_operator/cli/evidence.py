"""Export an incident's evidence bundle to a local folder laid out like the runbook's
``/var/log/zentinel/incidents/$INCIDENT_ID/``, and check it against its manifest.

The bundle lives in ConfigMaps labelled ``zentinel.io/incident=<name>`` and
``zentinel.io/evidence-phase=<detection|resolution>``, named ``<incident>-ev-<phase>-<NN>``. Each data
key is one file; ``__`` in a key separates folders (``logs__edge-a__zentinel.log`` is
``logs/edge-a/zentinel.log``). The export is ``DIR/INC-<YYYYMMDD>-<NNN>/<phase>/<files>``.

``MANIFEST.json`` (the operator writes it in chunk ``00``; any chunk may carry one) names files with
their sha256: the operator's ``{"format": "zentinel.io/evidence/v1", "items": [{"key", "chunk", "bytes",
"sha256", "partOf", "part"}]}``, and also ``{"files": ...}`` with the same entries or ``{"<name>":
"<sha256>" | {"sha256": ...}}``; a name is the key or the decoded path. An item too large for one
ConfigMap is stored as ``<key>.partNN`` items: the export checks each part and writes the file whole.
Everything here but :func:`write_export` is pure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ..names import LABEL_PHASE
from .render import configmap_files, table

MANIFEST = "MANIFEST.json"
PHASES = ("detection", "resolution")
_CHUNK = re.compile(r"-ev-(?P<phase>[a-z0-9]+)-(?P<nn>\d+)$")
_INCIDENT = re.compile(r"^inc-(?P<day>\d{8})-(?P<seq>\d+)$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

OK = "ok"
MISMATCH = "MISMATCH"
MISSING = "MISSING"
UNLISTED = "not in manifest"
NO_MANIFEST = "no manifest"


class EvidenceError(ValueError):
    pass


def incident_folder(incident: str) -> str:
    """``inc-20261127-001`` -> ``INC-20261127-001`` (the runbook's ``INC-$(date +%Y%m%d)-001``)."""
    m = _INCIDENT.match(incident)
    if m is None:
        return incident.upper()
    return f"INC-{m.group('day')}-{m.group('seq')}"


def key_path(key: str) -> PurePosixPath:
    """The relative path a data key stands for; refuses keys that would leave the folder."""
    parts = key.split("__")
    if any(p in ("", ".", "..") for p in parts):
        raise EvidenceError(f"evidence key {key!r} does not name a file inside the bundle")
    return PurePosixPath(*parts)


@dataclasses.dataclass(frozen=True)
class Chunk:
    name: str
    phase: str
    number: int
    files: dict[str, bytes]  # data key -> content


def chunk_of(cm: Mapping[str, Any]) -> Chunk:
    meta = cm.get("metadata") or {}
    name = str(meta.get("name"))
    m = _CHUNK.search(name)
    phase = (meta.get("labels") or {}).get(LABEL_PHASE) or (m.group("phase") if m else "unknown")
    return Chunk(name=name, phase=phase, number=int(m.group("nn")) if m else 0, files=configmap_files(cm))


def _phase_order(phase: str) -> tuple[int, str]:
    return (PHASES.index(phase) if phase in PHASES else len(PHASES), phase)


def sort_chunks(chunks: Iterable[Chunk]) -> list[Chunk]:
    return sorted(chunks, key=lambda c: (_phase_order(c.phase), c.number, c.name))


@dataclasses.dataclass(frozen=True)
class Listed:
    """One file as a manifest lists it."""

    sha256: str
    part_of: str | None = None  # the key of the whole file, for a part of a split item
    part: int = 0  # 1-based position among the parts


def _listed(entry: Any) -> Listed | None:
    sha = entry.get("sha256") if isinstance(entry, dict) else entry
    if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("partOf"), str):
        return Listed(sha.lower())
    m = re.match(r"^(\d+)/\d+$", str(entry.get("part", "")))
    return Listed(sha.lower(), part_of=entry["partOf"], part=int(m.group(1)) if m else 0)


def parse_manifest(content: bytes) -> dict[str, Listed]:
    """File name -> what the manifest says of it; names as the manifest gives them."""
    try:
        doc = json.loads(content)
    except ValueError as e:
        raise EvidenceError(f"{MANIFEST} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise EvidenceError(f"{MANIFEST} is not a JSON object")
    files = doc.get("items", doc.get("files", doc))
    out: dict[str, Listed] = {}
    if isinstance(files, dict):
        pairs = [(str(name), entry) for name, entry in files.items()]
    elif isinstance(files, list):
        pairs = [
            (name, entry)
            for entry in files
            if isinstance(entry, dict)
            and (
                name := next((entry[k] for k in ("key", "path", "name", "file") if isinstance(entry.get(k), str)), None)
            )
        ]
    else:
        pairs = []
    for name, entry in pairs:
        listed = _listed(entry)
        if listed is not None:
            out[name] = listed
    return out


def _as_key(name: str) -> str:
    return name.strip("/").replace("/", "__")


@dataclasses.dataclass(frozen=True)
class ExportFile:
    phase: str
    chunk: str
    key: str
    path: PurePosixPath  # relative to the incident folder: <phase>/<decoded key>
    content: bytes
    sha256: str
    check: str  # ok, MISMATCH, not in manifest, no manifest (manifests themselves: "-")


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    folder: str  # INC-YYYYMMDD-NNN
    files: tuple[ExportFile, ...]
    missing: tuple[tuple[str, str], ...]  # (phase, name) listed in a manifest, found in no chunk
    notes: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Every file a manifest lists is present with the listed sha256."""
        return not self.missing and all(f.check != MISMATCH for f in self.files)

    @property
    def manifests(self) -> int:
        return sum(1 for f in self.files if f.key == MANIFEST)


def _manifest_of(phase: str, chunks: Sequence[Chunk], notes: list[str]) -> dict[str, Listed] | None:
    """The union of a phase's manifests, by data key; None when no chunk carries one."""
    manifest: dict[str, Listed] = {}
    found = False
    for chunk in chunks:
        if MANIFEST not in chunk.files:
            continue
        found = True
        try:
            listed = parse_manifest(chunk.files[MANIFEST])
        except EvidenceError as e:
            notes.append(f"{chunk.name}: {e}")
            continue
        manifest.update({_as_key(name).removeprefix(f"{phase}__"): entry for name, entry in listed.items()})
    return manifest if found else None


def _join_parts(
    phase: str, files: list[ExportFile], manifest: Mapping[str, Listed], notes: list[str]
) -> list[ExportFile]:
    """Put each split item back together where every part is present (a missing part is reported as missing)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for key, entry in manifest.items():
        if entry.part_of:
            groups.setdefault(entry.part_of, []).append((entry.part, key))
    by_key = {f.key: f for f in files}
    for whole, parts in sorted(groups.items()):
        keys = [key for _, key in sorted(parts)]
        if not all(k in by_key for k in keys):
            continue
        try:
            rel = PurePosixPath(phase) / key_path(whole)
        except EvidenceError as e:
            notes.append(f"{e}; its parts are written as they are")
            continue
        pieces = [by_key[k] for k in keys]
        content = b"".join(f.content for f in pieces)
        check = MISMATCH if any(f.check == MISMATCH for f in pieces) else OK
        joined = ExportFile(phase, pieces[0].chunk, whole, rel, content, hashlib.sha256(content).hexdigest(), check)
        at = files.index(pieces[0])
        files = [f for f in files if f.key not in keys]
        files.insert(min(at, len(files)), joined)
        notes.append(f"{rel}: joined from {len(keys)} parts")
    return files


def plan_export(incident: str, chunks: Sequence[Chunk]) -> ExportPlan:
    """What to write where, and how each file compares with its phase's manifest(s)."""
    files: list[ExportFile] = []
    missing: list[tuple[str, str]] = []
    notes: list[str] = []
    by_phase: dict[str, list[Chunk]] = {}
    for chunk in sort_chunks(chunks):
        by_phase.setdefault(chunk.phase, []).append(chunk)
    for phase, phase_chunks in by_phase.items():
        manifest = _manifest_of(phase, phase_chunks, notes)
        written: dict[PurePosixPath, bytes] = {}
        phase_files: list[ExportFile] = []
        for chunk in phase_chunks:
            for key in sorted(chunk.files):
                content = chunk.files[key]
                try:
                    rel = PurePosixPath(phase) / key_path(key)
                except EvidenceError as e:
                    notes.append(f"{chunk.name}: {e}; skipped")
                    continue
                if rel in written:
                    if written[rel] == content:
                        continue  # the same file in two chunks
                    rel = rel.with_name(f"{rel.stem}.{chunk.number:02d}{rel.suffix}")
                    notes.append(f"{chunk.name}: {key} differs from an earlier chunk's; written as {rel}")
                written[rel] = content
                sha = hashlib.sha256(content).hexdigest()
                if key == MANIFEST:
                    check = "-"
                elif manifest is None:
                    check = NO_MANIFEST
                elif key not in manifest:
                    check = UNLISTED
                else:
                    check = OK if manifest[key].sha256 == sha else MISMATCH
                phase_files.append(ExportFile(phase, chunk.name, key, rel, content, sha, check))
        seen = {f.key for f in phase_files}
        missing += [(phase, key) for key in sorted(manifest or {}) if key not in seen]
        files += _join_parts(phase, phase_files, manifest or {}, notes)
    return ExportPlan(incident_folder(incident), tuple(files), tuple(missing), tuple(notes))


def write_export(plan: ExportPlan, out_dir: Path) -> Path:
    """Write the planned files under ``out_dir/<INC-...>/``; return that folder."""
    root = out_dir / plan.folder
    for f in plan.files:
        target = root.joinpath(*f.path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
    root.mkdir(parents=True, exist_ok=True)
    return root


def render_export(plan: ExportPlan, root: Path) -> str:
    rows = [[f.phase, f.path.relative_to(f.phase), len(f.content), f.sha256[:16], f.check] for f in plan.files]
    out = table(["phase", "file", "bytes", "sha256", "check"], rows)
    out += "".join(
        f"MISSING: {phase}/{name} is listed in the manifest but in no chunk\n" for phase, name in plan.missing
    )
    out += "".join(f"note: {n}\n" for n in plan.notes)
    checked = [f for f in plan.files if f.check in (OK, MISMATCH)]
    bad = sum(1 for f in checked if f.check == MISMATCH)
    if plan.manifests:
        verdict = "verified" if plan.verified else "NOT verified"
        out += (
            f"{len(plan.files)} files written to {root}; manifest {verdict}: {len(checked) - bad} match, "
            f"{bad} differ, {len(plan.missing)} missing\n"
        )
    else:
        out += f"{len(plan.files)} files written to {root}; no {MANIFEST} to verify against\n"
    return out


def export_summary(plan: ExportPlan, root: Path) -> dict[str, Any]:
    """``evidence -o json``: where each file went and how it checked."""
    return {
        "folder": str(root),
        "verified": plan.verified if plan.manifests else None,
        "files": [
            {
                "phase": f.phase,
                "configMap": f.chunk,
                "key": f.key,
                "path": str(f.path),
                "bytes": len(f.content),
                "sha256": f.sha256,
                "check": f.check,
            }
            for f in plan.files
        ],
        "missing": [{"phase": p, "name": n} for p, n in plan.missing],
        "notes": list(plan.notes),
    }
