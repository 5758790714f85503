"""Silences: read them for the Zentinel pass, and keep each one's status (state, Ready) current.

The rules are :mod:`zentinel_operator.core.silences`'; the pass works out from each silence's spec and
the clock whether it is active, so expiry takes effect on the first pass after ``endsAt`` whatever the
silence's own status says. The status is for people (``kubectl get zsil``) and written only when it changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..api import StatusApi
from ..core.patches import merge_patch
from ..core.silences import silence_status
from ..models.silence import ZentinelSilence
from ..names import SILENCES

log = logging.getLogger(__name__)


def parse_all(bodies: Iterable[Mapping[str, Any]]) -> list[ZentinelSilence]:
    """The silences as models; a malformed one (stored before a schema change) is left out, with a warning."""
    out = []
    for body in bodies:
        try:
            out.append(ZentinelSilence.model_validate(dict(body)))
        except ValidationError as e:
            log.warning("ignoring malformed silence %s: %s", (body.get("metadata") or {}).get("name"), e)
    return out


def reconcile(body: Mapping[str, Any], *, api: StatusApi, now: dt.datetime | None = None) -> bool:
    """Write the silence's status when its state or condition changed; True when it wrote."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    silence = ZentinelSilence.model_validate(dict(body))
    patch = merge_patch(dict(body.get("status") or {}), silence_status(silence, now).dump())
    if not patch:
        return False
    meta = body["metadata"]
    api.patch_status(SILENCES, meta["namespace"], meta["name"], patch)
    return True
