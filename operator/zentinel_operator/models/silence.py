"""``ZentinelSilence``: hold the pages (and optionally the remediation) of matching incidents until ``endsAt``.

Like ``amtool silence add``: matchers, a time window, who and why. While a silence is active, the
incidents it matches still open, change and escalate in their status, but the pages they call for
are held; when it ends and the incident is still open, what is owed goes out. Silences expire by
themselves and stay (``state: Expired``), so ``kubectl get zsil`` shows the history.
:mod:`zentinel_operator.core.silences` holds the rules (state, matching, what is held).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from pydantic import Field

from .. import names
from .common import Category, Condition, CRDInfo, KModel, Meta, ObjectName, Severity, cel, validations

SILENCE_COMMENT_MAX = 1024
SILENCE_AUTHOR_MAX = 253


class SilenceState(enum.StrEnum):
    PENDING = "Pending"  # startsAt is still ahead
    ACTIVE = "Active"
    EXPIRED = "Expired"  # endsAt has passed (or the silence was expired by hand)


class SilenceMatchers(KModel):
    """Which incidents of the silence's namespace it holds: every matcher given must match."""

    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.zentinel) || (has(self.categories) && size(self.categories) > 0)"
                " || (has(self.severities) && size(self.severities) > 0)",
                "name at least one matcher: zentinel, categories or severities",
                reason="FieldValueRequired",
            )
        )
    }

    zentinel: ObjectName | None = Field(default=None, description="Only incidents of this Zentinel; unset: any.")
    categories: list[Category] = Field(
        default_factory=list,
        max_length=len(Category),
        description="Only incidents of these categories; empty: any.",
    )
    severities: list[Severity] = Field(
        default_factory=list,
        max_length=len(Severity),
        description="Only incidents whose current severity is one of these; empty: any. An incident whose severity "
        "rises out of the list is no longer held, and its page goes out.",
    )


class ZentinelSilenceSpec(KModel):
    """What is silenced, for how long, by whom and why."""

    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!has(self.startsAt) || self.endsAt >= self.startsAt",
                "endsAt must not be before startsAt",
                field_path=".endsAt",
            )
        )
    }

    matchers: SilenceMatchers = Field(description="Which incidents it holds (at least one matcher).")
    starts_at: dt.datetime | None = Field(
        default=None, description="When it starts holding (RFC 3339); default: when it was created."
    )
    ends_at: dt.datetime = Field(
        description="When it ends by itself (RFC 3339). Set it to now to expire the silence early (`zentinelctl "
        "silence expire`)."
    )
    created_by: str = Field(min_length=1, max_length=SILENCE_AUTHOR_MAX, description="Who silenced.")
    comment: str = Field(
        min_length=1, max_length=SILENCE_COMMENT_MAX, description="Why (for example the maintenance ticket)."
    )
    silence_remediation: bool = Field(
        default=False,
        description="Also hold remediation: no new action starts on a held incident (its ladder waits, recorded "
        "`Waiting`); changes already made are still verified and temporary ones still undone. False: "
        "notifications only.",
    )


class ZentinelSilenceStatus(KModel):
    observed_generation: int | None = Field(default=None, description="Last generation the operator handled.")
    state: SilenceState | None = Field(default=None, description="`Pending`, `Active` or `Expired`.")
    starts_at: dt.datetime | None = Field(default=None, description="When it starts (spec.startsAt or creation).")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready` (for `kubectl wait`, kstatus, Argo CD and Flux): the operator has read this "
        "generation; the reason is the state.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ZentinelSilence(KModel, CRDInfo):
    kind: ClassVar[str] = names.KIND_SILENCE
    plural: ClassVar[str] = names.SILENCES
    singular: ClassVar[str] = names.SINGULAR_SILENCE
    short_names: ClassVar[list[str]] = ["zsil"]
    description: ClassVar[str] = (
        "Holds the pages (and optionally the remediation) of matching incidents until it ends, like an "
        "Alertmanager silence."
    )
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Zentinel", "type": "string", "jsonPath": ".spec.matchers.zentinel"},
        {"name": "Categories", "type": "string", "jsonPath": ".spec.matchers.categories"},
        {"name": "Severities", "type": "string", "jsonPath": ".spec.matchers.severities"},
        {
            "name": "Remediation",
            "type": "boolean",
            "jsonPath": ".spec.silenceRemediation",
            "description": "Remediation held too",
        },
        {"name": "Ends", "type": "string", "jsonPath": ".spec.endsAt"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Starts", "type": "string", "jsonPath": ".status.startsAt", "priority": 1},
        {"name": "Created-By", "type": "string", "jsonPath": ".spec.createdBy", "priority": 1},
        {"name": "Comment", "type": "string", "jsonPath": ".spec.comment", "priority": 1},
    ]

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelSilenceSpec
    status: ZentinelSilenceStatus = Field(default_factory=ZentinelSilenceStatus)
