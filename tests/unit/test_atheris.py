"""Coverage-guided fuzzing of the KDL checker and editor with atheris (libFuzzer), for a bounded time.

``tests/fuzz/atheris_kdl.py`` is the target; here it runs in a subprocess for
``$ZENTINEL_ATHERIS_SECONDS`` (20 by default), seeded with the tests' configs. A crash, an exception
other than the refusals the target allows, or a broken edit/undo round trip fails the run; libFuzzer
writes the input that did it to the test's temporary directory and the failure shows it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.fuzzing import tried

pytest.importorskip("atheris", reason="atheris is a dev dependency (pip install -e '.[dev]')")

TARGET = Path(__file__).resolve().parents[1] / "fuzz" / "atheris_kdl.py"
SECONDS = int(os.environ.get("ZENTINEL_ATHERIS_SECONDS", "20"))


def test_the_kdl_checker_and_editor_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    run = subprocess.run(
        [sys.executable, str(TARGET), f"-max_total_time={SECONDS}", "-rss_limit_mb=2048",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        check=False, capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
    )  # fmt: skip
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
    assert run.returncode == 0, f"atheris found a failing input:\n{tail}\nartifacts: {sorted(tmp_path.iterdir())}"
    done = re.search(r"Done (\d+) runs", run.stderr)
    assert done, tail
    runs = int(done.group(1))
    assert runs > 100, f"only {runs} inputs in {SECONDS} s: the target is not being exercised\n{tail}"
    tried("kdl-atheris", runs)
