"""What a remediation action runs with, and the error an action fails with."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..api import ActionApi
from ..core.snapshot import Snapshot
from ..models.policy import ZentinelIncidentPolicySpec
from ..models.zentinel import Zentinel


class ActionError(RuntimeError):
    """The action could not be carried out; the message says why (never with secret values)."""


@dataclasses.dataclass
class ExecContext:
    zen: Zentinel
    deployment: dict[str, Any] | None
    snapshot: Snapshot
    policy: ZentinelIncidentPolicySpec
    now: dt.datetime
    api: ActionApi  # every read and write of an action goes through it
