"""Counting the inputs each fuzz target tried, for ``RELIABILITY.md``.

Every property test calls :func:`tried` once per generated input. At the end of the session the
counts are printed in pytest's summary (``fuzz: <target> <n> inputs``) and, when
``$ZENTINEL_FUZZ_FIGURES`` names a file, written there as JSON. ``$ZENTINEL_FUZZ_EXAMPLES`` raises
the number of examples per property (the default keeps the unit suite quick).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings

COUNTS: Counter[str] = Counter()

EXAMPLES = int(os.environ.get("ZENTINEL_FUZZ_EXAMPLES", "200"))

# Deterministic in CI (derandomize): a failure reproduces from the same command; a fuzz run with
# $ZENTINEL_FUZZ_EXAMPLES set explores new inputs each time.
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="ZENTINEL_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def tried(target: str, inputs: int = 1) -> None:
    COUNTS[target] += inputs


def report() -> list[str]:
    lines = [f"fuzz: {target} {n} inputs" for target, n in sorted(COUNTS.items())]
    path = os.environ.get("ZENTINEL_FUZZ_FIGURES")
    if path and COUNTS:
        Path(path).write_text(json.dumps(dict(sorted(COUNTS.items())), indent=2) + "\n")
    return lines
