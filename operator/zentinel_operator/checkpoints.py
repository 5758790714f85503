"""Named stages of a remediation, where a test can hold the operator to kill it there.

``ZENTINEL_OPERATOR_TEST_HOLD_AT=recorded`` (a comma list of stage names) makes the thread that reaches
that stage log ``holding at stage recorded`` and wait forever, so a test can SIGKILL the process at
exactly that point. Unset (always, outside tests) it does nothing. The stages, in order:

- ``decided``: the action is planned, its record not yet written;
- ``recorded``: the record says Running, the action has not run;
- ``acted``: the action ran, its outcome is not yet recorded;
- ``verifying``: the outcome is recorded (Verifying), the verification has not run.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

ENV = "ZENTINEL_OPERATOR_TEST_HOLD_AT"
STAGES = ("decided", "recorded", "acted", "verifying")
_HOLD = frozenset(s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip())
_unknown = _HOLD - set(STAGES)
if _unknown:
    raise SystemExit(f"{ENV}: unknown stage(s) {', '.join(sorted(_unknown))}; known: {', '.join(STAGES)}")


def reached(stage: str, what: str = "") -> None:
    if stage in _HOLD:
        log.warning("holding at stage %s (%s): %s", stage, ENV, what)
        threading.Event().wait()
