"""Every rule about a policy or a Zentinel, in Python (pure).

Each problem is reported as ``spec.<field path>: <rule>`` so that it names the field and the rule.

Where the rules live: the CRDs carry them as schema and CEL (``x-kubernetes-validations``, written in
the models), so the API server refuses a bad policy at ``kubectl apply`` on either install path. The
admission webhook runs only :func:`check_policy_beyond_schema`, what CEL cannot say. :func:`check_policy`
still checks everything, because two readers see objects the API server never refused: the
``Accepted`` condition (a policy stored before a rule existed stays stored; CEL runs on writes only,
and ratcheting lets an update keep an unchanged bad field) and ``zentinelctl triage --policy FILE``,
which reads a file without any cluster. ``tests/unit/test_policy_rules.py`` holds both to one table of
bad policies, so the Python and the CEL say the same thing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from ..models.common import (
    DURATION_DIGITS_MESSAGE,
    DURATION_TOO_LONG,
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    POSITIVE_DURATION_MESSAGE,
    Condition,
    LabelSelector,
)
from ..models.policy import LADDER_RULES, Ladder, LadderRule, ReceiverType, ZentinelIncidentPolicySpec
from ..models.zentinel import ZentinelSpec
from .conditions import READY, set_condition
from .durations import DurationError, parse_duration

_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_DURATION_TOO_LONG = re.compile(DURATION_TOO_LONG)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)


def _pydantic_errors(prefix: str, e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        out.append(f"{prefix}{loc}: {err['msg']}")
    return out


def _ladder_order(path: str, ladder: Ladder, rule: LadderRule) -> list[str]:
    problems = []
    rungs = ladder.rungs()
    for sev, value in rungs:
        if rule.upper is not None and value > rule.upper:
            problems.append(f"{path}.{sev.value.lower()}: {value} is above the maximum {rule.upper}")
    for (worse, worse_v), (better, better_v) in itertools.pairwise(rungs):
        if rule.higher_is_worse and not worse_v > better_v:
            problems.append(
                f"{path}: {worse.value.lower()} ({worse_v}) must be greater than {better.value.lower()} ({better_v}); "
                "a worse severity needs a worse value"
            )
        if not rule.higher_is_worse and not worse_v < better_v:
            problems.append(
                f"{path}: {worse.value.lower()} ({worse_v}) must be less than {better.value.lower()} ({better_v}); "
                "a worse severity needs fewer days left"
            )
    return problems


def check_selector(selector: LabelSelector, path: str) -> list[str]:
    problems = []
    for key, value in selector.match_labels.items():
        if not _LABEL_KEY.match(key):
            problems.append(f"{path}.matchLabels: {key!r} is not a valid label key")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"{path}.matchLabels.{key}: {value!r} is not a valid label value")
    for i, expr in enumerate(selector.match_expressions):
        where = f"{path}.matchExpressions[{i}]"
        if not _LABEL_KEY.match(expr.key):
            problems.append(f"{where}.key: {expr.key!r} is not a valid label key")
        if expr.operator in ("In", "NotIn"):
            if not expr.values:
                problems.append(f"{where}.values: operator {expr.operator} needs at least one value")
        elif expr.operator in ("Exists", "DoesNotExist"):
            if expr.values:
                problems.append(f"{where}.values: operator {expr.operator} takes no values")
        else:
            problems.append(f"{where}.operator: {expr.operator!r} is not one of In, NotIn, Exists, DoesNotExist")
    return problems


def _duration_fields(spec: ZentinelIncidentPolicySpec) -> list[tuple[str, str | None, bool]]:
    """(path, value, must be positive) for every duration in a policy."""
    r = spec.remediation
    a = r.actions
    fields: list[tuple[str, str | None, bool]] = [
        ("spec.responseTargets.sev1", spec.response_targets.sev1, True),
        ("spec.responseTargets.sev2", spec.response_targets.sev2, True),
        ("spec.responseTargets.sev3", spec.response_targets.sev3, True),
        ("spec.responseTargets.sev4", spec.response_targets.sev4, True),
        ("spec.lifecycle.resolveAfter", spec.lifecycle.resolve_after, False),
        ("spec.lifecycle.reopenWindow", spec.lifecycle.reopen_window, False),
        ("spec.evidence.retention", spec.evidence.retention, True),
        ("spec.remediation.budget.window", r.budget.window, True),
        ("spec.remediation.cooldown", r.cooldown, False),
        ("spec.remediation.holdOffAfterChange", r.hold_off_after_change, False),
        ("spec.remediation.provenGoodAfter", r.proven_good_after, False),
        ("spec.remediation.verifyTimeout", r.verify_timeout, True),
        ("spec.remediation.actions.connectionLimits.ttl", a.connection_limits.ttl, True),
        ("spec.remediation.actions.rateLimit.ttl", a.rate_limit.ttl, True),
        ("spec.remediation.actions.ejectTargets.ttl", a.eject_targets.ttl, True),
    ]
    for sev in ("sev1", "sev2", "sev3", "sev4"):
        levels = getattr(spec.escalation, sev)
        fields.append((f"spec.escalation.{sev}.managementAfter", levels.management_after, True))
    return fields


def check_policy(spec_body: Mapping[str, Any]) -> list[str]:
    """Every problem with a ``ZentinelIncidentPolicy`` spec; empty when it is acceptable."""
    try:
        spec = ZentinelIncidentPolicySpec.model_validate(dict(spec_body))
    except ValidationError as e:
        return _pydantic_errors("spec", e)
    problems: list[str] = []
    thresholds = spec.thresholds
    for attr, rule in LADDER_RULES.items():
        problems += _ladder_order(f"spec.thresholds.{to_camel(attr)}", getattr(thresholds, attr), rule)
    for path, value, positive in _duration_fields(spec):
        if value is None:
            continue
        if _DURATION_TOO_LONG.search(value):
            problems.append(f"{path}: {DURATION_DIGITS_MESSAGE}")
            continue
        try:
            delta = parse_duration(value)
        except DurationError as e:
            problems.append(f"{path}: {e}")
            continue
        if positive and delta.total_seconds() <= 0:
            problems.append(f"{path}: {POSITIVE_DURATION_MESSAGE}")
    names = [r.name for r in spec.receivers]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"spec.receivers: the name {dup!r} is used more than once")
    for i, rec in enumerate(spec.receivers):
        where = f"spec.receivers[{i}]"
        if rec.type in (ReceiverType.SLACK, ReceiverType.PAGERDUTY) and rec.secret_ref is None:
            what = "the incoming-webhook URL" if rec.type == ReceiverType.SLACK else "the routing key"
            problems.append(f"{where}.secretRef: a {rec.type.value} receiver needs a Secret key holding {what}")
        if rec.type == ReceiverType.WEBHOOK and rec.secret_ref is None and rec.url is None:
            problems.append(f"{where}: a Webhook receiver needs url or secretRef (a Secret key holding the URL)")
        if rec.type == ReceiverType.ALERTMANAGER and rec.url is None:
            problems.append(f"{where}.url: an Alertmanager receiver needs Alertmanager's base URL")
    known = set(names)
    for sev in ("sev1", "sev2", "sev3", "sev4"):
        levels = getattr(spec.escalation, sev)
        for level in ("primary", "secondary", "management"):
            for j, receiver in enumerate(getattr(levels, level)):
                if receiver not in known:
                    problems.append(
                        f"spec.escalation.{sev}.{level}[{j}]: receiver {receiver!r} is not defined in spec.receivers"
                    )
        if levels.management and not levels.management_after:
            problems.append(f"spec.escalation.{sev}.managementAfter: needed when management receivers are set")
    problems += check_selector(spec.selector, "spec.selector")
    b = spec.remediation.budget
    if b.per_cluster < b.per_zentinel:
        problems.append(f"spec.remediation.budget.perCluster: {b.per_cluster} is below perZentinel ({b.per_zentinel})")
    return problems


def check_policy_beyond_schema(spec_body: Mapping[str, Any]) -> list[str]:
    """What the CRD's schema and CEL rules cannot say; the admission webhook runs only this.

    The keys of ``selector.matchLabels``: a map's keys have no schema, and a CEL regex over keys of
    unbounded length exceeds the API server's cost budget. (Everything else in :func:`check_policy`
    is refused by the API server before a webhook is called.)
    """
    try:
        selector = LabelSelector.model_validate((spec_body or {}).get("selector") or {})
    except ValidationError as e:
        return _pydantic_errors("spec.selector", e)
    return [p for p in check_selector(selector, "spec.selector") if p.startswith("spec.selector.matchLabels:")]


def check_zentinel(spec_body: Mapping[str, Any]) -> list[str]:
    """Every problem with a ``Zentinel`` spec, from the model's own validators (which parsing needs too).

    No webhook runs this: the Zentinel CRD's schema and CEL rules refuse each of these at ``kubectl
    apply``. ``tests/unit/test_policy_rules.py`` holds it to the same table as the CRD.
    """
    try:
        ZentinelSpec.model_validate(dict(spec_body))
    except ValidationError as e:
        return _pydantic_errors("spec", e)
    return []


ACCEPTED = "Accepted"
MAX_PROBLEMS_MESSAGE = 4000


def policy_conditions(
    conditions: Sequence[Condition], problems: Sequence[str], *, now: dt.datetime, generation: int | None
) -> list[Condition]:
    """A policy's ``Accepted`` and ``Ready`` from :func:`check_policy`'s problems.

    Ready means the policy is in force for this generation: the same as Accepted (a policy does nothing
    else that could go wrong), kept as its own type so that ``kubectl wait --for=condition=Ready``, kstatus,
    Argo CD and Flux read policies and Zentinels alike. Both carry ``observedGeneration``; their
    ``lastTransitionTime`` moves only when they flip.
    """
    if problems:
        status, reason, message = False, "Invalid", "; ".join(problems)[:MAX_PROBLEMS_MESSAGE]
    else:
        status, reason, message = True, "Valid", "The policy is in force"
    out = set_condition(conditions, ACCEPTED, status, reason, message, now=now, generation=generation)
    return set_condition(out, READY, status, reason, message, now=now, generation=generation)
