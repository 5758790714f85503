"""Coverage-guided fuzzing (atheris, libFuzzer) of the KDL checker and the span editor.

Any bytes become a config text. The checker must answer without raising; the KDL reader raises only
``KdlError`` and the span locator only ``KdlSyntaxError``; every edit either refuses with
``ConfigEditError`` or produces a config the checker accepts, and then its undo gives back the
original text byte for byte.

    python tests/fuzz/atheris_kdl.py -runs=20000 -max_total_time=60 [corpus_dir]

Seeded with the tests' configs; prints libFuzzer's figures (``#N DONE cov: … exec/s: …``).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from zentinel_operator.core import kdl
    from zentinel_operator.core.zconfig import (
        ConfigEditError,
        check_config,
        enable_rate_limit,
        remove_targets,
        revert,
        set_limits,
    )


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(len(data))
    check = check_config(text)
    assert check.valid or check.errors
    with contextlib.suppress(kdl.KdlError):
        kdl.parse(text)
    # The locator alone: a text it cannot read is a KdlSyntaxError, never another exception.
    with contextlib.suppress(kdl.KdlSyntaxError):
        kdl.scan(text)
    if not check.valid:
        return
    edits = []
    for upstream, targets in check.upstreams.items():
        if len(targets) > 1:
            edits.append(lambda u=upstream, t=targets: remove_targets(text, u, [t[0]]))
    edits.append(lambda: set_limits(text, max_total_connections=7, max_connections_per_client=3))
    if check.routes:
        edits.append(lambda: enable_rate_limit(text, [check.routes[0]], requests_per_second=9, burst=9))
    for edit in edits:
        try:
            result = edit()
        except ConfigEditError:
            continue
        assert check_config(result.text).valid, result.text
        back = revert(result.text, result.undo)
        assert back.text == text, (text, result.text, back.text)


def main() -> None:
    args = list(sys.argv)
    corpus = [a for a in args[1:] if not a.startswith("-")]
    if corpus:
        seeds = Path(corpus[0])
        seeds.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from support import configs, realpods

        (seeds / "good.kdl").write_text(configs.GOOD)
        (seeds / "real.kdl").write_text(realpods.config(["127.0.0.1:8000", "127.0.0.2:8000"]))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
